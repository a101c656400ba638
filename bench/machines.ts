/**
 * machines: Ferry in the shape of several machines — a three-master Redis Cluster (real
 * redis-server processes), staging in a blob container (Azurite), and 1, 2 then 3 `ferry
 * worker` processes, then 3 workers on one queue shard (FERRY_QUEUE_SHARDS=1, how queues ran
 * before shards) — against the emulator answering after 200 ms. Each run does two things:
 *
 *   completions  N asynchronous completions: jobs/s against the one-worker run of the same run
 *                (the reference), and the CPU each job costs in the API, the workers, the
 *                emulator and the Redis masters;
 *   mixed        a 2,000-line batch with 500 asynchronous completions beside it: jobs/s, and the
 *                share of the commands (INFO commandstats) and of the new keys each master took.
 *
 *   BENCH_MACHINES_JOBS          completions per run (default 3000)
 *   BENCH_MACHINES_LATENCY_MS    the emulator's answer time (default 200)
 *   BENCH_MACHINES_CONCURRENCY   FERRY_GENERATE_CONCURRENCY per worker (default 32: one worker
 *                                then tops out at 32 / 0.2 s = 160 jobs/s, so what more workers
 *                                add is visible until the machine's CPUs are full)
 *   BENCH_MACHINES_LINES         lines of the mixed run's batch (default 2000)
 */
import os from 'node:os';
import OpenAI, { toFile } from 'openai';
import { startAzurite } from '../test/azurite.js';
import { startRedisCluster, type RedisCluster } from '../test/redis-cluster.js';
import {
  BENCH_API_KEY,
  cpuSeconds,
  emulatorAnswered,
  envInt,
  postAsyncCompletions,
  untilAnswered,
  now,
  round,
  Scope,
  startStack,
  waitFor,
  type Section,
  type Stack,
} from './lib.js';

const IN_FLIGHT = 64;
const MODEL = 'gemini-2.0-flash';
const MIXED_COMPLETIONS = 500;

interface CpuPerJob {
  api: number;
  workers: number;
  emulator: number;
  redis: number;
}

interface Run {
  workers: number;
  shards: number;
  jobsPerS: number;
  cpuMsPerJob: number;
  cpu: CpuPerJob;
  ms: number;
  mixed: { jobsPerS: number; commandShare: number[]; keyShare: number[] };
}

const share = (xs: number[]) => {
  const sum = xs.reduce((a, b) => a + b, 0);
  return xs.map((x) => round(sum ? x / sum : 0, 3));
};
const pct = (xs: number[]) => xs.map((x) => `${Math.round(x * 100)}%`).join(' / ');

const section: Section = {
  name: 'machines',
  title: 'several processes on a Redis Cluster with blob staging: async completions at model latency, 1 → 3 workers',
  async run({ scope, log }) {
    const n = envInt('BENCH_MACHINES_JOBS', 3000);
    const latency = envInt('BENCH_MACHINES_LATENCY_MS', 200);
    const concurrency = envInt('BENCH_MACHINES_CONCURRENCY', 32);
    const lines = envInt('BENCH_MACHINES_LINES', 2000);
    log(`machine: ${os.cpus().length} CPUs; ${n} completions per run, model latency ${latency} ms, ${concurrency} completions per worker`);
    const cluster = await startRedisCluster();
    scope.defer('stop the redis cluster', () => cluster.stop());
    const azurite = await startAzurite();
    scope.defer('stop azurite', () => azurite.stop());
    log(`redis cluster: ${cluster.nodes.join(', ')}; azurite ${azurite.endpoint}`);
    const runs: Run[] = [];
    for (const [workers, shards] of [
      [1, 3],
      [2, 3],
      [3, 3],
      [3, 1],
    ]) {
      const env = {
        REDIS_CLUSTER_NODES: cluster.nodes.join(','),
        FERRY_STAGING_CONTAINER: 'bench-staging',
        AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
        FERRY_GENERATE_CONCURRENCY: String(concurrency),
        FERRY_BATCH_WORKER_SLOTS: String(Math.max(1, concurrency / 2)),
        FERRY_QUEUE_SHARDS: String(shards),
      };
      // Each shape on fresh processes, stopped before the next run.
      const runScope = new Scope();
      let run: Run;
      try {
        const stack = await startStack(runScope, { env, workers, emulatorEnv: { FERRY_EMULATOR_LATENCY_MS: String(latency) } });
        const done = await completions(stack, cluster, n);
        const mixed = await mixedRun(stack, cluster, lines);
        run = { workers, shards, ...done, mixed };
      } finally {
        for (const problem of await runScope.close()) log(`cleanup problem: ${problem}`);
      }
      runs.push(run);
      // Requests are accepted at once (202): jobs queue, and the workers' slots bound the rate.
      const ideal = (workers * concurrency) / (latency / 1000);
      const c = run.cpu;
      log(
        `${workers} worker${workers > 1 ? 's' : ''}, ${shards} shard${shards > 1 ? 's' : ''}: ${run.jobsPerS.toFixed(0)} jobs/s (latency-bound ceiling ${ideal.toFixed(0)}/s), CPU per job ${run.cpuMsPerJob.toFixed(2)} ms = API ${c.api} + workers ${c.workers} + emulator ${c.emulator} + redis ${c.redis}; load ${os.loadavg()[0].toFixed(2)}`,
      );
      log(
        `  mixed (${lines}-line batch + ${MIXED_COMPLETIONS} completions): ${run.mixed.jobsPerS.toFixed(0)} jobs/s; commands per master ${pct(run.mixed.commandShare)}, new keys ${pct(run.mixed.keyShare)}`,
      );
    }
    const base = runs[0].jobsPerS;
    log(`jobs/s ÷ one worker's (same run): ${runs.map((r) => `${r.workers}w/${r.shards}s ${(r.jobsPerS / base).toFixed(2)}`).join(', ')}`);
    return {
      jobs: n,
      latency_ms: latency,
      concurrency_per_worker: concurrency,
      runs: runs.map((r) => ({
        workers: r.workers,
        shards: r.shards,
        jobs_per_s: round(r.jobsPerS),
        cpu_ms_per_job: round(r.cpuMsPerJob, 2),
        cpu_ms_per_job_by_process: r.cpu,
        ms: round(r.ms),
        mixed_jobs_per_s: round(r.mixed.jobsPerS),
        mixed_command_share_per_master: r.mixed.commandShare,
        mixed_key_share_per_master: r.mixed.keyShare,
      })),
      ratio_vs_one_worker: runs.map((r) => round(r.jobsPerS / base, 2)),
    };
  },
};

