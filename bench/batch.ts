/**
 * batch: the throughput of a 10,000-line batch through Ferry (upload the
 * JSONL, POST /v1/batches, lines on the generate workers against the Gemini
 * emulator, output file written) compared with raw BullMQ on the same Redis:
 * no-op jobs added in bulk and processed with the same concurrency, the
 * ceiling of any work queued through BullMQ here.
 *
 *   BENCH_BATCH_LINES         lines (default 10000)
 *   BENCH_BATCH_CONCURRENCY   FERRY_BATCH_CONCURRENCY and FERRY_BATCH_WORKER_SLOTS for the run
 *                             (default: Ferry's defaults)
 *   BENCH_RUNTIME             how Ferry's processes run (see bench/lib.ts)
 */
import os from 'node:os';
import OpenAI, { toFile } from 'openai';
import { deleteByPrefix } from '../src/core/redis.js';
import { envInt, fmtMB, fmtMs, now, rawBullmq, round, settle, startStack, waitFor, type Proc, type Section } from './lib.js';

const MODEL = 'gemini-2.0-flash';
/** Ferry's default completions per worker process (FERRY_GENERATE_CONCURRENCY). */
const CONCURRENCY = 16;

const cpuOf = (procs: Proc[]) => Object.fromEntries(procs.map((p) => [p.name, p.cpu()]));

const section: Section = {
  name: 'batch',
  title: 'a 10,000-line batch through Ferry (emulator upstream) vs raw BullMQ no-op jobs on the same Redis',
  async run({ scope, log }) {
    const lines = envInt('BENCH_BATCH_LINES', 10_000);
    const concurrency = process.env.BENCH_BATCH_CONCURRENCY?.trim() ? envInt('BENCH_BATCH_CONCURRENCY', 1) : null;
    const load = () =>
      os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ');
    log(`machine: ${os.cpus().length} CPUs, load average ${load()}`);
    const env: Record<string, string> = concurrency
      ? { FERRY_BATCH_CONCURRENCY: String(concurrency), FERRY_BATCH_WORKER_SLOTS: String(Math.min(concurrency, CONCURRENCY)) }
      : {};
    const stack = await startStack(scope, { env });
    log(
      `processes: emulator pid ${stack.emulator.pid}, api pid ${stack.api.pid}, worker pid ${stack.worker.pid}; redis prefix ${stack.prefix}`,
    );
    log(
      `batch settings: ${concurrency ? `FERRY_BATCH_CONCURRENCY=${concurrency}` : "Ferry's defaults (FERRY_BATCH_CONCURRENCY=8, FERRY_BATCH_WORKER_SLOTS=8)"}`,
    );

    // Raw BullMQ first, under a prefix of its own, while Ferry's processes idle.
    await settle(stack.procs);
    const rawPrefix = `${stack.prefix}-raw`;
    scope.defer(`delete redis keys ${rawPrefix}:*`, () => deleteByPrefix(stack.redis, rawPrefix));
    const raw = await rawBullmq(stack.redisUrl, rawPrefix, lines, CONCURRENCY);
    const rawRate = lines / (raw.ms / 1000);
    log(
      `raw BullMQ: ${lines} no-op jobs added and processed in ${fmtMs(raw.ms)} (adding took ${fmtMs(raw.addMs)}): ${rawRate.toFixed(0)} jobs/s`,
    );

    const client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 2, timeout: 600_000 });
    const text = Array.from({ length: lines }, (_, i) =>
      JSON.stringify({
        custom_id: `line-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: MODEL, messages: [{ role: 'user', content: `question ${i}` }] },
      }),
    ).join('\n');
    const input = await client.files.create({ file: await toFile(Buffer.from(text), 'bench.jsonl'), purpose: 'batch' });
    log(`input: ${lines} lines, ${fmtMB(input.bytes)} (${input.id})`);
    await settle(stack.procs);

    const cpu0 = cpuOf(stack.procs);
    const t0 = now();
    const created = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    let inProgressMs: number | null = null;
    let b = created;
    await waitFor(
      'the batch to end',
      async () => {
        b = await client.batches.retrieve(created.id, { query: { wait: 1 } });
        if (inProgressMs === null && b.status !== 'validating') inProgressMs = now() - t0;
        return ['completed', 'failed', 'expired', 'cancelled'].includes(b.status);
      },
      { timeoutMs: 30 * 60_000, intervalMs: 0, check: () => stack.procs.forEach((p) => p.assertAlive()) },
    );
    const ms = now() - t0;
    const cpu1 = cpuOf(stack.procs);
    if (b.status !== 'completed') throw new Error(`the batch ended ${b.status}: ${JSON.stringify(b.errors ?? null)}`);
    const output = await (await client.files.content(b.output_file_id!)).text();
    const ids = new Set(
      output
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).custom_id),
    );
    if (ids.size !== lines || b.request_counts?.completed !== lines)
      throw new Error(`expected ${lines} answered lines, got ${ids.size} (${JSON.stringify(b.request_counts)})`);
    const rate = lines / (ms / 1000);
    const cpu = Object.fromEntries(
      Object.keys(cpu0).map((k) => [k, cpu0[k] === null || cpu1[k] === null ? null : round(cpu1[k]! - cpu0[k]!, 1)]),
    );

    log(
      `ferry batch: ${lines} lines created → completed in ${fmtMs(ms)} (validation and expansion ${fmtMs(inProgressMs ?? 0)}): ${rate.toFixed(0)} lines/s`,
    );
    log(
      `  CPU seconds during the batch: worker ${cpu.worker}, api ${cpu.api}, emulator ${cpu.emulator}; peak RSS worker ${fmtMB(stack.worker.peakRss())}, api ${fmtMB(stack.api.peakRss())}`,
    );
    log(`  output file: every custom_id once (${ids.size} lines)`);
    log('');
    log(
      `ferry lines/s ÷ raw BullMQ jobs/s = ${(rate / rawRate).toFixed(3)}  (each line is a job record, an upstream call through @google/genai, a result write and its count)`,
    );
    log(`load average at the end ${load()}`);
    return {
      lines,
      batch_concurrency: concurrency,
      raw_bullmq: { ms: round(raw.ms), add_ms: round(raw.addMs), jobs_per_s: round(rawRate) },
      ferry: {
        batch_id: b.id,
        ms: round(ms),
        validation_ms: inProgressMs === null ? null : round(inProgressMs),
        lines_per_s: round(rate),
        cpu_s: cpu,
        peak_rss_mb: { worker: round((stack.worker.peakRss() ?? 0) / 1e6), api: round((stack.api.peakRss() ?? 0) / 1e6) },
      },
      ratio_vs_raw: round(rate / rawRate, 3),
    };
  },
};

export default section;
