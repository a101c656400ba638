/**
 * Section `jobs`: N asynchronous chat completions (default 5,000; BENCH_JOBS) through
 * API → Redis → worker → emulator (zero latency), against raw BullMQ add + process of
 * no-op jobs on the same Redis in the same run, and against the floors of bench/floor.ts
 * (the least an HTTP-in, SDK-out pipeline costs here, with a bare HTTP server and with
 * one Express route), each with the CPU every process spends per job; then the API's
 * enqueue latency at a fixed request rate (BENCH_RATE per second for BENCH_RATE_SECONDS),
 * and synchronous completions (the SDK's default: each request waits for its result).
 */
import http from 'node:http';
import { Queue } from 'bullmq';
import { deleteByPrefix } from '../src/core/redis.js';
import {
  BENCH_API_KEY,
  cpuSeconds,
  envInt,
  freePort,
  httpRequest,
  now,
  rawBullmq,
  round,
  sleep,
  spawnNode,
  startStack,
  verdict,
  waitFor,
  type Section,
} from './lib.js';

const CONCURRENCY = 16;
/** Requests the bench client keeps in flight. */
const IN_FLIGHT = 32;

/** Runs `task(i)` for every i below `count`, `IN_FLIGHT` at a time. */
async function inFlight(count: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
}

