/**
 * quota: throughput under production conditions. The Gemini emulator (its own process) answers
 * generate calls after a model latency and enforces a per-model quota of 1,200 requests per minute
 * (20/s, refused beyond about a second's worth with Gemini's 429 RESOURCE_EXHAUSTED, QuotaFailure
 * and RetryInfo). In each scenario two tenants share that quota at the same time:
 *
 *   - tenant A submits a batch (BENCH_QUOTA_LINES lines, the openai SDK: upload with purpose
 *     "batch", batches.create, batches.retrieve with ?wait=30 until final);
 *   - tenant B sends BENCH_QUOTA_COMPLETIONS asynchronous chat completions (Prefer: respond-async,
 *     then GET /v1/jobs/{id}?wait=60 until final) at 4 per second from the moment A's batch is
 *     created, and measures each one from send to final status.
 *
 * Scenarios: latency fixed 2,000 ms or lognormal (median 2,000 ms, p99 10,000 ms) × 1 or 3
 * `ferry worker` processes (one `ferry api`) × quota mode "configured" (FERRY_GEMINI_RPM=1200) or
 * "learned" (FERRY_GEMINI_RPM=0: Ferry knows the limit only from the 429s). Each scenario is a
 * fresh stack (emulator, API, workers; fresh Redis prefix, deleted afterwards) with a hard timeout
 * of 4 × ideal + 60 s, after which it reports what it has.
 *
 * The ideal for N requests is what the quota allows: N / (RPM / 60) + the median latency. A and B
 * share one quota, so the time until both are done is compared with the ideal for A + B together.
 * The reference, per latency setting in the same run: a hand-written pool over the unmodified
 * @google/genai SDK against an emulator with the same settings, the same A + B requests with up to
 * 256 in flight, each 429 retried after its RetryInfo delay.
 *
 * Then a memory scenario: one worker with FERRY_GENERATE_CONCURRENCY=1000 (and no tenant cap,
 * FERRY_TENANT_MAX_RUNNING=0), emulator latency 5,000 ms and no quota (FERRY_GEMINI_RPM far above the load), 1,000 asynchronous
 * completions sent at once; the worker's peak RSS and the emulator's peak of calls in flight.
 *
 *   BENCH_QUOTA_LATENCY       fixed | lognormal | both (default both)
 *   BENCH_QUOTA_WORKERS       worker process counts, comma-separated (default 1,3)
 *   BENCH_QUOTA_MODES         configured,learned (default both)
 *   BENCH_QUOTA_LINES         tenant A's batch lines (default 2000)
 *   BENCH_QUOTA_COMPLETIONS   tenant B's completions (default 500)
 *   BENCH_QUOTA_CONDITIONS    how the quota behaves, comma-separated (default stated): stated (the 429 states
 *                             its limit), unstated (QuotaFailure without quotaValue), vertex (a bare 429, no
 *                             details), shared (another client spends 40% of the quota: ideal = the 60% left),
 *                             shared-unstated (both), moving (halved at 30 s, then 2,400 RPM from 60 s: ideal =
 *                             the integral); conditions other than stated run in the learned mode only
 *   BENCH_QUOTA_B             what tenant B sends: chat (async chat completions), responses (background
 *                             responses: POST /v1/responses with background:true, then GET
 *                             /v1/responses/{id}?wait=60 until final), or both, each a scenario (default chat)
 *   BENCH_QUOTA_REFERENCE     0 skips the @google/genai reference pool (default 1)
 *   BENCH_QUOTA_MEMORY        0 skips the memory scenario (default 1)
 *   BENCH_QUOTA_MEMORY_JOBS   completions of the memory scenario (default 1000)
 *   BENCH_RUNTIME             how Ferry's processes run (see bench/lib.ts)
 *
 * Everything else is Ferry's defaults; other FERRY_* variables set in the bench's environment reach
 * Ferry's processes as they are (e.g. FERRY_BATCH_CONCURRENCY=64 FERRY_TENANT_MAX_RUNNING=32).
 * Targets (PASS/MISS, never the exit code): ideal/actual ≥ 0.9 with ≤ 2% of upstream calls answered
 * 429 (configured), ≥ 0.8 with ≤ 10% (learned); no batch line lost and no completion failed; B's
 * p99 ≤ 2 × median latency + 1 s; every worker's peak RSS < 300 MB. Memory: 1,000 in flight at the
 * emulator, worker RSS < 300 MB.
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ApiError, GoogleGenAI } from '@google/genai';
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import {
  envInt,
  fmtMB,
  freePort,
  httpRequest,
  MB,
  now,
  prepareRuntime,
  round,
  runtimeKind,
  Scope,
  settle,
  sleep,
  spawnFerry,
  startStack,
  tempDir,
  verdict,
  waitFor,
  type Proc,
  type Runtime,
  type Section,
  type Stack,
} from './lib.js';

const MODEL = 'gemini-2.0-flash';
const RPM = 1200;
const PER_SECOND = RPM / 60;
/** Tenant B's steady rate of completions. */
const B_PER_SECOND = 4;
/** The reference pool's requests in flight. */
const REFERENCE_IN_FLIGHT = 256;
const RSS_LIMIT = 300 * MB;
const KEY_A = 'bench-key-a';
const KEY_B = 'bench-key-b';
const API_KEYS = `${KEY_A}:tenant-a,${KEY_B}:tenant-b`;
const FINAL_JOB = new Set(['succeeded', 'failed', 'cancelled']);
const FINAL_BATCH = new Set(['completed', 'failed', 'expired', 'cancelled']);

type LatencyKind = 'fixed' | 'lognormal';
type Mode = 'configured' | 'learned';

/** `p99Ms`: the model's own 99th percentile, the floor under any client's p99 (reported beside B's). */
const LATENCIES: Record<LatencyKind, { label: string; medianMs: number; p99Ms: number; env: Record<string, string> }> = {
  // Empty values clear anything the bench's own environment sets (the emulator treats empty as unset).
  fixed: {
    label: 'fixed 2,000 ms',
    medianMs: 2000,
    p99Ms: 2000,
    env: { FERRY_EMULATOR_LATENCY_MS: '2000', FERRY_EMULATOR_LATENCY_MEDIAN_MS: '', FERRY_EMULATOR_LATENCY_P99_MS: '' },
  },
  lognormal: {
    label: 'lognormal median 2,000 ms, p99 10,000 ms',
    medianMs: 2000,
    p99Ms: 10_000,
    env: { FERRY_EMULATOR_LATENCY_MS: '', FERRY_EMULATOR_LATENCY_MEDIAN_MS: '2000', FERRY_EMULATOR_LATENCY_P99_MS: '10000' },
  },
};

const MODE_ENV: Record<Mode, Record<string, string>> = {
  configured: { FERRY_GEMINI_RPM: String(RPM) },
  learned: { FERRY_GEMINI_RPM: '0' },
};

/** Seconds the quota needs for `n` requests, plus one median model latency. */
const idealSeconds = (n: number, medianMs: number) => n / PER_SECOND + medianMs / 1000;

type Condition = 'stated' | 'unstated' | 'vertex' | 'shared' | 'shared-unstated' | 'moving';

/** The moving quota: requests per second from each time on (seconds), as FERRY_EMULATOR_QUOTA_SCHEDULE sets it. */
const MOVING: Array<[number, number]> = [
  [0, PER_SECOND],
  [30, PER_SECOND / 2],
  [60, PER_SECOND * 2],
];

