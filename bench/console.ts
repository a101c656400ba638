/**
 * console: what open consoles cost a pipeline that runs under production conditions — two
 * `ferry worker` processes, the emulator answering after 1 s and holding a quota (so Gemini's 429s
 * and the learned rate are in play). The same N asynchronous completions run twice on one stack:
 *
 *   reference   nobody watching;
 *   watched     BENCH_CONSOLE_TABS consoles open on the overview, as the browser's page does: a
 *               conditional long-poll on `/v1/activity`, and the cards' two lists
 *               (`/v1/batches?limit=100`, `/v1/webhook_deliveries?status=failed`) read every 5 s.
 *
 * Reported: jobs/s and CPU per job (API, workers, Redis) of each run and their ratios; the Redis
 * commands per job, and of them the activity's writes; the API's memory at start, after each run,
 * and after each of five rounds of 1,000 requests for the console's files.
 *
 *   BENCH_CONSOLE_JOBS          completions per run (default 600)
 *   BENCH_CONSOLE_TABS          consoles open in the watched run (default 10)
 *   BENCH_CONSOLE_LATENCY_MS    the emulator's answer time (default 1000)
 *   BENCH_CONSOLE_RPM           the emulator's quota per model (default 1800: 30 calls/s, below what the workers could send)
 */
import http from 'node:http';
import type { Redis } from 'ioredis';
import {
  cpuSeconds,
  emulatorAnswered,
  envInt,
  fmtMB,
  httpRequest,
  now,
  postAsyncCompletions,
  rssBytes,
  round,
  sleep,
  startStack,
  untilAnswered,
  type Section,
  type Stack,
} from './lib.js';

const MODEL = 'gemini-2.0-flash';
const IN_FLIGHT = 64;
const CONCURRENCY = 32;
/** What one console open on the overview asks: a long-poll on the activity, and the cards' lists every 5 s. */
const WATCHED = '/v1/activity?seconds=3600';
const POLLED = ['/v1/batches?limit=100', '/v1/webhook_deliveries?status=failed&limit=100'];
const POLL_MS = 5000;

interface Run {
  jobsPerS: number;
  cpuMsPerJob: { api: number; workers: number; redis: number };
  redisCommandsPerJob: number;
  activityWritesPerJob: number;
  answers: number;
}

/** Redis' CPU seconds and command counts (the bench's Redis is this run's alone). */
async function redisCounters(redis: Redis): Promise<{ cpu: number; commands: number; activity: number }> {
  const info = `${await redis.info('cpu')}${await redis.info('stats')}${await redis.info('commandstats')}`;
  const num = (re: RegExp) => Number(re.exec(info)?.[1] ?? 0);
  return {
    cpu: num(/used_cpu_user:([\d.]+)/) + num(/used_cpu_sys:([\d.]+)/),
    commands: num(/total_commands_processed:(\d+)/),
    activity: num(/cmdstat_hincrbyfloat:calls=(\d+)/),
  };
}

/** `tabs` consoles on the overview, until `signal` aborts; answers how many answers they had. */
function openConsoles(stack: Stack, tabs: number, signal: AbortSignal): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: tabs * 3 });
  const headers = { authorization: `Bearer ${stack.apiKey}` };
  let answers = 0;
  const watch = async (path: string) => {
    let etag: string | undefined;
    while (!signal.aborted) {
      const url = `${stack.apiUrl}${path}${etag ? '&wait=25' : ''}`;
      const held: Record<string, string> = { ...headers, ...(etag ? { 'if-none-match': etag } : {}) };
      const res = await httpRequest(url, { headers: held, agent }).catch(() => null);
      if (!res || signal.aborted) break;
      answers++;
      if (res.status === 200) etag = String(res.headers.etag);
      else if (res.status !== 304) throw new Error(`${path} answered ${res.status}: ${res.text().slice(0, 200)}`);
    }
  };
  const poll = async () => {
    while (!signal.aborted) {
      const got = await Promise.all(POLLED.map((p) => httpRequest(`${stack.apiUrl}${p}`, { headers, agent }).catch(() => null)));
      answers += got.filter(Boolean).length;
      await sleep(POLL_MS);
    }
  };
  const loops = Array.from({ length: tabs }, () => [watch(WATCHED), poll()]).flat();
  signal.addEventListener('abort', () => agent.destroy(), { once: true });
  return Promise.all(loops).then(() => answers);
}