const section: Section = {
  name: 'jobs',
  title: 'asynchronous chat completions vs raw BullMQ, and enqueue latency',
  async run({ scope, log }) {
    const n = envInt('BENCH_JOBS', 5000);
    const rate = envInt('BENCH_RATE', 200);
    const rateSeconds = envInt('BENCH_RATE_SECONDS', 5);
    const stack = await startStack(scope, {
      env: { FERRY_TENANT_MAX_RUNNING: '0', FERRY_GENERATE_CONCURRENCY: String(CONCURRENCY) },
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    scope.defer('close http agent', () => agent.destroy());
    /** POSTs a one-message completion to `url`. */
    const poster =
      (url: string, headers: Record<string, string> = {}) =>
      (content: string) =>
        httpRequest(url, {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ model: 'gemini-2.0-flash', messages: [{ role: 'user', content }] }),
        });
    const completionsUrl = `${stack.apiUrl}/v1/chat/completions`;
    const auth = { authorization: `Bearer ${BENCH_API_KEY}` };
    const post = poster(completionsUrl, { ...auth, prefer: 'respond-async' });
    const generate = new Queue('generate', { connection: stack.redis, prefix: stack.prefix });
    scope.defer('close generate queue handle', () => generate.close());
    const completed = async () => (await generate.getJobCounts('completed')).completed ?? 0;

    // Warm-up: first requests pay for module loading and connection set-up.
    for (let i = 0; i < 20; i++) await post(`warm-up ${i}`);
    while ((await completed()) < 20) await sleep(50);

    const redisPid = Number(/process_id:(\d+)/.exec(await stack.redis.info('server'))?.[1]) || null;
    /** CPU seconds per process since the last call: where a phase's time went. */
    const cpuMeter = ([api, worker] = [stack.api, stack.worker]) => {
      const read = () => ({
        bench: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
        api: api.cpu() ?? 0,
        worker: worker.cpu() ?? 0,
        emulator: stack.emulator.cpu() ?? 0,
        redis: redisPid ? (cpuSeconds(redisPid) ?? 0) : 0,
      });
      const before = read();
      return () => {
        const after = read();
        return Object.entries(after)
          .map(([k, v]) => `${k} ${((1e6 * (v - before[k as keyof typeof before])) / n).toFixed(0)} µs`)
          .join(', ');
      };
    };

    log(`raw BullMQ: ${n} no-op jobs, concurrency ${CONCURRENCY} …`);
    const rawPrefix = `${stack.prefix}-raw`;
    scope.defer(`delete redis keys ${rawPrefix}:*`, () => deleteByPrefix(stack.redis, rawPrefix));
    let cpu = cpuMeter();
    const raw = (n * 1000) / (await rawBullmq(stack.redisUrl, rawPrefix, n, CONCURRENCY)).ms;
    log(`  added with addBulk: ${raw.toFixed(0)} jobs/s (CPU per job: ${cpu()})`);
    const rawSingle = (n * 1000) / (await rawBullmq(stack.redisUrl, `${rawPrefix}-single`, n, CONCURRENCY, IN_FLIGHT)).ms;
    scope.defer(`delete redis keys ${rawPrefix}-single:*`, () => deleteByPrefix(stack.redis, `${rawPrefix}-single`));
    log(`  added one by one, ${IN_FLIGHT} in flight (as the API adds them): ${rawSingle.toFixed(0)} jobs/s`);

    /** `n` requests, IN_FLIGHT at a time, then until `done()` has grown by as many as were accepted. */
    const drive = async (post: (content: string) => Promise<{ status: number }>, done: () => Promise<number>) => {
      const base = await done();
      const started = now();
      let refused = 0;
      await inFlight(n, async (i) => {
        if ((await post(`bench job ${i}`)).status !== 202) refused++;
      });
      const submittedMs = now() - started;
      while ((await done()) - base < n - refused) await sleep(20);
      return { submittedMs, ms: now() - started, refused };
    };

    log(`Ferry: ${n} async completions (${IN_FLIGHT} requests in flight) …`);
    cpu = cpuMeter();
    const run = await drive(post, completed);
    const { refused } = run;
    const ferry = (n * 1000) / run.ms;
    const ratio = ferry / raw;
    log(
      `  submitted in ${round(run.submittedMs / 1000, 2)} s (${((n * 1000) / run.submittedMs).toFixed(0)} req/s), all done in ${round(run.ms / 1000, 2)} s`,
    );
    log(`  CPU per job: ${cpu()}`);
    log(
      `  ${ferry.toFixed(0)} jobs/s end to end; ratio to raw BullMQ ${ratio.toFixed(2)} (target ≥ 0.5: ${verdict(ratio >= 0.5)}); to one-by-one adds ${(ferry / rawSingle).toFixed(2)}`,
    );

    // The floors: the same requests through a bare HTTP server (then one Express route), one
    // BullMQ add, and a worker that only calls the emulator through @google/genai (bench/floor.ts).
    const floor = async (apiRole: 'api' | 'api-express', what: string) => {
      const floorPrefix = `${stack.prefix}-${apiRole}-floor`;
      scope.defer(`delete redis keys ${floorPrefix}:*`, () => deleteByPrefix(stack.redis, floorPrefix));
      const floorPort = await freePort();
      const floorEnv = {
        REDIS_URL: stack.redisUrl,
        FLOOR_PREFIX: floorPrefix,
        PORT: String(floorPort),
        GEMINI_BASE_URL: stack.emulatorUrl,
        FLOOR_CONCURRENCY: String(CONCURRENCY),
      };
      const procs = [apiRole, 'worker'].map((role) =>
        spawnNode(scope, `floor-${role}`, ['--import', 'tsx', 'bench/floor.ts', role], floorEnv),
      );
      await Promise.all(
        procs.map((p) =>
          waitFor(`floor ${p.name}`, async () => p.tail().includes('ready'), { timeoutMs: 60_000, check: () => p.assertAlive() }),
        ),
      );
      const floorQueue = new Queue('floor', { connection: stack.redis, prefix: floorPrefix });
      scope.defer('close floor queue handle', () => floorQueue.close());
      const floorDone = async () => (await floorQueue.getJobCounts('completed')).completed ?? 0;
      const floorPost = poster(`http://127.0.0.1:${floorPort}/`);
      await drive(floorPost, floorDone); // warm-up: JIT and connections, as Ferry had
      log(`floor (${what} + BullMQ add → worker + @google/genai → emulator): ${n} jobs …`);
      const floorCpu = cpuMeter([procs[0], procs[1]]);
      const floorRun = await drive(floorPost, floorDone);
      const rate = (n * 1000) / floorRun.ms;
      log(`  CPU per job: ${floorCpu()}`);
      log(`  ${rate.toFixed(0)} jobs/s; ratio to raw BullMQ ${(rate / raw).toFixed(2)}; Ferry reaches ${(ferry / rate).toFixed(2)} of it`);
      await Promise.all(procs.map((p) => p.stop()));
      return rate;
    };
    const floorHttp = await floor('api', 'bare HTTP server');
    const floorExpress = await floor('api-express', 'one Express route');

    log(`enqueue latency at ${rate} requests/s for ${rateSeconds} s …`);
    const latencies: number[] = [];
    const total = rate * rateSeconds;
    const t0 = now();
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      inflight.push(
        (async () => {
          const s = now();
          await post(`latency ${i}`);
          latencies.push(now() - s);
        })(),
      );
    }
    await Promise.all(inflight);
    latencies.sort((a, b) => a - b);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    log(`  p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms over ${latencies.length} requests`);

    // The SDK's default: each request waits for its completion (a long-poll on the job).
    const syncN = Math.min(n, 2000);
    log(`synchronous completions: ${syncN}, ${IN_FLIGHT} in flight …`);
    const syncPost = poster(completionsUrl, auth);
    const syncLatencies: number[] = [];
    const s0 = now();
    await inFlight(syncN, async (i) => {
      const s = now();
      const answer = await syncPost(`sync ${i}`);
      if (answer.status !== 200) throw new Error(`a synchronous completion answered ${answer.status}`);
      syncLatencies.push(now() - s);
    });
    const syncRate = (syncN * 1000) / (now() - s0);
    syncLatencies.sort((a, b) => a - b);
    const [syncP50, syncP99, syncMax] = [
      percentile(syncLatencies, 50),
      percentile(syncLatencies, 99),
      syncLatencies[syncLatencies.length - 1],
    ];
    log(
      `  ${syncRate.toFixed(0)} completions/s; latency p50 ${syncP50.toFixed(1)} ms, p99 ${syncP99.toFixed(1)} ms, max ${syncMax.toFixed(1)} ms`,
    );
    return {
      jobs: n,
      refused,
      raw_bullmq_jobs_per_s: round(raw, 0),
      raw_bullmq_single_add_jobs_per_s: round(rawSingle, 0),
      ratio_single_add: round(ferry / rawSingle, 2),
      ferry_jobs_per_s: round(ferry, 0),
      ratio: round(ratio, 2),
      ratio_target_met: ratio >= 0.5,
      floor_jobs_per_s: round(floorHttp, 0),
      floor_ratio: round(floorHttp / raw, 2),
      ferry_to_floor: round(ferry / floorHttp, 2),
      express_floor_jobs_per_s: round(floorExpress, 0),
      express_floor_ratio: round(floorExpress / raw, 2),
      ferry_to_express_floor: round(ferry / floorExpress, 2),
      enqueue_rate_per_s: rate,
      enqueue_p50_ms: round(p50, 1),
      enqueue_p99_ms: round(p99, 1),
      sync_completions_per_s: round(syncRate, 0),
      sync_p50_ms: round(syncP50, 1),
      sync_p99_ms: round(syncP99, 1),
      sync_max_ms: round(syncMax, 1),
    };
  },
};

export default section;