/** Seconds a moving quota needs for `n` requests: where the integral of its rate reaches n. */
function movingSeconds(n: number): number {
  let left = n;
  for (let i = 0; i < MOVING.length; i++) {
    const [from, rate] = MOVING[i];
    const span = i + 1 < MOVING.length ? MOVING[i + 1][0] - from : Infinity;
    if (left <= rate * span) return from + left / rate;
    left -= rate * span;
  }
  return Infinity;
}

const QUOTA_ENV_CLEAR = {
  FERRY_EMULATOR_QUOTA_STATES_LIMIT: '',
  FERRY_EMULATOR_QUOTA_DETAIL: '',
  FERRY_EMULATOR_QUOTA_SHARED_SHARE: '',
  FERRY_EMULATOR_QUOTA_SCHEDULE: '',
};
/**
 * Each condition's emulator settings (empty values clear the bench's own environment), its ideal,
 * and its targets in the learned mode: the share of the ideal and the most 429s.
 */
const CONDITIONS: Record<
  Condition,
  { env: Record<string, string>; ideal: (n: number, medianMs: number) => number; target: [number, number] }
> = {
  stated: { env: {}, ideal: idealSeconds, target: [0.9, 0.02] },
  unstated: { env: { FERRY_EMULATOR_QUOTA_STATES_LIMIT: '0' }, ideal: idealSeconds, target: [0.85, 0.05] },
  vertex: { env: { FERRY_EMULATOR_QUOTA_DETAIL: 'none' }, ideal: idealSeconds, target: [0.85, 0.05] },
  shared: {
    env: { FERRY_EMULATOR_QUOTA_SHARED_SHARE: '0.4' },
    ideal: (n, ms) => n / (PER_SECOND * 0.6) + ms / 1000,
    target: [0.85, 0.05],
  },
  'shared-unstated': {
    env: { FERRY_EMULATOR_QUOTA_SHARED_SHARE: '0.4', FERRY_EMULATOR_QUOTA_STATES_LIMIT: '0' },
    ideal: (n, ms) => n / (PER_SECOND * 0.6) + ms / 1000,
    target: [0.85, 0.05],
  },
  moving: {
    env: {
      FERRY_EMULATOR_QUOTA_SCHEDULE: MOVING.slice(1)
        .map(([at, rate]) => `${at * 1000}:${rate * 60}`)
        .join(','),
    },
    ideal: (n, ms) => movingSeconds(n) + ms / 1000,
    target: [0.8, 0.1],
  },
};
/** How soon after a moving quota's step the learned rate must be within RATE_FOUND_BAND of it. */
const RATE_FOUND_S = 10;
const RATE_FOUND_BAND = 0.25;

const sec = (ms: number | null) => (ms === null ? null : round(ms / 1000, 1));
const fmtS = (ms: number | null) => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(1)} s`);
const pct = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)}%`);

function percentile(sorted: number[], p: number): number | null {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null;
}

/** A comma-separated choice from the environment, every item checked. */
function envList<T extends string>(
  name: string,
  allowed: readonly T[],
  dflt: readonly T[],
  aliases: Record<string, readonly T[]> = {},
): T[] {
  const raw = process.env[name]?.trim();
  if (!raw) return [...dflt];
  const out: T[] = [];
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const items = aliases[item] ?? (allowed.includes(item as T) ? [item as T] : null);
    if (!items) throw new Error(`${name}: "${item}" is not one of ${[...allowed, ...Object.keys(aliases)].join(', ')}`);
    for (const i of items) if (!out.includes(i)) out.push(i);
  }
  return out;
}

function envWorkers(): number[] {
  const raw = process.env.BENCH_QUOTA_WORKERS?.trim();
  if (!raw) return [1, 3];
  return raw.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isSafeInteger(n) || n < 1 || n > 16) throw new Error(`BENCH_QUOTA_WORKERS: "${s}" is not a worker count (1 to 16)`);
    return n;
  });
}

const envFlag = (name: string) => !['0', 'false', 'no', 'off'].includes((process.env[name] ?? '').trim().toLowerCase());

// ---------------------------------------------------------------------------
// The emulator's counters

interface ModelStats {
  answered2xx: number;
  refusedForQuota: number;
  inFlight: number;
  peakInFlight: number;
}

