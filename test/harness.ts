/**
 * Test harness: a real Redis (REDIS_URL from test/run.mjs), the in-process
 * Gemini emulator, and Ferry's API and workers, isolated under a key prefix
 * of their own and cleaned up afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { deleteByPrefix } from './redis-keys.js';
import { createServices, type Services } from '../src/core/services.js';
import { createBlobStagingStore } from '../src/providers/azure/staging.js';
import { startApi, type RunningApi } from '../src/api/app.js';
import { startWorkers, type WorkerRuntime } from '../src/worker/runtime.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.js';

export const KEYS = { a: 'sk-test-tenant-a', b: 'sk-test-tenant-b', admin: 'sk-test-admin' } as const;

export interface Ferry {
  url: string;
  config: Config;
  env: Record<string, string>;
  services: Services;
  emulator: Emulator;
  runtime: WorkerRuntime | null;
  api: RunningApi;
  tmp: string;
  client(key?: string): OpenAI;
  fetch(pathname: string, init?: RequestInit & { key?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

export interface FerryOptions {
  env?: Record<string, string>;
  /** Run workers in this process (default true). */
  workers?: boolean;
  emulator?: EmulatorOptions;
}

export async function startFerry(opts: FerryOptions = {}): Promise<Ferry> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-test-'));
  const emulator = await startEmulator({ quiet: true, processingDelayMs: 0, ...opts.emulator });
  const env: Record<string, string> = {
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    FERRY_REDIS_PREFIX: `ferry-test-${randomBytes(5).toString('hex')}`,
    FERRY_STAGING_DIR: path.join(tmp, 'staging'),
    FERRY_DATA_DIR: path.join(tmp, 'data'),
    FERRY_API_KEYS: `${KEYS.a}:tenant-a,${KEYS.b}:tenant-b`,
    FERRY_ADMIN_KEY: KEYS.admin,
    GEMINI_API_KEY: 'emulator-key',
    GEMINI_BASE_URL: emulator.url,
    HOST: '127.0.0.1',
    PORT: '0',
    FERRY_RETRY_BASE_MS: '20',
    FERRY_RETRY_MAX_MS: '500',
    FERRY_JOB_LOCK_MS: '3000',
    FERRY_METRICS_PORT: '0',
    // Two queue shards on one Redis, so that every test's work goes through the routing a
    // cluster's shards use (a cluster keeps its own default).
    ...(opts.env?.REDIS_CLUSTER_NODES ? {} : { FERRY_QUEUE_SHARDS: '2' }),
    // The level users run at: the request log and error handler run on every test request.
    FERRY_LOG_LEVEL: process.env.FERRY_LOG_LEVEL ?? 'info',
    ...opts.env,
  };
  const config = loadConfig(env);
  // Written to a file beside the test's data (the log of a failing test is in `tmp` until close), not to the test output.
  const logFile = pino.destination({ dest: path.join(tmp, 'ferry.log'), sync: false, mkdir: true });
  const logger = createLogger(config.logLevel, logFile);
  const staging = config.stagingContainer ? createBlobStagingStore(config) : undefined;
  const services = await createServices(config, logger, { staging });
  const runtime =
    opts.workers === false ? null : await startWorkers(services, { apiKey: config.gemini.apiKey!, baseUrl: config.gemini.baseUrl });
  const api = await startApi(services, {
    port: 0,
    host: '127.0.0.1',
    workersReady: async () => (runtime ? runtime.running() : (await services.queues.upload.getWorkersCount()) > 0),
  });
  return {
    url: api.url,
    config,
    env,
    services,
    emulator,
    runtime,
    api,
    tmp,
    client: (key: string = KEYS.a) => new OpenAI({ apiKey: key, baseURL: `${api.url}/v1`, maxRetries: 0, timeout: 120_000 }),
    fetch: (pathname, init = {}) => {
      const { key = KEYS.a, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (key) headers.set('authorization', `Bearer ${key}`);
      return fetch(`${api.url}${pathname}`, { ...rest, headers });
    },
    async close() {
      await api.close();
      await runtime?.close();
      // The activity's last counts are written now, so that they are deleted with the rest.
      await services.activity.close();
      await deleteByPrefix(services.redis, config.prefix);
      await services.close();
      await emulator.close();
      logFile.end();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** Writes `size` pseudo-random bytes to a file (streamed, 1 MiB at a time). */
export async function writeRandomFile(file: string, size: number): Promise<void> {
  const out = createWriteStream(file);
  for (let left = size; left > 0; left -= 1 << 20) {
    if (!out.write(randomBytes(Math.min(left, 1 << 20)))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

/** Polls until `fn` answers something truthy, or fails after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, label = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const children = new Set<ChildProcess>();
// A test that fails before stopping its child must not leave it running, nor keep the file's
// process waiting for it: children hold no reference on the event loop and die with the tests.
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** A `ferry <command>` child process with the given environment; `logs`: its stdout (the log lines) piped too. */
export function spawnFerry(command: string, env: Record<string, string>, opts: { logs?: boolean } = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', command], {
    cwd: path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..'),
    env: { ...process.env, ...env },
    stdio: ['ignore', opts.logs ? 'pipe' : 'ignore', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.unref();
  for (const s of [child.stdout, child.stderr]) (s as (NodeJS.ReadableStream & { unref?: () => void }) | null)?.unref?.();
  return child;
}

/** A TCP port free on loopback now (for a process the test starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** The file once its upload ended processed (long-polling the Files API); fails the test if it ends otherwise. */
export async function processedFile(client: OpenAI, id: string): Promise<any> {
  return eventually(async () => {
    const f: any = await client.files.retrieve(id, { query: { wait: 10 } } as any);
    if (f.status === 'error') throw new Error(`file ${id} failed: ${f.status_details}`);
    return f.status === 'processed' ? f : null;
  });
}

/**
 * After a test that spawned Ferry: the process stopped (SIGTERM, then SIGKILL after `graceMs`; 0
 * kills at once), then its Redis keys and its directories deleted.
 */
export async function cleanUpSpawned(opts: { child?: ChildProcess; prefix: string; dirs: Array<string | undefined>; graceMs?: number }) {
  const { child } = opts;
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(opts.graceMs ? 'SIGTERM' : 'SIGKILL');
    const timer = opts.graceMs ? setTimeout(() => child.kill('SIGKILL'), opts.graceMs) : null;
    await exited;
    if (timer) clearTimeout(timer);
  }
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await deleteByPrefix(redis, opts.prefix);
  await redis.quit();
  for (const dir of opts.dirs) if (dir) await rm(dir, { recursive: true, force: true });
}

/**
 * An asynchronous completion that waits for its file: the emulator holds the file's upload for
 * `latencyMs`, so the job is queued or waiting meanwhile (to cancel it, say).
 */
export async function jobWaitingForSlowFile(
  ferry: Ferry,
  latencyMs: number,
  key: string = KEYS.a,
): Promise<{ fileId: string; jobId: string }> {
  ferry.emulator.setFaults([{ route: 'upload.chunk', kind: 'latency', latencyMs, count: 1 }]);
  const file = await ferry.client(key).files.create({ file: await toFile(randomBytes(2048), 'slow.pdf'), purpose: 'user_data' });
  const res = await ferry.fetch('/v1/chat/completions', {
    key,
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({
      model: 'gemini-2.0-flash',
      messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: file.id } }] }],
    }),
  });
  const job = (await res.json()) as { id: string };
  return { fileId: file.id, jobId: job.id };
}