/** CPU seconds so far of each part: API, workers, emulator, Redis masters. */
function cpuParts(stack: Stack, cluster: RedisCluster): number[] {
  const sum = (pids: number[]) => pids.reduce((s, pid) => s + (cpuSeconds(pid) ?? 0), 0);
  return [sum([stack.api.pid]), sum(stack.workers.map((w) => w.pid)), sum([stack.emulator.pid]), sum(cluster.pids)];
}

async function completions(stack: Stack, cluster: RedisCluster, n: number): Promise<Omit<Run, 'workers' | 'shards' | 'mixed'>> {
  const base = await emulatorAnswered(stack, MODEL);
  const cpu0 = cpuParts(stack, cluster);
  const t0 = now();
  await postAsyncCompletions(stack, n, { model: MODEL, inFlight: IN_FLIGHT });
  await untilAnswered(stack, MODEL, base + n);
  const ms = now() - t0;
  const perJob = cpuParts(stack, cluster).map((c, i) => round(((c - cpu0[i]) * 1000) / n, 2));
  const cpu = { api: perJob[0], workers: perJob[1], emulator: perJob[2], redis: perJob[3] };
  return {
    jobsPerS: n / (ms / 1000),
    cpuMsPerJob: round(
      perJob.reduce((a, b) => a + b, 0),
      2,
    ),
    cpu,
    ms,
  };
}

/** A batch of `lines` lines and MIXED_COMPLETIONS completions at once, with each master's share of the work. */
async function mixedRun(stack: Stack, cluster: RedisCluster, lines: number): Promise<Run['mixed']> {
  const client = new OpenAI({ apiKey: BENCH_API_KEY, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
  const jsonl = Array.from({ length: lines }, (_, i) =>
    JSON.stringify({
      custom_id: `line-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: MODEL, messages: [{ role: 'user', content: `line ${i}` }] },
    }),
  ).join('\n');
  const input = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'mixed.jsonl'), purpose: 'batch' });
  const keys0 = await cluster.keysPerNode();
  await cluster.resetStats();
  const base = await emulatorAnswered(stack, MODEL);
  const t0 = now();
  const batch = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  await postAsyncCompletions(stack, MIXED_COMPLETIONS, { model: MODEL, inFlight: IN_FLIGHT, from: 1_000_000 });
  await untilAnswered(stack, MODEL, base + lines + MIXED_COMPLETIONS);
  await waitFor("the mixed run's batch to complete", async () => (await client.batches.retrieve(batch.id)).status === 'completed', {
    timeoutMs: 5 * 60_000,
    intervalMs: 200,
    check: () => stack.procs.forEach((p) => p.assertAlive()),
  });
  const ms = now() - t0;
  const commands = await cluster.commandsPerNode();
  const keys = (await cluster.keysPerNode()).map((k, i) => k - keys0[i]);
  return { jobsPerS: (lines + MIXED_COMPLETIONS) / (ms / 1000), commandShare: share(commands), keyShare: share(keys) };
}

export default section;