async function modelStats(emulatorUrl: string): Promise<ModelStats> {
  const stats = (await httpRequest(`${emulatorUrl}/_emulator/stats`)).json<{ generateByModel?: Record<string, ModelStats> }>();
  const out: ModelStats = { answered2xx: 0, refusedForQuota: 0, inFlight: 0, peakInFlight: 0 };
  for (const [model, s] of Object.entries(stats.generateByModel ?? {})) {
    if (model.replace(/^models\//, '') !== MODEL) continue;
    out.answered2xx += s.answered2xx;
    out.refusedForQuota += s.refusedForQuota;
    out.inFlight += s.inFlight;
    out.peakInFlight = Math.max(out.peakInFlight, s.peakInFlight);
  }
  return out;
}

async function resetEmulator(emulatorUrl: string): Promise<void> {
  const answer = await httpRequest(`${emulatorUrl}/_emulator/reset`, { method: 'POST' });
  if (answer.status !== 200) throw new Error(`POST /_emulator/reset answered ${answer.status}: ${answer.text().slice(0, 200)}`);
}

const share429 = (s: ModelStats) => (s.answered2xx + s.refusedForQuota ? s.refusedForQuota / (s.answered2xx + s.refusedForQuota) : null);

/** The emulator alone, as startStack starts it, with the scenario's quota and latency. */
async function startEmulatorAlone(scope: Scope, runtime: Runtime, env: Record<string, string>): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const proc = spawnFerry(
    scope,
    'emulator',
    'emulator',
    {
      HOST: '127.0.0.1',
      FERRY_EMULATOR_PORT: String(port),
      FERRY_EMULATOR_PROCESSING_MS: '0',
      FERRY_LOG_LEVEL: 'warn',
      ...env,
    },
    { runtime },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor('the emulator', async () => (await httpRequest(`${url}/_emulator/stats`)).status === 200, {
    timeoutMs: 60_000,
    check: () => proc.assertAlive(),
  });
  return { url, proc };
}

// ---------------------------------------------------------------------------
// The reference: a plain pool over @google/genai

/** Milliseconds of the RetryInfo in a Gemini 429 (the ApiError's message is the JSON error body); null if none. */
function retryInfoMs(err: ApiError): number | null {
  try {
    const body = JSON.parse(err.message) as { error?: { details?: Array<Record<string, unknown>> } };
    const info = body.error?.details?.find((d) => typeof d['@type'] === 'string' && (d['@type'] as string).endsWith('RetryInfo'));
    const m = typeof info?.retryDelay === 'string' ? /^(\d+(?:\.\d+)?)s$/.exec(info.retryDelay) : null;
    return m ? Number(m[1]) * 1000 : null;
  } catch {
    return null;
  }
}

interface ReferenceResult {
  requests: number;
  ms: number | null;
  idealMs: number;
  ratio: number | null;
  succeeded: number;
  failed: number;
  unfinished: number;
  upstream: ModelStats;
  share429: number | null;
  retryInfoMissing: number;
  firstError: string | null;
}

async function runReference(emulatorUrl: string, n: number, medianMs: number, timeoutMs: number): Promise<ReferenceResult> {
  const ai = new GoogleGenAI({ apiKey: 'bench', httpOptions: { baseUrl: emulatorUrl } });
  const deadline = now() + timeoutMs;
  let next = 0;
  let succeeded = 0;
  let failed = 0;
  let retryInfoMissing = 0;
  let firstError: string | null = null;
  const t0 = now();
  await Promise.all(
    Array.from({ length: Math.min(REFERENCE_IN_FLIGHT, n) }, async () => {
      while (next < n && now() < deadline) {
        const i = next++;
        for (;;) {
          try {
            await ai.models.generateContent({ model: MODEL, contents: `question ${i}` });
            succeeded++;
            break;
          } catch (err) {
            if (err instanceof ApiError && err.status === 429) {
              let wait = retryInfoMs(err);
              if (wait === null) {
                retryInfoMissing++;
                wait = 1000;
              }
              if (now() + wait > deadline) break;
              await sleep(wait);
              continue;
            }
            failed++;
            firstError ??= (err as Error)?.message ?? String(err);
            break;
          }
        }
      }
    }),
  );
  const done = succeeded + failed === n;
  const ms = done ? now() - t0 : null;
  const idealMs = idealSeconds(n, medianMs) * 1000;
  const upstream = await modelStats(emulatorUrl);
  return {
    requests: n,
    ms,
    idealMs,
    ratio: ms === null ? null : idealMs / ms,
    succeeded,
    failed,
    unfinished: n - succeeded - failed,
    upstream,
    share429: share429(upstream),
    retryInfoMissing,
    firstError,
  };
}

// ---------------------------------------------------------------------------
// Tenant B: asynchronous completions at a steady rate, each timed to its final status

type JobOutcome = {
  outcome: 'succeeded' | 'failed' | 'cancelled' | 'refused' | 'unfinished';
  /** From send to final status (unfinished: to the timeout, a lower bound). */
  ms: number;
  endAt: number;
  /** False for a completion the timeout came before it was sent. */
  sent?: boolean;
  detail?: string;
};

/** When waiting stops; moved earlier when a process dies. */
type Deadline = { at: number };

/** What tenant B sends: asynchronous chat completions, or background responses. */
type BKind = 'chat' | 'responses';

/** How B's request of each kind is sent and polled: the path, the body, and which statuses are final. */
const B_KINDS: Record<BKind, { post: string; poll: string; body: (content: string) => unknown; accepted: number; final: Set<string> }> = {
  chat: {
    post: '/v1/chat/completions',
    poll: '/v1/jobs',
    body: (content) => ({ model: MODEL, messages: [{ role: 'user', content }] }),
    accepted: 202,
    final: FINAL_JOB,
  },
  responses: {
    post: '/v1/responses',
    poll: '/v1/responses',
    body: (content) => ({ model: MODEL, input: content, background: true }),
    accepted: 200,
    final: new Set(['completed', 'incomplete', 'failed', 'cancelled']),
  },
};

/** B's outcome for a final status of either kind. */
const outcomeOf = (status: string): JobOutcome['outcome'] =>
  status === 'completed' || status === 'incomplete' ? 'succeeded' : (status as JobOutcome['outcome']);

/** One async request: POST (202 + job, or the queued response), then long-polls until final or `deadline`. */
async function asyncCompletion(
  apiUrl: string,
  key: string,
  agent: http.Agent,
  content: string,
  deadline: Deadline,
  kind: BKind = 'chat',
): Promise<JobOutcome> {
  const how = B_KINDS[kind];
  const auth = { authorization: `Bearer ${key}` };
  const s = now();
  const end = (outcome: JobOutcome['outcome'], detail?: string): JobOutcome => {
    const t = now();
    return { outcome, ms: t - s, endAt: t, detail };
  };
  let id: string;
  try {
    const answer = await httpRequest(`${apiUrl}${how.post}`, {
      method: 'POST',
      agent,
      headers: { ...auth, 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify(how.body(content)),
    });
    if (answer.status !== how.accepted) return end('refused', `POST answered ${answer.status}: ${answer.text().slice(0, 200)}`);
    const job = answer.json<{ id: string; status: string }>();
    if (how.final.has(job.status)) return end(outcomeOf(job.status));
    id = job.id;
  } catch (err) {
    // No answer at all (connection reset): the request may not have been taken; not retried.
    return end('refused', `POST failed: ${(err as Error).message}`);
  }
  return pollUntilFinal(`${apiUrl}${how.poll}/${id}`, auth, agent, how.final, deadline, end);
}

async function pollUntilFinal(
  url: string,
  auth: Record<string, string>,
  agent: http.Agent,
  final: Set<string>,
  deadline: Deadline,
  end: (outcome: JobOutcome['outcome'], detail?: string) => JobOutcome,
): Promise<JobOutcome> {
  let lastProblem: string | undefined;
  for (;;) {
    const left = deadline.at - now();
    if (left <= 0) return end('unfinished', lastProblem);
    try {
      const wait = Math.max(1, Math.min(60, Math.floor(left / 1000)));
      const answer = await httpRequest(`${url}?wait=${wait}`, { agent, headers: auth });
      if (answer.status === 200) {
        const job = answer.json<{ status: string; error?: unknown }>();
        if (!final.has(job.status)) continue;
        const outcome = outcomeOf(job.status);
        return end(outcome, outcome === 'succeeded' ? undefined : JSON.stringify(job.error ?? null).slice(0, 200));
      }
      lastProblem = `GET ${url} answered ${answer.status}`;
    } catch (err) {
      lastProblem = `GET ${url} failed: ${(err as Error).message}`;
    }
    await sleep(500);
  }
}

/** `n` completions, one every 1/`perSecond` s from now; answers when all ended (or `deadline` passed). */
async function steadyCompletions(
  apiUrl: string,
  key: string,
  agent: http.Agent,
  n: number,
  perSecond: number,
  deadline: Deadline,
  kind: BKind = 'chat',
): Promise<JobOutcome[]> {
  const start = now();
  const running: Promise<JobOutcome>[] = [];
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / perSecond;
    if (due > deadline.at) break;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    running.push(asyncCompletion(apiUrl, key, agent, `tenant b question ${i}`, deadline, kind));
  }
  const outcomes = await Promise.all(running);
  // Not sent before the deadline: never started, reported as unfinished.
  for (let i = outcomes.length; i < n; i++)
    outcomes.push({ outcome: 'unfinished', ms: 0, endAt: deadline.at, sent: false, detail: 'not sent before the timeout' });
  return outcomes;
}

// ---------------------------------------------------------------------------
// One scenario

interface ScenarioConfig {
  latency: LatencyKind;
  workers: number;
  mode: Mode;
  /** What tenant B sends (chat when absent). */
  b?: BKind;
  /** How the quota behaves (stated when absent). */
  condition?: Condition;
}

/** A scenario's name: latency/workers/mode, and what B sends when it is not chat. */
const scenarioName = (cfg: ScenarioConfig) =>
  `${cfg.latency}/${cfg.workers}w/${cfg.mode}${cfg.condition && cfg.condition !== 'stated' ? `/${cfg.condition}` : ''}${cfg.b && cfg.b !== 'chat' ? `/${cfg.b}` : ''}`;

interface ScenarioResult {
  name: string;
  latency: LatencyKind;
  workers: number;
  mode: Mode;
  timed_out: boolean;
  timeout_s: number;
  ideal_s: { batch: number; completions: number; overall: number };
  batch: {
    id: string | null;
    status: string | null;
    end_s: number | null;
    ratio: number | null;
    request_counts: { total: number; completed: number; failed: number } | null;
    /** in_progress_at − created_at of the batch object (whole seconds): validation and expansion. */
    validation_s: number | null;
  };
  all_done_s: number | null;
  ratio: number | null;
  completions: {
    sent: number;
    succeeded: number;
    not_succeeded: number;
    by_outcome: Record<string, number>;
    p50_s: number | null;
    p99_s: number | null;
    max_s: number | null;
    lower_bound: boolean;
    last_end_s: number | null;
    first_problem: string | null;
  };
  upstream: ModelStats & { share_429: number | null };
  lines: {
    lost: number;
    failed: number;
    in_error_file: number;
    missing: number;
    duplicated: number;
    unknown: number;
    exactly_once: boolean | null;
    /** error.code of the error file's lines, counted. */
    error_codes: Record<string, number>;
  };
  peak_rss_mb: { workers: Array<number | null>; api: number | null; emulator: number | null };
  /** A moving quota: after each step, the seconds until the learned rate was within RATE_FOUND_BAND of it. */
  rate_found: Array<{ step_s: number; rate: number; after_s: number | null }> | null;
  targets: Record<string, boolean | null>;
}

/** A scenario's name, its ideal times and its timeout, from its configuration and its workload. */
function planScenario(cfg: ScenarioConfig, lines: number, completions: number) {
  const medianMs = LATENCIES[cfg.latency].medianMs;
  const ideal = {
    batch: CONDITIONS[cfg.condition ?? 'stated'].ideal(lines, medianMs),
    completions: CONDITIONS[cfg.condition ?? 'stated'].ideal(completions, medianMs),
    overall: CONDITIONS[cfg.condition ?? 'stated'].ideal(lines + completions, medianMs),
  };
  return {
    cfg,
    name: scenarioName(cfg),
    lines,
    completions,
    medianMs,
    ideal,
    timeoutMs: (4 * ideal.overall + 60) * 1000,
  };
}

type ScenarioPlan = ReturnType<typeof planScenario>;

/** The scenario's stack, with tenant A's batch input uploaded and the emulator's counters reset. */
async function startScenario(scope: Scope, log: (l?: string) => void, runtime: Runtime, cfg: ScenarioConfig, input: Buffer) {
  const stack: Stack = await startStack(scope, {
    runtime,
    workers: cfg.workers,
    emulatorEnv: {
      FERRY_EMULATOR_RPM: String(RPM),
      FERRY_EMULATOR_TPM: '',
      ...LATENCIES[cfg.latency].env,
      ...QUOTA_ENV_CLEAR,
      ...CONDITIONS[cfg.condition ?? 'stated'].env,
    },
    env: { FERRY_API_KEYS: API_KEYS, ...MODE_ENV[cfg.mode] },
  });
  const agent = new http.Agent({ keepAlive: true });
  scope.defer('close http agent', () => agent.destroy());
  log(
    `  pids: emulator ${stack.emulator.pid}, api ${stack.api.pid}, workers ${stack.workers.map((w) => w.pid).join(' ')}; redis prefix ${stack.prefix}`,
  );

  const clientA = new OpenAI({ apiKey: KEY_A, baseURL: `${stack.apiUrl}/v1`, maxRetries: 2, timeout: 600_000 });
  const file = await clientA.files.create({ file: await toFile(input, 'quota-bench.jsonl'), purpose: 'batch' });
  await settle(stack.procs, { timeoutMs: 20_000 });
  await resetEmulator(stack.emulatorUrl);
  return { stack, agent, clientA, inputFileId: file.id };
}

type ScenarioStack = Awaited<ReturnType<typeof startScenario>>;

/**
 * Tenant A's batch and tenant B's completions at the same time, until both are final or the
 * timeout; then the emulator's counters and the peak RSS, read before anything stops.
 */
async function runTenants(log: (l?: string) => void, { stack, agent, clientA, inputFileId }: ScenarioStack, plan: ScenarioPlan) {
  const t0 = now();
  const deadline: Deadline = { at: t0 + plan.timeoutMs };
  const created = await clientA.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' });
  const bRun = steadyCompletions(stack.apiUrl, KEY_B, agent, plan.completions, B_PER_SECOND, deadline, plan.cfg.b);
  const follower = plan.cfg.condition === 'moving' ? followRate(stack) : null;
  const a = await waitForBatch(log, stack, clientA, created, deadline);
  const bOutcomes = await bRun;
  const rateFound = follower ? rateFoundAfterSteps(await follower.stop(), await quotaStartMs(stack.emulatorUrl)) : null;
  const upstream = await modelStats(stack.emulatorUrl).catch(() => ({
    answered2xx: 0,
    refusedForQuota: 0,
    inFlight: 0,
    peakInFlight: 0,
  }));
  // Peak RSS before anything stops (VmHWM is read from the live process).
  const rss = {
    workers: stack.workers.map((w) => w.peakRss()),
    api: stack.api.peakRss(),
    emulator: stack.emulator.peakRss(),
  };
  return { t0, created, ...a, bOutcomes, upstream, rss, rateFound };
}

interface RateSample {
  at: number;
  rate: number;
}

/** Samples the learned rate (the workers' shared estimate in Redis) twice a second until stopped. */
function followRate(stack: Stack): { stop: () => Promise<RateSample[]> } {
  const samples: RateSample[] = [];
  let key: string | undefined;
  const sample = async () => {
    key ??= (await stack.redis.keys(`${stack.prefix}:quota:*:${MODEL}`))[0];
    const rate = key ? Number(await stack.redis.hget(key, 'rate')) : NaN;
    // Wall-clock time: the emulator's schedule is in epoch milliseconds.
    if (Number.isFinite(rate) && rate > 0) samples.push({ at: Date.now(), rate });
  };
  const timer = setInterval(() => void sample().catch(() => {}), 500);
  return {
    stop: async () => {
      clearInterval(timer);
      return samples;
    },
  };
}

/** When the emulator's quota schedule started (its clock for the steps). */
async function quotaStartMs(emulatorUrl: string): Promise<number> {
  const stats = (await httpRequest(`${emulatorUrl}/_emulator/stats`)).json<{ quota?: { startEpochMs?: number } }>();
  return stats.quota?.startEpochMs ?? NaN;
}

/**
 * For each step of the moving quota, the seconds until the learned rate first came within
 * RATE_FOUND_BAND of the step's rate (null: not before the next step, or the end).
 */
function rateFoundAfterSteps(samples: RateSample[], startMs: number) {
  return MOVING.slice(1).map(([atS, rate], i) => {
    const from = startMs + atS * 1000;
    const until = i + 2 < MOVING.length ? startMs + MOVING[i + 2][0] * 1000 : Infinity;
    const hit = samples.find((x) => x.at >= from && x.at < until && Math.abs(x.rate - rate) <= rate * RATE_FOUND_BAND);
    return { step_s: atS, rate, after_s: hit ? round((hit.at - from) / 1000, 1) : null };
  });
}

type TenantsRun = Awaited<ReturnType<typeof runTenants>>;

/** Long-polls A's batch until it is final or `deadline` passes; a process that died ends B's wait too. */
async function waitForBatch(log: (l?: string) => void, stack: Stack, clientA: OpenAI, created: Batch, deadline: Deadline) {
  const alive = () => stack.procs.forEach((p) => p.assertAlive());
  let batch = created;
  let batchEndAt: number | null = null;
  let batchProblem: string | null = null;
  while (!FINAL_BATCH.has(batch.status)) {
    const left = deadline.at - now();
    if (left <= 0) break;
    try {
      alive();
      batch = await clientA.batches.retrieve(created.id, { query: { wait: Math.max(1, Math.min(30, Math.floor(left / 1000))) } });
    } catch (err) {
      batchProblem = (err as Error).message;
      log(`  batch poll failed: ${batchProblem.split('\n')[0]}`);
      if (stack.procs.some((p) => !p.alive())) {
        deadline.at = now(); // tenant B stops waiting too
        break;
      }
      await sleep(1000);
      continue;
    }
    if (FINAL_BATCH.has(batch.status)) batchEndAt = now();
  }
  return { batch, batchEndAt, batchProblem };
}

/**
 * A's lines: every custom_id exactly once across the output and error files; from the batch's
 * request_counts when it did not end by the timeout.
 */
async function checkLines(clientA: OpenAI, { batch, batchEndAt }: TenantsRun, lines: number) {
  const counts = batch.request_counts ?? null;
  const seen = new Map<string, number>();
  let inErrorFile = 0;
  const errorCodes: Record<string, number> = {};
  /** Distinct expected custom_ids answered in the output file (a duplicate is not two answers). */
  const answeredIds = new Set<string>();
  let unknown = 0;
  const expected = new Set(Array.from({ length: lines }, (_, i) => `line-${i}`));
  const read = async (id: string | null | undefined, isError: boolean) => {
    if (!id) return;
    const text = await (await clientA.files.content(id)).text();
    for (const l of text.split('\n')) {
      if (!l.trim()) continue;
      const r = JSON.parse(l) as { custom_id: string; response?: { status_code?: number } | null; error?: { code?: string } | null };
      if (!expected.has(r.custom_id)) unknown++;
      seen.set(r.custom_id, (seen.get(r.custom_id) ?? 0) + 1);
      const answered = !isError && r.response?.status_code === 200 && !r.error;
      if (answered) {
        if (expected.has(r.custom_id)) answeredIds.add(r.custom_id);
      } else {
        inErrorFile++;
        const code = r.error?.code ?? (r.response ? `status_${r.response.status_code}` : 'unknown');
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
      }
    }
  };
  let exactlyOnce: boolean | null = null;
  let missing = lines;
  let duplicated = 0;
  let filesRead = false;
  let readProblem: string | null = null;
  if (batchEndAt !== null) {
    try {
      await read(batch.output_file_id, false);
      await read(batch.error_file_id, true);
      missing = [...expected].filter((id) => !seen.has(id)).length;
      duplicated = [...seen.values()].filter((c) => c > 1).length;
      exactlyOnce = missing === 0 && duplicated === 0 && unknown === 0;
      filesRead = true;
    } catch (err) {
      readProblem = `reading the batch files: ${(err as Error).message}`;
    }
  } else {
    missing = lines - (counts?.completed ?? 0) - (counts?.failed ?? 0);
    inErrorFile = counts?.failed ?? 0;
  }
  // Lost: every line without an answer in the output file (failed, errored, or missing).
  // Without the files (timed out, or they could not be read), from the batch's request_counts.
  const lost = lines - (filesRead ? answeredIds.size : Math.min(lines, counts?.completed ?? 0));
  return { counts, inErrorFile, errorCodes, unknown, exactlyOnce, missing, duplicated, lost, readProblem };
}

/** Tenant B's outcomes counted, and the latencies of the jobs the API took. */
function summarizeTenantB(bOutcomes: JobOutcome[], t0: number) {
  const byOutcome: Record<string, number> = {};
  for (const o of bOutcomes) byOutcome[o.outcome] = (byOutcome[o.outcome] ?? 0) + 1;
  const finished = bOutcomes.filter((o) => o.outcome !== 'unfinished');
  // Latency of every job the API took; unfinished ones count with the time they had so far (a
  // lower bound). Refused POSTs and jobs never sent have none (they count as not succeeded).
  const latencies = bOutcomes
    .filter((o) => o.outcome !== 'refused' && o.sent !== false)
    .map((o) => o.ms)
    .sort((a, b) => a - b);
  return {
    byOutcome,
    succeeded: byOutcome.succeeded ?? 0,
    lastEnd: finished.length ? Math.max(...finished.map((o) => o.endAt)) - t0 : null,
    firstProblem: bOutcomes.find((o) => o.outcome !== 'succeeded')?.detail ?? null,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.length ? latencies[latencies.length - 1] : null,
  };
}

/** Everything one scenario found, unrounded: what its result and its report are made from. */
interface Findings {
  plan: ScenarioPlan;
  run: TenantsRun;
  lineCheck: Awaited<ReturnType<typeof checkLines>>;
  tenantB: ReturnType<typeof summarizeTenantB>;
}

/** The times against the ideal, and the targets met; the mode decides how close to the ideal is enough. */
function judgeScenario({ plan, run, lineCheck, tenantB }: Findings) {
  const timedOut = run.batchEndAt === null || run.bOutcomes.some((o) => o.outcome === 'unfinished');
  const batchEndMs = run.batchEndAt === null ? null : run.batchEndAt - run.t0;
  const allDoneMs = timedOut || batchEndMs === null || tenantB.lastEnd === null ? null : Math.max(batchEndMs, tenantB.lastEnd);
  const ratio = allDoneMs === null ? null : (plan.ideal.overall * 1000) / allDoneMs;
  const share = share429(run.upstream);
  const [minRatio, max429] = plan.cfg.mode === 'configured' ? [0.9, 0.02] : CONDITIONS[plan.cfg.condition ?? 'stated'].target;
  const found = run.rateFound;
  const targets = {
    time: ratio === null ? false : ratio >= minRatio,
    share_429: share === null ? null : share <= max429,
    nothing_lost: lineCheck.lost === 0 && tenantB.succeeded === plan.completions && lineCheck.exactlyOnce !== false,
    completions_p99: tenantB.p99 === null ? null : tenantB.p99 <= 2 * plan.medianMs + 1000,
    worker_rss: run.rss.workers.every((r) => r !== null) ? run.rss.workers.every((r) => r! < RSS_LIMIT) : null,
    rate_found: found === null ? null : found.every((f) => f.after_s !== null && f.after_s <= RATE_FOUND_S),
  };
  return { timedOut, batchEndMs, allDoneMs, ratio, share, minRatio, max429, targets };
}

type Judgement = ReturnType<typeof judgeScenario>;

function scenarioResult({ plan, run, lineCheck, tenantB }: Findings, judged: Judgement): ScenarioResult {
  const { cfg, ideal, completions } = plan;
  const { batch, rss } = run;
  const { counts } = lineCheck;
  const { batchEndMs, ratio, share } = judged;
  const { p50, p99, max } = tenantB;
  return {
    name: plan.name,
    latency: cfg.latency,
    workers: cfg.workers,
    mode: cfg.mode,
    timed_out: judged.timedOut,
    timeout_s: round(plan.timeoutMs / 1000, 0),
    ideal_s: { batch: round(ideal.batch), completions: round(ideal.completions), overall: round(ideal.overall) },
    batch: {
      id: run.created.id,
      status: batch.status,
      end_s: sec(batchEndMs),
      ratio: batchEndMs === null ? null : round((ideal.overall * 1000) / batchEndMs, 3),
      request_counts: counts ? { total: counts.total, completed: counts.completed, failed: counts.failed } : null,
      validation_s: batch.in_progress_at ? batch.in_progress_at - batch.created_at : null,
    },
    all_done_s: sec(judged.allDoneMs),
    ratio: ratio === null ? null : round(ratio, 3),
    completions: {
      sent: completions,
      succeeded: tenantB.succeeded,
      not_succeeded: completions - tenantB.succeeded,
      by_outcome: tenantB.byOutcome,
      p50_s: p50 === null ? null : round(p50 / 1000, 2),
      p99_s: p99 === null ? null : round(p99 / 1000, 2),
      max_s: max === null ? null : round(max / 1000, 2),
      lower_bound: run.bOutcomes.some((o) => o.outcome === 'unfinished'),
      last_end_s: sec(tenantB.lastEnd),
      first_problem: tenantB.firstProblem,
    },
    upstream: { ...run.upstream, share_429: share === null ? null : round(share, 4) },
    lines: {
      lost: lineCheck.lost,
      failed: counts?.failed ?? 0,
      in_error_file: lineCheck.inErrorFile,
      missing: lineCheck.missing,
      duplicated: lineCheck.duplicated,
      unknown: lineCheck.unknown,
      exactly_once: lineCheck.exactlyOnce,
      error_codes: lineCheck.errorCodes,
    },
    peak_rss_mb: {
      workers: rss.workers.map((r) => (r === null ? null : round(r / MB))),
      api: rss.api === null ? null : round(rss.api / MB),
      emulator: rss.emulator === null ? null : round(rss.emulator / MB),
    },
    rate_found: run.rateFound,
    targets: judged.targets,
  };
}

function logScenario(log: (l?: string) => void, { plan, run, lineCheck, tenantB }: Findings, judged: Judgement, result: ScenarioResult) {
  const { cfg, lines, completions, medianMs, ideal } = plan;
  const { batch, batchEndAt, upstream, rss } = run;
  const { lost, inErrorFile, missing, duplicated, unknown, errorCodes, exactlyOnce } = lineCheck;
  const { succeeded, byOutcome, p50, p99, max, lastEnd, firstProblem } = tenantB;
  const { batchEndMs, allDoneMs, share, minRatio, max429, targets } = judged;
  const lb = result.completions.lower_bound ? '≥ ' : '';
  log(
    `  ideal: batch alone (${lines}) ${ideal.batch.toFixed(1)} s, B alone (${completions}) ${ideal.completions.toFixed(1)} s, both (${lines + completions}) ${ideal.overall.toFixed(1)} s; timeout ${result.timeout_s} s`,
  );
  log(
    `  A's batch: ${batchEndMs === null ? `still ${batch.status} at the timeout` : `${batch.status} at ${fmtS(batchEndMs)}`} (in progress ${result.batch.validation_s ?? 'n/a'} s after creation), ideal(${lines + completions})/batch end ${result.batch.ratio ?? 'n/a'}; request_counts ${JSON.stringify(result.batch.request_counts)}`,
  );
  log(
    `  both done at ${allDoneMs === null ? `n/a (timed out after ${result.timeout_s} s)` : fmtS(allDoneMs)}: ideal/actual ${result.ratio ?? 'n/a'} (target ≥ ${minRatio}: ${verdict(targets.time)})`,
  );
  log(
    `  B: ${succeeded}/${completions} succeeded ${JSON.stringify(byOutcome)}; latency p50 ${lb}${fmtS(p50)}, p99 ${lb}${fmtS(p99)}, max ${lb}${fmtS(max)} (target p99 ≤ ${((2 * medianMs + 1000) / 1000).toFixed(0)} s: ${verdict(targets.completions_p99)}${LATENCIES[cfg.latency].p99Ms > 2 * medianMs + 1000 ? `; the model's own p99 is ${LATENCIES[cfg.latency].p99Ms / 1000} s, above the target` : ''}); last ended at ${fmtS(lastEnd)}${firstProblem ? `; first problem: ${firstProblem}` : ''}`,
  );
  log(
    `  upstream: ${upstream.answered2xx} answered, ${upstream.refusedForQuota} refused for quota = ${pct(share)} 429s (target ≤ ${max429 * 100}%: ${verdict(targets.share_429)}); peak in flight ${upstream.peakInFlight}`,
  );
  log(
    `  lines: lost ${lost} (failed ${result.lines.failed}, in error file ${inErrorFile}, missing ${missing}, duplicated ${duplicated}, unknown ${unknown}${inErrorFile ? `; error codes ${JSON.stringify(errorCodes)}` : ''}); every custom_id exactly once: ${exactlyOnce ?? 'n/a'}${batchEndAt === null ? '; the batch did not end: lines not done by the timeout count as lost' : ''} (target nothing lost or failed: ${verdict(targets.nothing_lost)})`,
  );
  log(
    `  peak RSS: workers ${rss.workers.map(fmtMB).join(', ')} (target < 300 MB: ${verdict(targets.worker_rss)}), api ${fmtMB(rss.api)}, emulator ${fmtMB(rss.emulator)}`,
  );
  if (run.rateFound)
    log(
      `  the learned rate found each step of the quota: ${run.rateFound.map((f) => `${f.rate}/s at ${f.step_s} s ${f.after_s === null ? 'not found' : `after ${f.after_s} s`}`).join(', ')} (target ≤ ${RATE_FOUND_S} s: ${verdict(targets.rate_found)})`,
    );
  // The first problem met: polling the batch comes before reading its files.
  const problem = run.batchProblem ?? lineCheck.readProblem;
  if (problem) log(`  problem: ${problem.split('\n')[0]}`);
}

async function runScenario(
  log: (l?: string) => void,
  runtime: Runtime,
  cfg: ScenarioConfig,
  lines: number,
  completions: number,
  input: Buffer,
): Promise<ScenarioResult> {
  const plan = planScenario(cfg, lines, completions);
  const scope = new Scope();
  try {
    const scenarioStack = await startScenario(scope, log, runtime, cfg, input);
    const run = await runTenants(log, scenarioStack, plan);
    const findings: Findings = {
      plan,
      run,
      lineCheck: await checkLines(scenarioStack.clientA, run, lines),
      tenantB: summarizeTenantB(run.bOutcomes, run.t0),
    };
    const judged = judgeScenario(findings);
    const result = scenarioResult(findings, judged);
    logScenario(log, findings, judged, result);
    return result;
  } finally {
    const errors = await scope.close();
    for (const e of errors) log(`  cleanup problem: ${e}`);
  }
}

// ---------------------------------------------------------------------------
// Memory: many completions in flight in one worker

interface MemoryResult {
  jobs: number;
  all_done_s: number | null;
  succeeded: number;
  not_succeeded: number;
  by_outcome: Record<string, number>;
  peak_in_flight: number;
  worker_peak_rss_mb: number | null;
  api_peak_rss_mb: number | null;
  targets: Record<string, boolean | null>;
}

async function runMemory(log: (l?: string) => void, runtime: Runtime, jobs: number): Promise<MemoryResult> {
  const scope = new Scope();
  try {
    const latencyMs = 5000;
    const stack = await startStack(scope, {
      runtime,
      workers: 1,
      emulatorEnv: {
        FERRY_EMULATOR_RPM: '0',
        FERRY_EMULATOR_TPM: '',
        FERRY_EMULATOR_LATENCY_MS: String(latencyMs),
        FERRY_EMULATOR_LATENCY_MEDIAN_MS: '',
        FERRY_EMULATOR_LATENCY_P99_MS: '',
      },
      // A configured rate far above the load: what is measured is memory with 1,000 calls in
      // flight, not how fast a learned slow start opens to them.
      env: { FERRY_API_KEYS: API_KEYS, FERRY_GENERATE_CONCURRENCY: '1000', FERRY_TENANT_MAX_RUNNING: '0', FERRY_GEMINI_RPM: '600000' },
    });
    log(`  pids: emulator ${stack.emulator.pid}, api ${stack.api.pid}, worker ${stack.worker.pid}`);
    const agent = new http.Agent({ keepAlive: true });
    scope.defer('close http agent', () => agent.destroy());
    await settle(stack.procs, { timeoutMs: 20_000 });
    await resetEmulator(stack.emulatorUrl);
    const t0 = now();
    const deadline: Deadline = { at: t0 + latencyMs + 120_000 };
    const outcomes = await Promise.all(
      Array.from({ length: jobs }, (_, i) => asyncCompletion(stack.apiUrl, KEY_A, agent, `memory question ${i}`, deadline)),
    );
    const byOutcome: Record<string, number> = {};
    for (const o of outcomes) byOutcome[o.outcome] = (byOutcome[o.outcome] ?? 0) + 1;
    const succeeded = byOutcome.succeeded ?? 0;
    const allDone = outcomes.every((o) => o.outcome !== 'unfinished') ? Math.max(...outcomes.map((o) => o.endAt)) - t0 : null;
    const upstream = await modelStats(stack.emulatorUrl);
    const workerRss = stack.worker.peakRss();
    const apiRss = stack.api.peakRss();
    const targets = {
      in_flight: upstream.peakInFlight >= jobs,
      worker_rss: workerRss === null ? null : workerRss < RSS_LIMIT,
      all_succeeded: succeeded === jobs,
    };
    log(
      `  ${jobs} completions sent at once: ${succeeded} succeeded ${JSON.stringify(byOutcome)}, all done at ${fmtS(allDone)} (latency ${latencyMs} ms)`,
    );
    log(`  emulator peak in flight ${upstream.peakInFlight} (target ${jobs}: ${verdict(targets.in_flight)})`);
    log(`  peak RSS: worker ${fmtMB(workerRss)} (target < 300 MB: ${verdict(targets.worker_rss)}), api ${fmtMB(apiRss)}`);
    const problem = outcomes.find((o) => o.outcome !== 'succeeded')?.detail;
    if (problem) log(`  first problem: ${problem}`);
    return {
      jobs,
      all_done_s: sec(allDone),
      succeeded,
      not_succeeded: jobs - succeeded,
      by_outcome: byOutcome,
      peak_in_flight: upstream.peakInFlight,
      worker_peak_rss_mb: workerRss === null ? null : round(workerRss / MB),
      api_peak_rss_mb: apiRss === null ? null : round(apiRss / MB),
      targets,
    };
  } finally {
    const errors = await scope.close();
    for (const e of errors) log(`  cleanup problem: ${e}`);
  }
}

// ---------------------------------------------------------------------------

/** The section's settings, from the environment (see the top of this file). */
function readSettings() {
  const latencyKinds = envList<LatencyKind>('BENCH_QUOTA_LATENCY', ['fixed', 'lognormal'], ['fixed', 'lognormal'], {
    both: ['fixed', 'lognormal'],
  });
  const workerCounts = envWorkers();
  const modes = envList<Mode>('BENCH_QUOTA_MODES', ['configured', 'learned'], ['configured', 'learned'], {
    both: ['configured', 'learned'],
  });
  const lines = envInt('BENCH_QUOTA_LINES', 2000);
  const completions = envInt('BENCH_QUOTA_COMPLETIONS', 500);
  const withReference = envFlag('BENCH_QUOTA_REFERENCE');
  const withMemory = envFlag('BENCH_QUOTA_MEMORY');
  const memoryJobs = envInt('BENCH_QUOTA_MEMORY_JOBS', 1000);
  const bKinds = envList<BKind>('BENCH_QUOTA_B', ['chat', 'responses'], ['chat'], { both: ['chat', 'responses'] });
  const conditions = envList<Condition>('BENCH_QUOTA_CONDITIONS', Object.keys(CONDITIONS) as Condition[], ['stated'], {
    all: Object.keys(CONDITIONS) as Condition[],
  });
  return { latencyKinds, workerCounts, modes, bKinds, conditions, lines, completions, withReference, withMemory, memoryJobs };
}

type Settings = ReturnType<typeof readSettings>;

type ReferenceOrError = ReferenceResult | { error: string };
type ScenarioOrError = ScenarioResult | { name: string; error: string };

/** The machine, the workload and Ferry's settings; answers when the section started. */
function logPreamble(log: (l?: string) => void, { lines, completions }: Settings): string {
  const startedAt = new Date().toISOString();
  const passed = Object.keys(process.env)
    .filter((k) => k.startsWith('FERRY_') && !k.startsWith('FERRY_EMULATOR_'))
    .sort();
  log(
    `started ${startedAt}; machine: ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  log(
    `quota ${RPM} RPM per model (${PER_SECOND}/s), model ${MODEL}; tenant A: ${lines}-line batch; tenant B: ${completions} async completions at ${B_PER_SECOND}/s`,
  );
  log(
    `Ferry settings: defaults${passed.length ? `, with ${passed.map((k) => `${k}=${process.env[k]}`).join(' ')} from the environment` : ''} (each scenario sets FERRY_API_KEYS and FERRY_GEMINI_RPM)`,
  );
  return startedAt;
}

/** Tenant A's batch input: one chat completion per line. */
function batchInput(lines: number): Buffer {
  return Buffer.from(
    Array.from({ length: lines }, (_, i) =>
      JSON.stringify({
        custom_id: `line-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: MODEL, messages: [{ role: 'user', content: `question ${i}` }] },
      }),
    ).join('\n'),
  );
}