async function run(stack: Stack, n: number, tabs: number): Promise<Run> {
  const ac = new AbortController();
  // A watch that fails ends the run with its error, after the other watches stop.
  let failed: unknown = null;
  const watching = tabs
    ? openConsoles(stack, tabs, ac.signal).catch((err) => {
        failed = err;
        ac.abort();
        return 0;
      })
    : Promise.resolve(0);
  const cpu = () => [cpuSeconds(stack.api.pid) ?? 0, stack.workers.reduce((a, w) => a + (cpuSeconds(w.pid) ?? 0), 0)];
  const base = await emulatorAnswered(stack, MODEL);
  const [cpu0, r0] = [cpu(), await redisCounters(stack.redis)];
  const t0 = now();
  await postAsyncCompletions(stack, n, { model: MODEL, inFlight: IN_FLIGHT, from: base });
  await untilAnswered(stack, MODEL, base + n);
  const ms = now() - t0;
  const [cpu1, r1] = [cpu(), await redisCounters(stack.redis)];
  ac.abort();
  const answers = await watching;
  if (failed) throw failed;
  const perJob = (a: number, b: number) => round(((b - a) * 1000) / n, 2);
  return {
    jobsPerS: round(n / (ms / 1000), 1),
    cpuMsPerJob: { api: perJob(cpu0[0], cpu1[0]), workers: perJob(cpu0[1], cpu1[1]), redis: perJob(r0.cpu, r1.cpu) },
    redisCommandsPerJob: round((r1.commands - r0.commands) / n, 1),
    activityWritesPerJob: round((r1.activity - r0.activity) / n, 2),
    answers,
  };
}

const section: Section = {
  name: 'console',
  title: 'open consoles beside a pipeline at 1 s model latency under a quota, 2 workers: their cost, and the API memory',
  async run({ scope, log }) {
    const n = envInt('BENCH_CONSOLE_JOBS', 600);
    const tabs = envInt('BENCH_CONSOLE_TABS', 10);
    const latency = envInt('BENCH_CONSOLE_LATENCY_MS', 1000);
    const rpm = envInt('BENCH_CONSOLE_RPM', 1800);
    const stack = await startStack(scope, {
      workers: 2,
      env: { FERRY_GENERATE_CONCURRENCY: String(CONCURRENCY) },
      emulatorEnv: { FERRY_EMULATOR_LATENCY_MS: String(latency), FERRY_EMULATOR_RPM: String(rpm) },
    });
    log(`${n} completions per run; model latency ${latency} ms; quota ${rpm} requests/min; 2 workers × ${CONCURRENCY}`);
    const rss0 = rssBytes(stack.api.pid);
    // A first run warms the processes and lets the workers learn the quota; it is not reported.
    await run(stack, Math.min(n, 200), 0);
    const reference = await run(stack, n, 0);
    const rssReference = rssBytes(stack.api.pid);
    const watched = await run(stack, n, tabs);
    const rssWatched = rssBytes(stack.api.pid);
    // The console's files in five rounds: memory that grew with them would grow in every round.
    const assets = ['/console/', '/console/app.js', '/console/app.css'];
    const serve = async () => {
      for (let i = 0; i < 1000; i++) await httpRequest(`${stack.apiUrl}${assets[i % assets.length]}`);
      return rssBytes(stack.api.pid);
    };
    const rssAssets: Array<number | null> = [];
    for (let round = 0; round < 5; round++) rssAssets.push(await serve());

    const ratio = (a: number, b: number) => (a ? round(b / a, 2) : null);
    const line = (name: string, r: Run) =>
      log(
        `${name.padEnd(10)} ${String(r.jobsPerS).padStart(6)} jobs/s   CPU ms/job: API ${r.cpuMsPerJob.api}, workers ${r.cpuMsPerJob.workers}, Redis ${r.cpuMsPerJob.redis}   ` +
          `Redis commands/job ${r.redisCommandsPerJob} (activity writes ${r.activityWritesPerJob})${r.answers ? `   ${r.answers} long-poll answers` : ''}`,
      );
    line('reference', reference);
    line(`${tabs} tabs`, watched);
    const ratios = {
      jobsPerS: ratio(reference.jobsPerS, watched.jobsPerS),
      apiCpuPerJob: ratio(reference.cpuMsPerJob.api, watched.cpuMsPerJob.api),
      redisCommandsPerJob: ratio(reference.redisCommandsPerJob, watched.redisCommandsPerJob),
    };
    log(
      `watched / reference: jobs/s ${ratios.jobsPerS}, API CPU per job ${ratios.apiCpuPerJob}, Redis commands per job ${ratios.redisCommandsPerJob}`,
    );
    log(
      `API memory (RSS): ${fmtMB(rss0)} at start, ${fmtMB(rssReference)} after the reference run, ${fmtMB(rssWatched)} after the watched run; ` +
        `after each 1,000 console files: ${rssAssets.map(fmtMB).join(', ')}`,
    );
    return {
      jobs: n,
      tabs,
      latencyMs: latency,
      rpm,
      reference,
      watched,
      ratios,
      apiRssBytes: { start: rss0, reference: rssReference, watched: rssWatched, afterAssets: rssAssets },
    };
  },
};

export default section;
