/**
 * machines: Ferry in the shape of several machines — a three-master Redis Cluster (real
 * redis-server processes), staging in a blob container (Azurite), and 1, 2 then 3 `ferry
 * worker` processes — running N asynchronous completions against the emulator answering after
 * 200 ms. Reports jobs/s for each worker count against the one-worker run of the same run
 * (the reference), and the CPU each job costs across API and workers.
 *
 *   BENCH_MACHINES_JOBS          completions per run (default 3000)
 *   BENCH_MACHINES_LATENCY_MS    the emulator's answer time (default 200)
 *   BENCH_MACHINES_CONCURRENCY   FERRY_GENERATE_CONCURRENCY per worker (default 32: one worker
 *                                then tops out at 32 / 0.2 s = 160 jobs/s, so what more workers
 *                                add is visible until the machine's CPUs are full)
 */
import http from 'node:http';
import os from 'node:os';
import { startAzurite } from '../test/azurite.js';
import { startRedisCluster } from '../test/redis-cluster.js';
import { BENCH_API_KEY, envInt, httpRequest, now, round, Scope, sleep, startStack, type Section, type Stack } from './lib.js';

const IN_FLIGHT = 64;
const MODEL = 'gemini-2.0-flash';

interface Run {
  workers: number;
  jobsPerS: number;
  cpuMsPerJob: number;
  ms: number;
}

const section: Section = {
  name: 'machines',
  title: 'several processes on a Redis Cluster with blob staging: async completions at model latency, 1 → 3 workers',
  async run({ scope, log }) {
    const n = envInt('BENCH_MACHINES_JOBS', 3000);
    const latency = envInt('BENCH_MACHINES_LATENCY_MS', 200);
    const concurrency = envInt('BENCH_MACHINES_CONCURRENCY', 32);
    log(`machine: ${os.cpus().length} CPUs; ${n} completions per run, model latency ${latency} ms, ${concurrency} completions per worker`);
    const cluster = await startRedisCluster();
    scope.defer('stop the redis cluster', () => cluster.stop());
    const azurite = await startAzurite();
    scope.defer('stop azurite', () => azurite.stop());
    log(`redis cluster: ${cluster.nodes.join(', ')}; azurite ${azurite.endpoint}`);
    const runs: Run[] = [];
    for (const workers of [1, 2, 3]) {
      const env = {
        REDIS_CLUSTER_NODES: cluster.nodes.join(','),
        FERRY_STAGING_CONTAINER: 'bench-staging',
        AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
        FERRY_GENERATE_CONCURRENCY: String(concurrency),
        FERRY_BATCH_WORKER_SLOTS: String(Math.max(1, concurrency / 2)),
      };
      // Each worker count on fresh processes, stopped before the next run.
      const runScope = new Scope();
      let run: Run;
      try {
        const stack = await startStack(runScope, { env, workers, emulatorEnv: { FERRY_EMULATOR_LATENCY_MS: String(latency) } });
        run = await completions(stack, n, workers);
      } finally {
        for (const problem of await runScope.close()) log(`cleanup problem: ${problem}`);
      }
      runs.push(run);
      // Requests are accepted at once (202): jobs queue, and the workers' slots bound the rate.
      const ideal = (workers * concurrency) / (latency / 1000);
      log(
        `${workers} worker${workers > 1 ? 's' : ''}: ${run.jobsPerS.toFixed(0)} jobs/s (latency-bound ceiling ${ideal.toFixed(0)}/s), CPU per job ${run.cpuMsPerJob.toFixed(2)} ms (API and workers), load ${os.loadavg()[0].toFixed(2)}`,
      );
    }
    const base = runs[0].jobsPerS;
    log(`jobs/s ÷ one worker's (same run): ${runs.map((r) => `${r.workers}w ${(r.jobsPerS / base).toFixed(2)}`).join(', ')}`);
    return {
      jobs: n,
      latency_ms: latency,
      concurrency_per_worker: concurrency,
      runs: runs.map((r) => ({
        workers: r.workers,
        jobs_per_s: round(r.jobsPerS),
        cpu_ms_per_job: round(r.cpuMsPerJob, 2),
        ms: round(r.ms),
      })),
      ratio_vs_one_worker: runs.map((r) => round(r.jobsPerS / base, 2)),
    };
  },
};

/** `n` asynchronous completions, IN_FLIGHT at a time, until the emulator has answered every one. */
async function completions(stack: Stack, n: number, workers: number): Promise<Run> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const answered = async () =>
    (await httpRequest(`${stack.emulatorUrl}/_emulator/stats`)).json().generateByModel?.[MODEL]?.answered2xx ?? 0;
  const post = (i: number) =>
    httpRequest(`${stack.apiUrl}/v1/chat/completions`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_API_KEY}`, prefer: 'respond-async' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `job ${i}` }] }),
    });
  const procs = [stack.api, ...stack.workers];
  const cpu = () => procs.reduce((s, p) => s + (p.cpu() ?? 0), 0);
  const base = await answered();
  const cpu0 = cpu();
  const t0 = now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) {
        const res = await post(next++);
        if (res.status !== 202) throw new Error(`a completion was refused: ${res.status} ${res.text().slice(0, 200)}`);
      }
    }),
  );
  while ((await answered()) - base < n) {
    procs.forEach((p) => p.assertAlive());
    await sleep(50);
  }
  const ms = now() - t0;
  agent.destroy();
  return { workers, jobsPerS: n / (ms / 1000), cpuMsPerJob: ((cpu() - cpu0) * 1000) / n, ms };
}

export default section;
