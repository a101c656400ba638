/**
 * Shared pieces of the benchmarks: cleanup scopes, child processes with their
 * peak RSS and CPU time, timing and formatting, small HTTP helpers, and a
 * whole Ferry stack (emulator, API, worker as separate processes) on loopback.
 *
 * A section is a module exporting `default: Section`; bench/run.ts lists them.
 *
 * For every spawned process:
 *   BENCH_NODE_ARGS="--trace-gc …"  extra node arguments
 *   BENCH_LOG_DIR=dir               also write each process's output to dir/<name>-<pid>.log
 *   BENCH_RUNTIME=dist|tsx          compiled JavaScript (default) or the sources through tsx
 */
import { Queue, Worker } from 'bullmq';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { deleteByPrefix } from '../test/redis-keys.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------
// Sections

export interface SectionContext {
  /** Everything registered here is undone when the section ends, fails or is interrupted. */
  scope: Scope;
  /** One line of the readable report. */
  log: (line?: string) => void;
}

/** What a section answers: printed as one JSON line (with `section` added) at the end of the run. */
export type SectionResult = Record<string, unknown>;

export interface Section {
  name: string;
  title: string;
  run(ctx: SectionContext): Promise<SectionResult>;
}

// ---------------------------------------------------------------------------
// Cleanup

type Undo = { label: string; fn: () => unknown };

const openScopes = new Set<Scope>();
/** Synchronous last resorts for an abrupt exit: pids to SIGKILL, directories to remove. */
const livePids = new Set<number>();
const liveDirs = new Set<string>();