/** Per latency setting: the reference pool, then a scenario for every worker count and quota mode. */
async function runReferencesAndScenarios(log: (l?: string) => void, runtime: Runtime, settings: Settings, input: Buffer) {
  const references: Record<string, ReferenceOrError> = {};
  const scenarios: ScenarioOrError[] = [];
  for (const latency of settings.latencyKinds) {
    log('');
    log(`--- latency ${LATENCIES[latency].label} ---`);
    if (settings.withReference) references[latency] = await measureReference(log, runtime, latency, settings.lines + settings.completions);
    for (const workers of settings.workerCounts) {
      for (const mode of settings.modes) {
        for (const condition of settings.conditions) {
          // A configured rate says nothing of a quota that hides, shrinks or moves: those are the learner's.
          if (condition !== 'stated' && mode === 'configured') continue;
          for (const b of settings.bKinds) {
            scenarios.push(await runScenarioReported(log, runtime, { latency, workers, mode, b, condition }, settings, input));
          }
        }
      }
    }
  }
  return { references, scenarios };
}

/** The reference pool's `n` requests against an emulator of its own; a failure is reported, not thrown. */
async function measureReference(log: (l?: string) => void, runtime: Runtime, latency: LatencyKind, n: number): Promise<ReferenceOrError> {
  const { medianMs } = LATENCIES[latency];
  log(`reference: @google/genai pool, ${n} requests, up to ${REFERENCE_IN_FLIGHT} in flight, 429s retried after RetryInfo …`);
  const refScope = new Scope();
  try {
    const emulator = await startEmulatorAlone(refScope, runtime, {
      FERRY_EMULATOR_RPM: String(RPM),
      FERRY_EMULATOR_TPM: '',
      ...LATENCIES[latency].env,
    });
    const ref = await runReference(emulator.url, n, medianMs, (4 * idealSeconds(n, medianMs) + 60) * 1000);
    log(
      `  ${ref.succeeded}/${n} answered${ref.failed ? `, ${ref.failed} failed (${ref.firstError?.slice(0, 200)})` : ''}${ref.unfinished ? `, ${ref.unfinished} unfinished at the timeout` : ''} in ${fmtS(ref.ms)}; ideal ${(ref.idealMs / 1000).toFixed(1)} s, ideal/actual ${ref.ratio === null ? 'n/a' : ref.ratio.toFixed(3)}`,
    );
    log(
      `  upstream: ${ref.upstream.answered2xx} answered, ${ref.upstream.refusedForQuota} refused = ${pct(ref.share429)} 429s; peak in flight ${ref.upstream.peakInFlight}${ref.retryInfoMissing ? `; ${ref.retryInfoMissing} 429s without RetryInfo` : ''}`,
    );
    return ref;
  } catch (err) {
    log(`  reference failed: ${(err as Error).message}`);
    return { error: (err as Error).message };
  } finally {
    for (const e of await refScope.close()) log(`  cleanup problem: ${e}`);
  }
}

