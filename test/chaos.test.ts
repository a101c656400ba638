/**
 * Chaos: one `ferry api` and two `ferry worker` processes, each killed again and again by injection
 * (FERRY_CRASH_AT) at a random point of accepting or finishing work, Redis shut down and started
 * again once, a fifth of Gemini's answers 503 or 429. Clients send uploads, async completions and
 * a batch, each with an Idempotency-Key, and send it again until it is answered, as the SDKs do.
 * Afterwards: every resend reaches the one record its key made, every job, file and batch line
 * finished once with its answer, no key stays in progress, and the last processes are alive.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../src/core/config.js';
import { deleteByPrefix } from './redis-keys.js';
import { createServices, type Services } from '../src/core/services.js';
import { ACCEPT_STEPS } from '../src/domain/accept.js';
import { startEmulator, type Emulator } from '../src/emulator/index.js';
import { eventually, freePort, spawnFerry } from './harness.js';
import { startRedisServer, stopRedisServer } from './redis-server.js';

const KEY = 'sk-chaos';
const TENANT = 'chaos';
const MODEL = 'gemini-2.0-flash';
const JOBS = 40;
const FILES = 6;
const LINES = 60;
/** Points of work where a worker is killed (core/crash-points.ts). */
const WORK_STEPS = ['generate.answered', 'generate.recorded', 'generate.announced', 'batch.line-counted', 'upload.stored'];

let tmp: string;
let redisPort: number;
let redis: ChildProcess;
let emulator: Emulator;
let env: Record<string, string>;
let base: string;
let services: Services;

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)];

/**
 * A role (the API, a worker) kept running: each life but the last `calm` ones is started with a
 * random crash point; a life that dies is replaced at once.
 */
class Supervised {
  child!: ChildProcess;
  deaths: string[] = [];
  private lives = 0;
  private stopping = false;
  stderr = '';

  constructor(
    private readonly command: string,
    private readonly points: readonly string[],
    private readonly crashingLives: number,
    private readonly maxNth: number,
    private readonly firstLifePoints = points.length,
  ) {
    this.start();
  }

  private start() {
    // The first life dies at a point that every run passes often enough (a worker may upload no file at all).
    const points = this.lives === 0 ? this.points.slice(0, this.firstLifePoints) : this.points;
    const crash = this.lives++ < this.crashingLives ? `${pick(points)}:${1 + Math.floor(Math.random() * this.maxNth)}` : '';
    this.child = spawnFerry(this.command, { ...env, FERRY_CRASH_AT: crash });
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.child.once('exit', (code, signal) => {
      if (this.stopping) return;
      this.deaths.push(`${crash || 'no crash point'} → ${signal ?? `${code} ${this.stderr.trim().split('\n').pop()}`}`);
      this.start();
    });
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop() {
    this.stopping = true;
    if (!this.alive()) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-chaos-'));
  redisPort = await freePort();
  redis = await startRedisServer(redisPort, tmp);
  emulator = await startEmulator({ quiet: true, processingDelayMs: 0 });
  emulator.setFaults([
    { route: 'generate', kind: 'latency', latencyMs: 100 },
    { route: 'generate', kind: '503', probability: 0.1 },
    { route: 'generate', kind: '429', probability: 0.1 },
    { route: 'upload.chunk', kind: '503', probability: 0.2 },
  ]);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = {
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    FERRY_REDIS_PREFIX: `ferry-chaos-${randomBytes(4).toString('hex')}`,
    FERRY_API_KEYS: `${KEY}:${TENANT}`,
    GEMINI_API_KEY: 'emulator-key',
    GEMINI_BASE_URL: emulator.url,
    FERRY_DATA_DIR: path.join(tmp, 'data'),
    FERRY_STAGING_DIR: path.join(tmp, 'staging'),
    FERRY_LOG_LEVEL: 'info',
    FERRY_JOB_LOCK_MS: '3000',
    FERRY_IDEMPOTENCY_LEASE_MS: '2000',
    FERRY_RETRY_BASE_MS: '50',
    FERRY_RETRY_MAX_MS: '1000',
    FERRY_METRICS_PORT: '0',
    HOST: '127.0.0.1',
    PORT: String(port),
  };
  services = await createServices(loadConfig(env), pino({ level: 'silent' }));
});

after(async () => {
  await services.activity.close();
  await deleteByPrefix(services.redis, env.FERRY_REDIS_PREFIX).catch(() => 0);
  await services.close();
  await stopRedisServer(redis);
  await emulator.close();
  await rm(tmp, { recursive: true, force: true });
});

/** Sends a request until Ferry answers it (not 409 in progress, 5xx or a dropped connection), as a retrying client does. */
async function untilAnswered(pathname: string, init: () => RequestInit, key: string): Promise<{ status: number; body: any }> {
  for (;;) {
    const res = await fetch(`${base}${pathname}`, {
      ...init(),
      headers: { authorization: `Bearer ${KEY}`, 'idempotency-key': key, ...(init().headers as Record<string, string>) },
    }).catch(() => null);
    if (res && res.status !== 409 && res.status < 500) {
      const body = await res.json();
      assert.ok(res.status === 200 || res.status === 202, `${key}: ${res.status} ${JSON.stringify(body)}`);
      return { status: res.status, body };
    }
    await res?.arrayBuffer().catch(() => null);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const completion = (i: number) => ({ model: MODEL, messages: [{ role: 'user', content: `question ${i}` }] });
const sendJob = (i: number) =>
  untilAnswered(
    '/v1/chat/completions',
    () => ({
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify(completion(i)),
    }),
    `job-${i}`,
  );

const fileBytes = (i: number) => createHash('sha512').update(`file ${i}`).digest().toString('hex').repeat(2000);
const sendFile = (key: string, name: string, content: string, purpose: string) =>
  untilAnswered(
    '/v1/files',
    () => {
      const form = new FormData();
      form.append('purpose', purpose);
      form.append('file', new Blob([content], { type: 'text/plain' }), name);
      return { method: 'POST', body: form };
    },
    key,
  );

const batchInput = Array.from({ length: LINES }, (_, i) =>
  JSON.stringify({ custom_id: `line-${i}`, method: 'POST', url: '/v1/chat/completions', body: completion(1000 + i) }),
).join('\n');

/** Runs `fns` with at most `n` at once. */
async function limited<T>(n: number, fns: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(fns.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < fns.length) {
        const i = next++;
        out[i] = await fns[i]();
      }
    }),
  );
  return out;
}