process.on('exit', () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/** A stack of undo steps, run last-registered first. */
export class Scope {
  private undo: Undo[] = [];
  private closing: Promise<string[]> | null = null;

  constructor() {
    openScopes.add(this);
  }

  defer(label: string, fn: () => unknown): void {
    if (this.closing) throw new Error('scope already closed');
    this.undo.push({ label, fn });
  }

  /** Runs every undo step even when some fail; answers the failures. Every caller waits for the same run. */
  close(): Promise<string[]> {
    this.closing ??= (async () => {
      const errors: string[] = [];
      for (const { label, fn } of this.undo.reverse()) {
        try {
          await fn();
        } catch (err) {
          errors.push(`${label}: ${(err as Error)?.message ?? String(err)}`);
        }
      }
      this.undo = [];
      openScopes.delete(this);
      return errors;
    })();
    return this.closing;
  }
}

export async function closeAllScopes(): Promise<string[]> {
  const errors: string[] = [];
  for (const s of [...openScopes].reverse()) errors.push(...(await s.close()));
  return errors;
}

/** A fresh temporary directory, removed with the scope (and on an abrupt exit). */
export async function tempDir(scope: Scope, prefix = 'ferry-bench-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  liveDirs.add(dir);
  scope.defer(`remove ${dir}`, async () => {
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  });
  return dir;
}

// ---------------------------------------------------------------------------
// Settings

/** A positive whole number from the environment, or `dflt` when unset. */
/** A whole number from the environment; `min` 0 lets a count of rounds skip its step. */
export function envInt(name: string, dflt: number, min = 1): number {
  const raw = process.env[name]?.trim();
  if (!raw) return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be a whole number of at least ${min}, got "${raw}"`);
  return n;
}

// ---------------------------------------------------------------------------
// Timing and formatting

export const now = (): number => performance.now();
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Megabytes are 10^6 bytes throughout the reports. */
export const MB = 1e6;
export const mbps = (bytes: number, ms: number): number => (ms > 0 ? bytes / MB / (ms / 1000) : 0);
export const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
export const fmtMs = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
export const fmtMB = (bytes: number | null): string => (bytes === null ? 'n/a' : `${(bytes / MB).toFixed(1)} MB`);
export const fmtRate = (v: number): string => `${v.toFixed(0)} MB/s`;
export const verdict = (ok: boolean | null): string => (ok === null ? 'n/a' : ok ? 'PASS' : 'MISS');

/** Polls until `fn` answers something truthy; `check` may throw to stop early (a process died). */
export async function waitFor<T>(
  label: string,
  fn: () => Promise<T | null | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number; check?: () => void } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown = null;
  for (;;) {
    opts.check?.();
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${label}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/**
 * Waits until the processes are idle (together under `busyShare` of one core
 * over `windowMs`), so that start-up work (module loading, JIT) or the tail
 * of an earlier step does not run into the next measurement. Answers whether
 * they settled within `timeoutMs`.
 */
export async function settle(procs: Proc[], opts: { windowMs?: number; busyShare?: number; timeoutMs?: number } = {}): Promise<boolean> {
  const windowMs = opts.windowMs ?? 500;
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  const total = () => procs.reduce((sum, p) => sum + (p.cpu() ?? 0), 0);
  let before = total();
  while (Date.now() < deadline) {
    await sleep(windowMs);
    const after = total();
    if (after - before < (opts.busyShare ?? 0.05) * (windowMs / 1000)) return true;
    before = after;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Processes

let clockTicks: number | null = null;
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Peak resident set size (VmHWM) of a live process, in bytes; null where /proc is not available. */
export function peakRssBytes(pid: number): number | null {
  return procStatusKb(pid, 'VmHWM');
}

/** Current resident set size (VmRSS), in bytes. */
export function rssBytes(pid: number): number | null {
  return procStatusKb(pid, 'VmRSS');
}

function procStatusKb(pid: number, field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** User and system CPU seconds a live process has used so far, and its minor page faults. */
export function cpuTimes(pid: number): { user: number; sys: number; minorFaults: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      user: Number(fields[11]) / ticksPerSecond(),
      sys: Number(fields[12]) / ticksPerSecond(),
      minorFaults: Number(fields[7]),
    };
  } catch {
    return null;
  }
}

/** User + system CPU seconds a live process has used so far. */
export function cpuSeconds(pid: number): number | null {
  const t = cpuTimes(pid);
  return t === null ? null : t.user + t.sys;
}

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  alive(): boolean;
  /** The last lines the process wrote (stdout and stderr together). */
  tail(lines?: number): string;
  /** Calls `fn` with each complete output line from now on; answers a function that stops it. */
  onLine(fn: (line: string) => void): () => void;
  /** Throws, with the output tail, if the process has exited. */
  assertAlive(): void;
  peakRss(): number | null;
  cpu(): number | null;
  cpuTimes(): { user: number; sys: number; minorFaults: number } | null;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const TAIL_BYTES = 64 * 1024;

/**
 * Spawns `node <nodeArgs...>` directly (no wrapper process), so the pid is
 * the process doing the work: RSS and CPU read from /proc are its own.
 * Output is always drained (a full pipe would stall the child) and the tail kept.
 */
export function spawnNode(scope: Scope, name: string, nodeArgs: string[], env: Record<string, string>): Proc {
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...extra, ...nodeArgs], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  const pid = child.pid;
  livePids.add(pid);
  let out = '';
  const listeners = new Set<(line: string) => void>();
  const keeper = () => {
    let partial = '';
    return (b: Buffer) => {
      const text = b.toString('utf8');
      out += text;
      if (out.length > 2 * TAIL_BYTES) out = out.slice(-TAIL_BYTES);
      if (listeners.size === 0) {
        partial = '';
        return;
      }
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) for (const fn of listeners) fn(line);
    };
  };
  const keep = keeper();
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keeper());
  const logDir = process.env.BENCH_LOG_DIR?.trim();
  if (logDir) {
    mkdirSync(logDir, { recursive: true });
    const file = createWriteStream(path.join(logDir, `${name}-${pid}.log`));
    child.stdout!.pipe(file, { end: false });
    child.stderr!.pipe(file, { end: false });
    child.once('close', () => file.end());
  }
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      livePids.delete(pid);
      resolve();
    });
    child.once('error', (err) => {
      keep(Buffer.from(`\n[spawn error] ${err.message}\n`));
      exited ??= { code: null, signal: null };
      livePids.delete(pid);
      resolve();
    });
  });
  const tail = (lines = 20) => out.trimEnd().split('\n').slice(-lines).join('\n');
  const proc: Proc = {
    name,
    pid,
    child,
    alive: () => exited === null,
    tail,
    onLine(fn) {
      listeners.add(fn);
      return () => void listeners.delete(fn);
    },
    assertAlive() {
      if (exited) {
        const how = exited.signal ? `signal ${exited.signal}` : `code ${exited.code}`;
        throw new Error(`${name} (pid ${pid}) exited with ${how}; its last output:\n${tail()}`);
      }
    },
    peakRss: () => peakRssBytes(pid),
    cpu: () => cpuSeconds(pid),
    cpuTimes: () => cpuTimes(pid),
    async stop(graceMs = 10_000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
  scope.defer(`stop ${name}`, () => proc.stop());
  return proc;
}

/**
 * How Ferry's processes run: `tsx` (default) loads src/ through tsx, as `npm start`
 * does; `dist` compiles src/ with tsc into a temp dir first and runs plain
 * JavaScript, as the container image does (tsx's loader thread and transpiled
 * sources add some tens of MB of RSS). Chosen with BENCH_RUNTIME.
 */
export type Runtime = { kind: 'tsx' } | { kind: 'dist'; cli: string; typeErrors: boolean };

export function runtimeKind(): 'tsx' | 'dist' {
  // Compiled JavaScript by default, as the container image runs it.
  const v = (process.env.BENCH_RUNTIME ?? 'dist').trim() || 'dist';
  if (v !== 'tsx' && v !== 'dist') throw new Error(`BENCH_RUNTIME must be tsx or dist, got "${v}"`);
  return v;
}

/** Prepares the runtime; for `dist`, builds into `dir` (tsc emits even when the tree has type errors). */
export async function prepareRuntime(kind: 'tsx' | 'dist', dir: string): Promise<Runtime> {
  if (kind === 'tsx') return { kind };
  const out = path.join(dir, 'dist');
  await mkdir(dir, { recursive: true });
  // Compiled modules find their packages (and "type": "module") by walking up from their own path.
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  await copyFile(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', out, '--sourceMap', 'false'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const cli = path.join(out, 'cli.js');
  if (!existsSync(cli)) throw new Error(`building src/ failed:\n${(result.stdout + result.stderr).slice(-2000)}`);
  return { kind, cli, typeErrors: result.status !== 0 };
}

/** `ferry <command>` as `node [node args] --import tsx src/cli.ts <command>` (or the compiled cli.js). */
export function spawnFerry(
  scope: Scope,
  name: string,
  command: string,
  env: Record<string, string>,
  opts: { nodeArgs?: string[]; runtime?: Runtime } = {},
): Proc {
  const entry = opts.runtime?.kind === 'dist' ? [opts.runtime.cli] : ['--import', 'tsx', 'src/cli.ts'];
  return spawnNode(scope, name, [...(opts.nodeArgs ?? []), ...entry, command], env);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------
// HTTP

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text(): string;
  json<T = any>(): T;
}

/** One request over node:http; a Readable body is streamed (give its exact Content-Length in `headers`). */
export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string | Readable; agent?: http.Agent } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
    const headers = { ...opts.headers };
    if (Buffer.isBuffer(body) && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
      headers['Content-Length'] = String(body.length);
    }
    const req = http.request(url, { method: opts.method ?? 'GET', headers, agent: opts.agent });
    req.once('error', reject);
    req.once('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.once('error', reject);
      res.once('end', () => {
        const buf = Buffer.concat(parts);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: buf,
          text: () => buf.toString('utf8'),
          json: () => JSON.parse(buf.toString('utf8')),
        });
      });
    });
    if (body instanceof Readable) {
      body.once('error', (e) => req.destroy(e));
      body.pipe(req);
    } else req.end(body);
  });
}

/** Pieces streamed one after the other: buffers as they are, files read lazily from disk. */
export function concatStream(parts: Array<Buffer | { file: string; highWaterMark?: number }>): Readable {
  return Readable.from(
    (async function* () {
      for (const p of parts) {
        if (Buffer.isBuffer(p)) yield p;
        else yield* createReadStream(p.file, { highWaterMark: p.highWaterMark ?? 1 << 20 });
      }
    })(),
    { objectMode: false },
  );
}

// ---------------------------------------------------------------------------
// Data

/** Writes `size` random bytes to `file` (1 MiB at a time); answers their sha256 (hex). */
export async function writeRandomFile(file: string, size: number): Promise<string> {
  const out = createWriteStream(file);
  const hash = createHash('sha256');
  const block = 1 << 20;
  for (let left = size; left > 0; left -= block) {
    // A fresh buffer each time: write() may still hold the previous one.
    const piece = randomFillSync(Buffer.allocUnsafe(Math.min(left, block)));
    hash.update(piece);
    if (!out.write(piece)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------
// A Ferry stack: emulator, API and worker as separate processes

export interface Stack {
  tmp: string;
  redisUrl: string;
  prefix: string;
  apiUrl: string;
  apiKey: string;
  emulatorUrl: string;
  emulator: Proc;
  api: Proc;
  /** The first worker process (of `workers`). */
  worker: Proc;
  /** Every `ferry worker` process, `StackOptions.workers` of them. */
  workers: Proc[];
  procs: Proc[];
  /** A Redis client of the bench's own (records, job timings). */
  redis: Redis;
  /** Environment shared by the API and the worker. */
  env: Record<string, string>;
  runtime: Runtime;
}

export interface StackOptions {
  /** Extra environment for the API and worker (overrides the defaults). */
  env?: Record<string, string>;
  /** Extra environment for the emulator. */
  emulatorEnv?: Record<string, string>;
  /** Extra node arguments for all three processes (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Default: BENCH_RUNTIME (dist). A Runtime from prepareRuntime is used as it is (no second build). */
  runtime?: 'tsx' | 'dist' | Runtime;
  /** How many `ferry worker` processes (default 1). */
  workers?: number;
}

export const BENCH_API_KEY = 'bench-key';

/**
 * Starts the emulator, `ferry api` and `ferry worker` under a fresh Redis
 * prefix and temp dir, and waits until the API's /readyz answers 200.
 * Processes, Redis keys and files all go with the scope.
 */
export async function startStack(scope: Scope, opts: StackOptions = {}): Promise<Stack> {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new Error(`Redis does not answer at ${redisUrl} (set REDIS_URL): ${(err as Error).message}`, { cause: err });
  }
  scope.defer('close bench redis client', () => redis.quit().catch(() => redis.disconnect()));

  const tmp = await tempDir(scope);
  const prefix = `ferry-bench-${randomBytes(5).toString('hex')}`;
  // Registered before the processes: it runs after they have stopped.
  scope.defer(`delete redis keys ${prefix}:*`, () => deleteByPrefix(redis, prefix));

  const runtime =
    typeof opts.runtime === 'object' ? opts.runtime : await prepareRuntime(opts.runtime ?? runtimeKind(), path.join(tmp, 'build'));
  const spawnOpts = { nodeArgs: opts.nodeArgs, runtime };

  const emulatorPort = await freePort();
  const emulatorUrl = `http://127.0.0.1:${emulatorPort}`;
  const emulator = spawnFerry(
    scope,
    'emulator',
    'emulator',
    {
      HOST: '127.0.0.1',
      FERRY_EMULATOR_PORT: String(emulatorPort),
      FERRY_EMULATOR_PROCESSING_MS: '0',
      FERRY_LOG_LEVEL: 'warn',
      ...opts.emulatorEnv,
    },
    spawnOpts,
  );

  const apiPort = await freePort();
  const env: Record<string, string> = {
    REDIS_URL: redisUrl,
    FERRY_REDIS_PREFIX: prefix,
    FERRY_STAGING_DIR: path.join(tmp, 'staging'),
    FERRY_DATA_DIR: path.join(tmp, 'data'),
    FERRY_API_KEYS: `${BENCH_API_KEY}:bench`,
    FERRY_LOG_LEVEL: 'warn',
    FERRY_METRICS_PORT: '0',
    GEMINI_API_KEY: 'bench',
    GEMINI_BASE_URL: emulatorUrl,
    HOST: '127.0.0.1',
    PORT: String(apiPort),
    ...opts.env,
  };
  await mkdir(env.FERRY_STAGING_DIR, { recursive: true });
  // Stopped in reverse: API first (no new work), then the worker, then the emulator.
  const workerCount = opts.workers ?? 1;
  if (!Number.isSafeInteger(workerCount) || workerCount < 1) throw new Error(`workers must be a positive whole number, got ${workerCount}`);
  const workers = Array.from({ length: workerCount }, (_, i) =>
    spawnFerry(scope, workerCount === 1 ? 'worker' : `worker-${i + 1}`, 'worker', env, spawnOpts),
  );
  const worker = workers[0];
  const api = spawnFerry(scope, 'api', 'api', env, spawnOpts);
  const procs = [emulator, ...workers, api];
  const check = () => procs.forEach((p) => p.assertAlive());

  await waitFor('the emulator', async () => (await httpRequest(`${emulatorUrl}/_emulator/stats`)).status === 200, {
    timeoutMs: 60_000,
    check,
  });
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await waitFor('the API to be ready (GET /readyz)', async () => (await httpRequest(`${apiUrl}/readyz`)).status === 200, {
    timeoutMs: 60_000,
    check,
  });
  return { tmp, redisUrl, prefix, apiUrl, apiKey: BENCH_API_KEY, emulatorUrl, emulator, api, worker, workers, procs, redis, env, runtime };
}

/** How many calls of `model` the emulator has answered with a 2xx (429s and faults aside). */
export async function emulatorAnswered(stack: Stack, model: string): Promise<number> {
  return (await httpRequest(`${stack.emulatorUrl}/_emulator/stats`)).json().generateByModel?.[model]?.answered2xx ?? 0;
}

/** Until the emulator has answered `total` calls of `model`; fails if a process died meanwhile. */
export async function untilAnswered(stack: Stack, model: string, total: number): Promise<void> {
  while ((await emulatorAnswered(stack, model)) < total) {
    stack.procs.forEach((p) => p.assertAlive());
    await sleep(50);
  }
}

/** `n` asynchronous completions (`Prefer: respond-async`), `inFlight` at a time; `from`: the first's number. */
export async function postAsyncCompletions(
  stack: Stack,
  n: number,
  opts: { model: string; inFlight: number; from?: number },
): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.inFlight });
  const post = (i: number) =>
    httpRequest(`${stack.apiUrl}/v1/chat/completions`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.apiKey}`, prefer: 'respond-async' },
      body: JSON.stringify({ model: opts.model, messages: [{ role: 'user', content: `job ${(opts.from ?? 0) + i}` }] }),
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: opts.inFlight }, async () => {
      while (next < n) {
        const res = await post(next++);
        if (res.status !== 202) throw new Error(`a completion was refused: ${res.status} ${res.text().slice(0, 200)}`);
      }
    }),
  );
  agent.destroy();
}

// ---------------------------------------------------------------------------
// The reference: raw BullMQ on the same Redis

/** No-op jobs added while a Worker (the given concurrency) processes them; until the last completes. */
export async function rawBullmq(
  redisUrl: string,
  prefix: string,
  n: number,
  concurrency: number,
  /** 'bulk': addBulk in chunks of 1,000; a number: one `add` per job, that many in flight (as an API adds them). */
  adding: 'bulk' | number = 'bulk',
): Promise<{ ms: number; addMs: number }> {
  const connection = { url: redisUrl, maxRetriesPerRequest: null };
  const queue = new Queue('raw', { connection, prefix, defaultJobOptions: { removeOnComplete: { age: 3600, count: 10_000 } } });
  let done = 0;
  let resolveAll: () => void = () => {};
  const all = new Promise<void>((r) => (resolveAll = r));
  const worker = new Worker('raw', async () => null, { connection, prefix, concurrency, autorun: false });
  worker.on('completed', () => {
    if (++done === n) resolveAll();
  });
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
  try {
    const t0 = now();
    void worker.run();
    if (adding === 'bulk') {
      for (let i = 0; i < n; i += 1000) {
        await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ name: 'noop', data: { i: i + k } })));
      }
    } else {
      let next = 0;
      await Promise.all(
        Array.from({ length: adding }, async () => {
          while (next < n) await queue.add('noop', { i: next++ });
        }),
      );
    }
    const addMs = now() - t0;
    await all;
    return { ms: now() - t0, addMs };
  } finally {
    await worker.close();
    await queue.close();
  }
}