/** One scenario; one that fails is reported as such and the others still run. */
async function runScenarioReported(
  log: (l?: string) => void,
  runtime: Runtime,
  cfg: ScenarioConfig,
  { lines, completions }: Settings,
  input: Buffer,
): Promise<ScenarioOrError> {
  const { latency, workers, mode } = cfg;
  const name = scenarioName(cfg);
  log('');
  log(
    `scenario ${name}: latency ${LATENCIES[latency].label}, ${workers} worker process${workers > 1 ? 'es' : ''}, quota ${mode === 'configured' ? `configured (FERRY_GEMINI_RPM=${RPM})` : 'learned (FERRY_GEMINI_RPM=0)'} — ${new Date().toISOString()}`,
  );
  try {
    return await runScenario(log, runtime, cfg, lines, completions, input);
  } catch (err) {
    const message = (err as Error)?.message ?? String(err);
    log(`  scenario failed: ${message}`);
    return { name, error: message.split('\n')[0] };
  }
}

/** The memory scenario; a failure is reported, not thrown. */
async function measureMemory(log: (l?: string) => void, runtime: Runtime, jobs: number): Promise<MemoryResult | { error: string }> {
  log('');
  log(
    `memory: one worker, FERRY_GENERATE_CONCURRENCY=1000, FERRY_TENANT_MAX_RUNNING=0, emulator latency 5,000 ms, no quota; ${jobs} async completions at once — ${new Date().toISOString()}`,
  );
  try {
    return await runMemory(log, runtime, jobs);
  } catch (err) {
    log(`  memory scenario failed: ${(err as Error).message}`);
    return { error: (err as Error).message };
  }
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
}