test('killed anywhere, Redis restarted, Gemini failing: nothing lost, nothing twice, no key stuck', { timeout: 240_000 }, async () => {
  const api = new Supervised('api', ACCEPT_STEPS, 4, 8);
  const workers = [new Supervised('worker', WORK_STEPS, 3, 6, 4), new Supervised('worker', WORK_STEPS, 3, 6, 4)];
  try {
    await eventually(
      () =>
        fetch(`${base}/healthz`).then(
          (r) => r.ok,
          () => false,
        ),
      60_000,
      'the API to answer',
    );

    const input = sendFile('batch-input', 'lines.jsonl', batchInput, 'batch');
    const files = limited(
      3,
      Array.from({ length: FILES }, (_, i) => () => sendFile(`file-${i}`, `doc-${i}.txt`, fileBytes(i), 'user_data')),
    );
    let answered = 0;
    const jobs = limited(
      6,
      Array.from({ length: JOBS }, (_, i) => () => sendJob(i).finally(() => answered++)),
    );
    const batch = input.then(({ body }) =>
      untilAnswered(
        '/v1/batches',
        () => ({
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ input_file_id: body.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
        }),
        'batch-1',
      ),
    );

    // Redis goes away and comes back while requests are being accepted.
    await eventually(async () => answered >= JOBS / 3, 90_000, 'a third of the jobs answered');
    await stopRedisServer(redis);
    await new Promise((r) => setTimeout(r, 1500));
    redis = await startRedisServer(redisPort, tmp);

    const jobIds = (await jobs).map((r) => r.body.id as string);
    const fileIds = (await files).map((r) => r.body.id as string);
    const batchId = (await batch).body.id as string;
    const inputId = (await input).body.id as string;

    // Every job, file and the batch reach their end.
    await eventually(
      async () => {
        const recs = await Promise.all(jobIds.map((id) => services.jobs.get(id)));
        return recs.every((r) => r?.status === 'succeeded');
      },
      150_000,
      'every job to succeed',
    ).catch(async (err) => {
      const recs = await Promise.all(jobIds.map((id) => services.jobs.get(id)));
      const open = recs.filter((r) => r?.status !== 'succeeded').map((r) => [r?.id, r?.status, r?.error?.message]);
      throw new Error(`${(err as Error).message}: ${JSON.stringify(open)}`);
    });
    await eventually(
      async () => (await Promise.all(fileIds.map((id) => services.files.get(id)))).every((r) => r?.status === 'processed'),
      60_000,
      'every file to be processed',
    ).catch(async (err) => {
      const recs = await Promise.all(fileIds.map((id) => services.files.get(id)));
      const states = await Promise.all(fileIds.map(async (id) => (await services.queues.upload.getJob(`upload-${id}`))?.getState()));
      throw new Error(`${(err as Error).message}: ${JSON.stringify(recs.map((r, i) => [r?.id, r?.status, r?.status_details, states[i]]))}`);
    });
    const done = await eventually(
      async () => {
        const b = await services.batches.get(batchId);
        return b?.status === 'completed' ? b : null;
      },
      150_000,
      'the batch to complete',
    ).catch(async (err) => {
      const b = await services.batches.get(batchId);
      throw new Error(`${(err as Error).message}: ${b?.status} ${JSON.stringify(await services.batches.counts(b!))}`);
    });

    // Each key answers its one record, also now.
    assert.equal(new Set(jobIds).size, JOBS, 'one job per key');
    for (let i = 0; i < JOBS; i += 7) assert.equal((await sendJob(i)).body.id, jobIds[i], `job-${i} resent`);
    for (let i = 0; i < FILES; i++) {
      assert.equal((await sendFile(`file-${i}`, `doc-${i}.txt`, fileBytes(i), 'user_data')).body.id, fileIds[i]);
    }
    const interactive = (await services.jobs.list(TENANT, { limit: 10_000, order: 'asc' })).data.filter((j) => !j.batch_id);
    assert.deepEqual(interactive.map((j) => j.id).sort(), [...jobIds].sort(), 'no job record beyond the one per key');
    const listedFiles = (await services.files.list(TENANT, { limit: 1000, order: 'asc' })).data.map((f) => f.id);
    assert.deepEqual(
      listedFiles.sort(),
      [...fileIds, inputId, done.output_file_id!].filter(Boolean).sort(),
      'no file record beyond the one per key',
    );
    assert.equal((await services.batches.list(TENANT, { limit: 10, order: 'asc' })).data.length, 1, 'one batch');

    // Each answer once: a job's result, a file's bytes, a batch line in the output.
    for (const id of jobIds) assert.ok((await services.jobs.get(id))!.result, `${id} has its answer`);
    for (let i = 0; i < FILES; i++) {
      const res = await fetch(`${base}/v1/files/${fileIds[i]}/content`, { headers: { authorization: `Bearer ${KEY}` } });
      assert.equal(await res.text(), fileBytes(i), `file-${i} bytes`);
    }
    const output = await fetch(`${base}/v1/files/${done.output_file_id}/content`, { headers: { authorization: `Bearer ${KEY}` } });
    const lines = (await output.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.custom_id).sort(), Array.from({ length: LINES }, (_, i) => `line-${i}`).sort(), 'every line once');
    assert.ok(
      lines.every((l) => l.response?.status_code === 200),
      'every line answered',
    );

    // No key stays in progress.
    const idem = await services.redis.keys(`${env.FERRY_REDIS_PREFIX}:idem:*`);
    assert.equal(idem.length, JOBS + FILES + 2);
    for (const k of idem) assert.equal(JSON.parse((await services.redis.get(k))!).lease, undefined, `${k} is complete`);

    // Kills happened, and the processes running now are alive and serving.
    const deaths = [api, ...workers].flatMap((s) => s.deaths);
    assert.ok(api.deaths.length >= 1, `the API was killed: ${api.deaths.join('; ')}`);
    assert.ok(
      workers.some((w) => w.deaths.length >= 1),
      `a worker was killed: ${deaths.join('; ')}`,
    );
    assert.ok(api.alive() && workers.every((w) => w.alive()), `the last processes are alive: ${deaths.join('; ')}`);
    assert.ok((await fetch(`${base}/readyz`)).ok);
    const stderr = api.stderr + workers.map((w) => w.stderr).join('');
    const stack = /^\s+at .+:\d+:\d+\)?$/m.exec(stderr);
    assert.equal(stack, null, `no stack trace on stderr: ${stack ? stderr.slice(Math.max(0, stack.index - 1500), stack.index + 300) : ''}`);
    process.stdout.write(`# chaos: ${deaths.length} kills: ${deaths.join('; ')}\n`);
  } finally {
    await Promise.all([api, ...workers].map((s) => s.stop()));
  }
});
