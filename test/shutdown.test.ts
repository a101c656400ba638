/**
 * A shutdown people can follow: `ferry all` (as `npm start` runs it) with completions running
 * says what it waits for, a second SIGINT ends it at once with a non-zero code, and the work it
 * dropped runs again after a restart.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { eventually, freePort, spawnFerry } from './harness.js';
import { deleteByPrefix } from './redis-keys.js';

const children: ChildProcess[] = [];
let tmp = '';
const prefix = `ferry-test-shutdown-${process.pid}`;

let keepAlive: NodeJS.Timeout | undefined;

after(async () => {
  clearInterval(keepAlive);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await deleteByPrefix(redis, prefix);
  redis.disconnect();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function start(env: Record<string, string>) {
  const child = spawnFerry('all', env, { logs: true });
  children.push(child);
  let output = '';
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (b: Buffer) => (output += b.toString()));
  const exit = new Promise<{ code: number | null; at: number }>((r) => child.once('exit', (code) => r({ code, at: Date.now() })));
  return { child, output: () => output, exit };
}

test(
  'SIGINT with completions running: progress, a second SIGINT stops at once (non-zero), the work runs after a restart',
  { timeout: 90_000 },
  async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-shutdown-'));
    // The harness unrefs its children: this keeps the test alive while it waits for one to exit.
    keepAlive = setInterval(() => {}, 1000);
    const port = await freePort();
    const env = {
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      FERRY_REDIS_PREFIX: prefix,
      FERRY_DATA_DIR: path.join(tmp, 'data'),
      FERRY_API_KEYS: 'sk-shutdown:t',
      PORT: String(port),
      HOST: '127.0.0.1',
      FERRY_METRICS_PORT: '0',
      // A dropped job's lock runs out soon after, so the restarted process takes it again quickly.
      FERRY_JOB_LOCK_MS: '2000',
    };
    const client = new OpenAI({ apiKey: 'sk-shutdown', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
    const ready = () => eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok, 60_000, 'ready');

    // The model takes 20 s: the completions are still running when the signals come.
    const first = start({ ...env, FERRY_EMULATOR_LATENCY_MS: '20000' });
    await ready();
    const ids = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const job = await client.chat.completions.create(
          { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `slow ${i}` }] },
          { headers: { prefer: 'respond-async' } },
        );
        return job.id;
      }),
    );
    const status = async (id: string) => ((await client.get(`/jobs/${id}`)) as { status: string }).status;
    await eventually(async () => (await Promise.all(ids.map(status))).every((s) => s === 'running'), 20_000, 'all three running');

    first.child.kill('SIGINT');
    await eventually(async () => /waiting for 3 completions/.test(first.output()), 10_000, 'what the shutdown waits for');
    await eventually(async () => /still waiting for 3 completions; Ctrl-C again stops now/.test(first.output()), 10_000, 'progress');
    const second = Date.now();
    first.child.kill('SIGINT');
    const ended = await first.exit;
    assert.ok(ended.at - second < 2_000, `ended ${ended.at - second} ms after the second SIGINT`);
    assert.equal(ended.code, 130);
    assert.match(first.output(), /stopping now: 3 completions go back to the queue/);
    assert.deepEqual(await Promise.all(ids.map(status)).catch(() => null), null, 'nothing answers while stopped');

    const restarted = start(env);
    await ready();
    await eventually(async () => (await Promise.all(ids.map(status))).every((s) => s === 'succeeded'), 30_000, 'the dropped work done');
    assert.equal(restarted.child.exitCode, null, 'the restarted process runs');
    restarted.child.kill('SIGTERM');
    assert.equal((await restarted.exit).code, 0, 'a shutdown with nothing running exits 0');
  },
);
