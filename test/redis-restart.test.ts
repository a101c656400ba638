/**
 * Redis stops and comes back while clients keep sending work to a real `ferry all` process.
 * While it is down, requests answer 503 service_unavailable within 5 s and the process stays up;
 * afterwards every job that was accepted, before, during or after, succeeds (the append-only file
 * keeps the queues and records).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, freePort, spawnFerry } from './harness.js';
import { startRedisServer, stopRedisServer } from './redis-server.js';

const KEY = 'sk-restart';

let tmp: string;
let redisPort: number;
let redis: ChildProcess;
let ferry: ChildProcess;
let base: string;
let stderr = '';

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-restart-'));
  redisPort = await freePort();
  redis = await startRedisServer(redisPort, tmp);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  ferry = spawnFerry('all', {
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    FERRY_REDIS_PREFIX: `ferry-restart-${randomBytes(4).toString('hex')}`,
    FERRY_API_KEYS: `${KEY}:restart`,
    FERRY_DATA_DIR: path.join(tmp, 'data'),
    FERRY_STAGING_DIR: path.join(tmp, 'staging'),
    FERRY_LOG_LEVEL: 'info',
    FERRY_JOB_LOCK_MS: '3000',
    FERRY_RETRY_BASE_MS: '50',
    FERRY_RETRY_MAX_MS: '1000',
    FERRY_METRICS_PORT: '0',
    HOST: '127.0.0.1',
    PORT: String(port),
  });
  ferry.stderr!.on('data', (d) => (stderr += d));
  await eventually(
    () =>
      fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      ),
    60_000,
    'ferry to be ready',
  );
});

after(async () => {
  if (ferry.exitCode === null) {
    ferry.kill('SIGKILL');
    await new Promise((r) => ferry.once('exit', r));
  }
  await stopRedisServer(redis);
  await rm(tmp, { recursive: true, force: true });
});

test('a Redis restart under load: 503 within 5 s while it is down, every accepted job succeeds, the process stays up', async () => {
  const accepted: string[] = [];
  const refusals: Array<{ status: number; code: string; ms: number; retryAfter: string | null }> = [];
  const others: string[] = [];
  let sending = true;
  const sender = async (n: number) => {
    for (let i = 0; sending; i++) {
      const started = Date.now();
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', prefer: 'respond-async' },
        body: JSON.stringify({ model: 'gemini-2.0-flash', messages: [{ role: 'user', content: `sender ${n} request ${i}` }] }),
      });
      const body = await res.json();
      if (res.status === 202) accepted.push(body.id);
      else if (res.status === 503) {
        refusals.push({ status: res.status, code: body.error?.code, ms: Date.now() - started, retryAfter: res.headers.get('retry-after') });
        await new Promise((r) => setTimeout(r, 100));
      } else others.push(`${res.status} ${JSON.stringify(body)}`);
    }
  };
  const senders = [0, 1, 2, 3].map(sender);

  await eventually(async () => accepted.length >= 50, 20_000, 'jobs accepted before the outage');
  const before = accepted.length;
  await stopRedisServer(redis);
  const down = Date.now();
  await new Promise((r) => setTimeout(r, 3000));
  await eventually(async () => refusals.length >= 8, 30_000, 'requests refused while Redis is down');
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 503);
  redis = await startRedisServer(redisPort, tmp);
  const downFor = Date.now() - down;
  await eventually(async () => accepted.length >= before + 50, 30_000, 'jobs accepted after the restart');
  sending = false;
  await Promise.all(senders);

  assert.deepEqual(others, [], 'every answer was 202 or 503');
  for (const r of refusals) {
    assert.equal(r.code, 'service_unavailable');
    assert.ok(r.ms < 5000, `a refusal took ${r.ms} ms`);
    assert.equal(r.retryAfter, '2');
  }
  assert.ok(downFor >= 3000, 'Redis was down for a while');

  // Every accepted job, whatever side of the outage, ends succeeded.
  const statuses = new Map<string, string>();
  await eventually(
    async () => {
      for (const id of accepted) {
        if (statuses.get(id) === 'succeeded') continue;
        const res = await fetch(`${base}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${KEY}` } });
        statuses.set(id, res.status === 200 ? (await res.json()).status : `http ${res.status}`);
      }
      return [...statuses.values()].every((s) => s === 'succeeded');
    },
    60_000,
    'every accepted job to succeed',
  ).catch((err) => {
    const counts: Record<string, number> = {};
    for (const s of statuses.values()) counts[s] = (counts[s] ?? 0) + 1;
    throw new Error(`${(err as Error).message}: ${JSON.stringify(counts)}`);
  });
  assert.equal(statuses.size, accepted.length);

  assert.equal(ferry.exitCode, null, `the process is still running:\n${stderr}`);
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  assert.doesNotMatch(stderr, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace on stderr');
});