const SUMMARY_HEAD = [
  'scenario',
  'batch end',
  'all done',
  'ideal',
  'ratio',
  'ratio?',
  '429s',
  '429s?',
  'B p50',
  'B p99',
  'B max',
  'p99?',
  'B not ok',
  'lines lost',
  'lost?',
  'worker RSS MB',
  'RSS?',
  'peak in flight',
];

/** A summary row with only its name and "error". */
const errorRow = (name: string) => [name, 'error', ...SUMMARY_HEAD.slice(2).map(() => '')];

function referenceRow(latency: string, ref: ReferenceOrError): string[] {
  if ('error' in ref) return errorRow(`${latency}/reference`);
  return [
    `${latency}/reference (@google/genai)`,
    '',
    fmtS(ref.ms),
    `${(ref.idealMs / 1000).toFixed(1)} s`,
    ref.ratio === null ? 'n/a' : ref.ratio.toFixed(3),
    '',
    pct(ref.share429),
    '',
    '',
    '',
    '',
    '',
    String(ref.failed + ref.unfinished),
    '',
    '',
    '',
    '',
    String(ref.upstream.peakInFlight),
  ];
}

function scenarioRow(s: ScenarioOrError): string[] {
  if ('error' in s) return errorRow(s.name);
  const lb = s.completions.lower_bound ? '≥' : '';
  return [
    s.name,
    s.batch.end_s === null ? `${s.batch.status} (t/o)` : `${s.batch.end_s} s`,
    s.all_done_s === null ? 't/o' : `${s.all_done_s} s`,
    `${s.ideal_s.overall} s`,
    s.ratio === null ? 'n/a' : s.ratio.toFixed(3),
    verdict(s.targets.time),
    pct(s.upstream.share_429),
    verdict(s.targets.share_429),
    s.completions.p50_s === null ? 'n/a' : `${lb}${s.completions.p50_s} s`,
    s.completions.p99_s === null ? 'n/a' : `${lb}${s.completions.p99_s} s`,
    s.completions.max_s === null ? 'n/a' : `${lb}${s.completions.max_s} s`,
    verdict(s.targets.completions_p99),
    String(s.completions.not_succeeded),
    String(s.lines.lost),
    verdict(s.targets.nothing_lost),
    s.peak_rss_mb.workers.map((r) => (r === null ? 'n/a' : r.toFixed(0))).join('/'),
    verdict(s.targets.worker_rss),
    String(s.upstream.peakInFlight),
  ];
}

