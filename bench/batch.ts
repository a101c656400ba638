/**
 * batch: the throughput of a 10,000-line batch through Ferry (upload the
 * JSONL, POST /v1/batches, lines on the generate workers against the Gemini
 * emulator, output file written) compared with raw BullMQ on the same Redis:
 * no-op jobs added in bulk and processed with the same concurrency, the
 * ceiling of any work queued through BullMQ here. Then the same batch on
 * Gemini Batch Mode (`execution: "gemini_batch"`): upstream requests per line
 * and wall time for both executions, the emulator's batch schedule apart.
 *
 *   BENCH_BATCH_GEMINI_PENDING_MS / _RUNNING_MS   the emulator's Batch Mode schedule (default 1000 / 5000)
 *   BENCH_BATCH_LINES         lines (default 10000)
 *   BENCH_BATCH_CONCURRENCY   FERRY_BATCH_CONCURRENCY and FERRY_BATCH_WORKER_SLOTS for the run
 *                             (default: Ferry's defaults)
 *   BENCH_RUNTIME             how Ferry's processes run (see bench/lib.ts)
 */
import os from 'node:os';
import OpenAI, { toFile } from 'openai';
import { deleteByPrefix } from '../test/redis-keys.js';
import type { Batch } from 'openai/resources/batches';
import {
  envInt,
  fmtMB,
  fmtMs,
  httpRequest,
  now,
  rawBullmq,
  round,
  settle,
  startStack,
  waitFor,
  type Proc,
  type Section,
  type Stack,
} from './lib.js';

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
    // Gemini's turnaround is hours; the emulator's is short, so the run measures Ferry's part of it.
    const schedule = { pendingMs: envInt('BENCH_BATCH_GEMINI_PENDING_MS', 1000), runningMs: envInt('BENCH_BATCH_GEMINI_RUNNING_MS', 5000) };
    const stack = await startStack(scope, {
      env,
      emulatorEnv: {
        FERRY_EMULATOR_BATCH_PENDING_MS: String(schedule.pendingMs),
        FERRY_EMULATOR_BATCH_RUNNING_MS: String(schedule.runningMs),
      },
    });
    log(
      `processes: emulator pid ${stack.emulator.pid}, api pid ${stack.api.pid}, worker pid ${stack.worker.pid}; redis prefix ${stack.prefix}`,
    );
    log(
      `batch settings: ${concurrency ? `FERRY_BATCH_CONCURRENCY=${concurrency}` : "Ferry's defaults (FERRY_BATCH_CONCURRENCY=256, FERRY_BATCH_WORKER_SLOTS=half of FERRY_GENERATE_CONCURRENCY)"}`,
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

    const direct = await runBatch(client, stack, input.id, lines, 'direct');
    logRun(log, 'direct', direct, lines);
    log(
      `  ferry lines/s ÷ raw BullMQ jobs/s = ${(direct.rate / rawRate).toFixed(3)}  (each line is a job record, an upstream call through @google/genai, a result write and its count)`,
    );
    await settle(stack.procs);
    const gemini = await runBatch(client, stack, input.id, lines, 'gemini_batch');
    logRun(log, 'gemini_batch', gemini, lines);
    log(
      `  of which Gemini's own schedule (emulator: pending ${schedule.pendingMs} ms, running ${schedule.runningMs} ms): ${fmtMs(schedule.pendingMs + schedule.runningMs)}; Ferry's part ${fmtMs(gemini.ms - schedule.pendingMs - schedule.runningMs)}`,
    );
    log('');
    log(
      `upstream requests per line: direct ${direct.requestsPerLine.toFixed(3)}, gemini_batch ${gemini.requestsPerLine.toFixed(5)}; worker CPU per line: direct ${fmtMs((1000 * (direct.cpu.worker ?? 0)) / lines)}, gemini_batch ${fmtMs((1000 * (gemini.cpu.worker ?? 0)) / lines)}`,
    );
    log(`load average at the end ${load()}`);
    const summary = (r: BatchRun) => ({
      batch_id: r.batchId,
      ms: round(r.ms),
      validation_ms: r.inProgressMs === null ? null : round(r.inProgressMs),
      lines_per_s: round(r.rate),
      upstream_requests: r.upstream,
      upstream_requests_per_line: round(r.requestsPerLine, 5),
      cpu_s: r.cpu,
      peak_rss_mb: { worker: round((stack.worker.peakRss() ?? 0) / 1e6), api: round((stack.api.peakRss() ?? 0) / 1e6) },
    });
    return {
      lines,
      batch_concurrency: concurrency,
      raw_bullmq: { ms: round(raw.ms), add_ms: round(raw.addMs), jobs_per_s: round(rawRate) },
      ferry: summary(direct),
      ferry_gemini_batch: { ...summary(gemini), emulator_schedule_ms: schedule },
      ratio_vs_raw: round(direct.rate / rawRate, 3),
    };
  },
};

