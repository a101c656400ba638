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
import { deleteByPrefix } from '../test/redis-keys.js';
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
  type HttpAnswer,
  type Proc,
  type Scope,
  type Section,
  type SectionContext,
  type Stack,
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

type Post = (content: string) => Promise<HttpAnswer>;

/** POSTs a one-message completion to `url`. */
function poster(agent: http.Agent, url: string, headers: Record<string, string> = {}): Post {
  return (content) =>
    httpRequest(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: 'gemini-2.0-flash', messages: [{ role: 'user', content }] }),
    });
}

/** What every measurement shares: the warmed-up stack and the ways to reach it. */
interface Rig {
  scope: Scope;
  log: (line?: string) => void;
  /** Jobs per throughput run. */
  n: number;
  stack: Stack;
  agent: http.Agent;
  completionsUrl: string;
  auth: Record<string, string>;
  /** One asynchronous completion (Prefer: respond-async). */
  post: Post;
  /** Jobs Ferry's generate queue has completed so far. */
  completed: () => Promise<number>;
  redisPid: number | null;
}

async function startRig({ scope, log }: SectionContext, n: number): Promise<Rig> {
  const stack = await startStack(scope, {
    env: { FERRY_TENANT_MAX_RUNNING: '0', FERRY_GENERATE_CONCURRENCY: String(CONCURRENCY) },
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  scope.defer('close http agent', () => agent.destroy());
  const completionsUrl = `${stack.apiUrl}/v1/chat/completions`;
  const auth = { authorization: `Bearer ${BENCH_API_KEY}` };
  const post = poster(agent, completionsUrl, { ...auth, prefer: 'respond-async' });
  const generate = new Queue('generate', { connection: stack.redis, prefix: stack.prefix });
  scope.defer('close generate queue handle', () => generate.close());
  const completed = async () => (await generate.getJobCounts('completed')).completed ?? 0;

  // Warm-up: first requests pay for module loading and connection set-up.
  for (let i = 0; i < 20; i++) await post(`warm-up ${i}`);
  while ((await completed()) < 20) await sleep(50);

  const redisPid = Number(/process_id:(\d+)/.exec(await stack.redis.info('server'))?.[1]) || null;
  return { scope, log, n, stack, agent, completionsUrl, auth, post, completed, redisPid };
}

/** CPU per job of every process, from now until the answered function is called: where a phase's time went. */
function cpuMeter(rig: Rig, [api, worker]: [Proc, Proc] = [rig.stack.api, rig.stack.worker]): () => string {
  const { stack, redisPid, n } = rig;
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
}

/** `n` requests, IN_FLIGHT at a time, then until `done()` has grown by as many as were accepted. */
async function drive(n: number, post: (content: string) => Promise<{ status: number }>, done: () => Promise<number>) {
  const base = await done();
  const started = now();
  let refused = 0;
  await inFlight(n, async (i) => {
    if ((await post(`bench job ${i}`)).status !== 202) refused++;
  });
  const submittedMs = now() - started;
  while ((await done()) - base < n - refused) await sleep(20);
  return { submittedMs, ms: now() - started, refused };
}

/** Jobs per second of raw BullMQ no-op jobs, added in bulk and one by one. */
async function measureRawBullmq(rig: Rig): Promise<{ bulk: number; single: number }> {
  const { scope, log, n, stack } = rig;
  log(`raw BullMQ: ${n} no-op jobs, concurrency ${CONCURRENCY} …`);
  const rawPrefix = `${stack.prefix}-raw`;
  scope.defer(`delete redis keys ${rawPrefix}:*`, () => deleteByPrefix(stack.redis, rawPrefix));
  const cpu = cpuMeter(rig);
  const bulk = (n * 1000) / (await rawBullmq(stack.redisUrl, rawPrefix, n, CONCURRENCY)).ms;
  log(`  added with addBulk: ${bulk.toFixed(0)} jobs/s (CPU per job: ${cpu()})`);
  const single = (n * 1000) / (await rawBullmq(stack.redisUrl, `${rawPrefix}-single`, n, CONCURRENCY, IN_FLIGHT)).ms;
  scope.defer(`delete redis keys ${rawPrefix}-single:*`, () => deleteByPrefix(stack.redis, `${rawPrefix}-single`));
  log(`  added one by one, ${IN_FLIGHT} in flight (as the API adds them): ${single.toFixed(0)} jobs/s`);
  return { bulk, single };
}

/** Ferry's asynchronous completions end to end, compared with raw BullMQ. */
async function measureFerry(rig: Rig, raw: { bulk: number; single: number }) {
  const { log, n } = rig;
  log(`Ferry: ${n} async completions (${IN_FLIGHT} requests in flight) …`);
  const cpu = cpuMeter(rig);
  const run = await drive(n, rig.post, rig.completed);
  const jobsPerS = (n * 1000) / run.ms;
  const ratio = jobsPerS / raw.bulk;
  log(
    `  submitted in ${round(run.submittedMs / 1000, 2)} s (${((n * 1000) / run.submittedMs).toFixed(0)} req/s), all done in ${round(run.ms / 1000, 2)} s`,
  );
  log(`  CPU per job: ${cpu()}`);
  log(
    `  ${jobsPerS.toFixed(0)} jobs/s end to end; ratio to raw BullMQ ${ratio.toFixed(2)} (target ≥ 0.5: ${verdict(ratio >= 0.5)}); to one-by-one adds ${(jobsPerS / raw.single).toFixed(2)}`,
  );
  return { jobsPerS, ratio, refused: run.refused };
}

/**
 * Jobs per second of a floor (bench/floor.ts): the same requests through `apiRole`'s HTTP
 * server, one BullMQ add, and a worker that only calls the emulator through @google/genai.
 * `raw` and `ferry` (jobs per second) are what it is compared with.
 */
async function measureFloor(rig: Rig, apiRole: 'api' | 'api-express', what: string, raw: number, ferry: number): Promise<number> {
  const { scope, log, n, stack } = rig;
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
  const procs = [apiRole, 'worker'].map((role) => spawnNode(scope, `floor-${role}`, ['--import', 'tsx', 'bench/floor.ts', role], floorEnv));
  await Promise.all(
    procs.map((p) =>
      waitFor(`floor ${p.name}`, async () => p.tail().includes('ready'), { timeoutMs: 60_000, check: () => p.assertAlive() }),
    ),
  );
  const floorQueue = new Queue('floor', { connection: stack.redis, prefix: floorPrefix });
  scope.defer('close floor queue handle', () => floorQueue.close());
  const floorDone = async () => (await floorQueue.getJobCounts('completed')).completed ?? 0;
  const floorPost = poster(rig.agent, `http://127.0.0.1:${floorPort}/`);
  await drive(n, floorPost, floorDone); // warm-up: JIT and connections, as Ferry had
  log(`floor (${what} + BullMQ add → worker + @google/genai → emulator): ${n} jobs …`);
  const floorCpu = cpuMeter(rig, [procs[0], procs[1]]);
  const floorRun = await drive(n, floorPost, floorDone);
  const rate = (n * 1000) / floorRun.ms;
  log(`  CPU per job: ${floorCpu()}`);
  log(`  ${rate.toFixed(0)} jobs/s; ratio to raw BullMQ ${(rate / raw).toFixed(2)}; Ferry reaches ${(ferry / rate).toFixed(2)} of it`);
  await Promise.all(procs.map((p) => p.stop()));
  return rate;
}

/** Latency of asynchronous completions sent at a fixed rate, from send to the API's answer. */
async function measureEnqueueLatency(rig: Rig, rate: number, seconds: number): Promise<{ p50: number; p99: number }> {
  rig.log(`enqueue latency at ${rate} requests/s for ${seconds} s …`);
  const latencies: number[] = [];
  const total = rate * seconds;
  const t0 = now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    inflight.push(
      (async () => {
        const s = now();
        await rig.post(`latency ${i}`);
        latencies.push(now() - s);
      })(),
    );
  }
  await Promise.all(inflight);
  latencies.sort((a, b) => a - b);
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  rig.log(`  p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms over ${latencies.length} requests`);
  return { p50, p99 };
}

/** The SDK's default: each request waits for its completion (a long-poll on the job). */
async function measureSyncCompletions(rig: Rig) {
  const syncN = Math.min(rig.n, 2000);
  rig.log(`synchronous completions: ${syncN}, ${IN_FLIGHT} in flight …`);
  const syncPost = poster(rig.agent, rig.completionsUrl, rig.auth);
  const latencies: number[] = [];
  const s0 = now();
  await inFlight(syncN, async (i) => {
    const s = now();
    const answer = await syncPost(`sync ${i}`);
    if (answer.status !== 200) throw new Error(`a synchronous completion answered ${answer.status}`);
    latencies.push(now() - s);
  });
  const perS = (syncN * 1000) / (now() - s0);
  latencies.sort((a, b) => a - b);
  const [p50, p99, max] = [percentile(latencies, 50), percentile(latencies, 99), latencies[latencies.length - 1]];
  rig.log(`  ${perS.toFixed(0)} completions/s; latency p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`);
  return { perS, p50, p99, max };
}

const section: Section = {
  name: 'jobs',
  title: 'asynchronous chat completions vs raw BullMQ, and enqueue latency',
  async run(ctx) {
    const n = envInt('BENCH_JOBS', 5000);
    const rate = envInt('BENCH_RATE', 200);
    const rateSeconds = envInt('BENCH_RATE_SECONDS', 5);
    const rig = await startRig(ctx, n);
    const raw = await measureRawBullmq(rig);
    const ferry = await measureFerry(rig, raw);
    const floorHttp = await measureFloor(rig, 'api', 'bare HTTP server', raw.bulk, ferry.jobsPerS);
    const floorExpress = await measureFloor(rig, 'api-express', 'one Express route', raw.bulk, ferry.jobsPerS);
    const enqueue = await measureEnqueueLatency(rig, rate, rateSeconds);
    const sync = await measureSyncCompletions(rig);
    return {
      jobs: n,
      refused: ferry.refused,
      raw_bullmq_jobs_per_s: round(raw.bulk, 0),
      raw_bullmq_single_add_jobs_per_s: round(raw.single, 0),
      ratio_single_add: round(ferry.jobsPerS / raw.single, 2),
      ferry_jobs_per_s: round(ferry.jobsPerS, 0),
      ratio: round(ferry.ratio, 2),
      ratio_target_met: ferry.ratio >= 0.5,
      floor_jobs_per_s: round(floorHttp, 0),
      floor_ratio: round(floorHttp / raw.bulk, 2),
      ferry_to_floor: round(ferry.jobsPerS / floorHttp, 2),
      express_floor_jobs_per_s: round(floorExpress, 0),
      express_floor_ratio: round(floorExpress / raw.bulk, 2),
      ferry_to_express_floor: round(ferry.jobsPerS / floorExpress, 2),
      enqueue_rate_per_s: rate,
      enqueue_p50_ms: round(enqueue.p50, 1),
      enqueue_p99_ms: round(enqueue.p99, 1),
      sync_completions_per_s: round(sync.perS, 0),
      sync_p50_ms: round(sync.p50, 1),
      sync_p99_ms: round(sync.p99, 1),
      sync_max_ms: round(sync.max, 1),
    };
  },
};

export default section;