/** Every reference and scenario in one table, then what a reader needs to weigh it. */
function logSummary(
  log: (l?: string) => void,
  { lines, completions, latencyKinds }: Settings,
  references: Record<string, ReferenceOrError>,
  scenarios: ScenarioOrError[],
  memory: MemoryResult | { error: string } | null,
): void {
  log('');
  log(`summary (ideal for ${lines + completions} requests at ${PER_SECOND}/s; ratio = ideal / time until both A and B were done):`);
  const rows = [
    SUMMARY_HEAD,
    ...Object.entries(references).map(([latency, ref]) => referenceRow(latency, ref)),
    ...scenarios.map(scenarioRow),
  ];
  for (const l of table(rows)) log(l);
  for (const kind of latencyKinds) {
    const { medianMs, p99Ms } = LATENCIES[kind];
    if (p99Ms > 2 * medianMs + 1000)
      log(
        `note: B's p99 target (2 × median + 1 s = ${(2 * medianMs + 1000) / 1000} s) is below the ${kind} model's own p99 (${p99Ms / 1000} s): no client can meet it there.`,
      );
  }
  if (memory && !('error' in memory)) {
    log(
      `memory: ${memory.succeeded}/${memory.jobs} succeeded, all done at ${memory.all_done_s ?? 'n/a'} s, emulator peak in flight ${memory.peak_in_flight} (${verdict(memory.targets.in_flight)}), worker peak RSS ${memory.worker_peak_rss_mb ?? 'n/a'} MB (${verdict(memory.targets.worker_rss)})`,
    );
  }
}