interface BatchRun {
  batchId: string;
  ms: number;
  inProgressMs: number | null;
  rate: number;
  upstream: Record<string, number>;
  requestsPerLine: number;
  cpu: Record<string, number | null>;
}

/** Every API request the emulator has answered, by route. */
async function emulatorRequests(stack: Stack): Promise<Record<string, number>> {
  return (await httpRequest(`${stack.emulatorUrl}/_emulator/stats`)).json().requests;
}

/** One batch of the input, created → completed, with the upstream requests and the CPU it cost. */
async function runBatch(client: OpenAI, stack: Stack, inputId: string, lines: number, execution: string): Promise<BatchRun> {
  const cpu0 = cpuOf(stack.procs);
  const req0 = await emulatorRequests(stack);
  const t0 = now();
  const body = { input_file_id: inputId, endpoint: '/v1/chat/completions' as const, completion_window: '24h' as const };
  const created = await client.batches.create({ ...body, execution } as typeof body);
  let inProgressMs: number | null = null;
  let b = created;
  await waitFor(
    `the ${execution} batch to end`,
    async () => {
      b = await client.batches.retrieve(created.id, { query: { wait: 1 } });
      if (inProgressMs === null && b.status !== 'validating') inProgressMs = now() - t0;
      return ['completed', 'failed', 'expired', 'cancelled'].includes(b.status);
    },
    { timeoutMs: 30 * 60_000, intervalMs: 0, check: () => stack.procs.forEach((p) => p.assertAlive()) },
  );
  const ms = now() - t0;
  const cpu1 = cpuOf(stack.procs);
  const req1 = await emulatorRequests(stack);
  if (b.status !== 'completed') throw new Error(`the batch ended ${b.status}: ${JSON.stringify(b.errors ?? null)}`);
  await checkOutput(client, b, lines);
  const upstream: Record<string, number> = {};
  for (const [route, n] of Object.entries(req1)) if (n > (req0[route] ?? 0)) upstream[route] = n - (req0[route] ?? 0);
  const total = Object.values(upstream).reduce((sum, n) => sum + n, 0);
  const cpu = Object.fromEntries(
    Object.keys(cpu0).map((k) => [k, cpu0[k] === null || cpu1[k] === null ? null : round(cpu1[k]! - cpu0[k]!, 1)]),
  );
  return { batchId: b.id, ms, inProgressMs, rate: lines / (ms / 1000), upstream, requestsPerLine: total / lines, cpu };
}

async function checkOutput(client: OpenAI, b: Batch, lines: number): Promise<void> {
  const output = await (await client.files.content(b.output_file_id!)).text();
  const ids = new Set(
    output
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).custom_id),
  );
  if (ids.size !== lines || b.request_counts?.completed !== lines)
    throw new Error(`expected ${lines} answered lines, got ${ids.size} (${JSON.stringify(b.request_counts)})`);
}

function logRun(log: (line: string) => void, execution: string, r: BatchRun, lines: number) {
  log(
    `ferry batch, ${execution}: ${lines} lines created → completed in ${fmtMs(r.ms)} (validation and expansion ${fmtMs(r.inProgressMs ?? 0)}): ${r.rate.toFixed(0)} lines/s; every custom_id once`,
  );
  log(`  upstream requests: ${JSON.stringify(r.upstream)} = ${r.requestsPerLine.toFixed(5)} per line`);
  log(`  CPU seconds during the batch: worker ${r.cpu.worker}, api ${r.cpu.api}, emulator ${r.cpu.emulator}`);
}

export default section;