const section: Section = {
  name: 'quota',
  title:
    'a batch and interactive completions sharing a 1,200 RPM Gemini quota (model latency, 1 or 3 workers) vs a plain @google/genai pool',
  async run({ scope, log }) {
    const settings = readSettings();
    const startedAt = logPreamble(log, settings);
    const dir = await tempDir(scope, 'ferry-bench-quota-');
    const runtime = await prepareRuntime(runtimeKind(), path.join(dir, 'build'));
    log(`runtime: ${runtime.kind}${runtime.kind === 'dist' && runtime.typeErrors ? ' (src/ has type errors; tsc emitted anyway)' : ''}`);
    const input = batchInput(settings.lines);

    const { references, scenarios } = await runReferencesAndScenarios(log, runtime, settings, input);
    const memory = settings.withMemory ? await measureMemory(log, runtime, settings.memoryJobs) : null;

    logSummary(log, settings, references, scenarios, memory);
    log(`ended ${new Date().toISOString()}`);
    return {
      started: startedAt,
      ended: new Date().toISOString(),
      rpm: RPM,
      model: MODEL,
      lines: settings.lines,
      completions: settings.completions,
      completions_per_s: B_PER_SECOND,
      runtime: runtime.kind,
      references,
      scenarios,
      memory,
    };
  },
};

export default section;
