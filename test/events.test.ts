/** Change notifications: a long-poll wakes on the change it waits for, even one that lands while it reads. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { ChangeWaiter } from '../src/core/events.js';
import { createRedis } from '../src/core/redis.js';
import { Keys } from '../src/core/keys.js';
import { deleteByPrefix } from './redis-keys.js';
import { JobStore, type JobRecord } from '../src/core/records/jobs.js';

const target = { redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', redisClusterNodes: null };

const keys = new Keys(`ferry-test-${randomBytes(5).toString('hex')}`);
let pub: Redis;
let sub: Redis;
let waiter: ChangeWaiter;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(() => {
  pub = createRedis(target);
  sub = createRedis(target, 'subscriber');
  waiter = new ChangeWaiter(sub, keys);
});
after(async () => {
  await deleteByPrefix(pub, keys.prefix);
  sub.disconnect();
  await pub.quit();
});

test('a change published while done() is reading is not slept through', async () => {
  const channel = keys.channel('job:a');
  let published = 0;
  const done = await waiter.waitFor('job:a', 10_000, async () => {
    if (published) return true;
    const [, subscribers] = (await pub.pubsub('NUMSUB', channel)) as [string, number];
    if (subscribers === 0) return false;
    // Listening now: the record changes (and says so) after this read has seen it unfinished.
    await pub.publish(channel, '"succeeded"');
    published = Date.now();
    await sleep(100);
    return false;
  });
  assert.equal(done, true);
  // Slept through, it would wait for the 2 s re-check.
  assert.ok(Date.now() - published < 1000, `woke ${Date.now() - published} ms after the change`);
});

test('changes the caller rules out wake nothing; the one it waits for does', async () => {
  let reads = 0;
  const waiting = waiter.waitFor(
    'job:b',
    10_000,
    async () => ++reads > 1,
    undefined,
    (m) => m !== '"running"',
  );
  await sleep(100);
  await pub.publish(keys.channel('job:b'), '"running"');
  await sleep(100);
  assert.equal(reads, 1, 'a change to running is not read');
  await pub.publish(keys.channel('job:b'), '"succeeded"');
  assert.equal(await waiting, true);
  assert.equal(reads, 2);
});

test('waiters sharing a channel: one that ends at once leaves the other subscribed', async () => {
  const channel = keys.channel('job:c');
  let changedAt = 0;
  const slow = waiter.waitFor('job:c', 10_000, async () => changedAt > 0);
  // Joins while the first subscription may still be on its way, and is done at its first read.
  assert.equal(await waiter.waitFor('job:c', 10_000, async () => true), true);
  await sleep(100);
  changedAt = Date.now();
  await pub.publish(channel, '"succeeded"');
  assert.equal(await slow, true);
  assert.ok(Date.now() - changedAt < 1000, `woke ${Date.now() - changedAt} ms after the change`);
});

test('a record\'s change publishes its status after it; its removal publishes "1"', async () => {
  const jobs = new JobStore(pub, keys, 60);
  const id = `job-${randomBytes(8).toString('hex')}`;
  const listener = createRedis(target, 'subscriber');
  const messages: string[] = [];
  listener.on('message', (_c: string, m: string) => messages.push(m));
  await listener.subscribe(keys.channel(jobs.topic(id)));
  try {
    await jobs.create({ id, tenant: 't', status: 'queued', started_at: null } as unknown as JobRecord);
    assert.equal(await jobs.transition(id, { status: 'running', attempts: 1 }, { from: ['queued'], initial: { started_at: 1 } }), true);
    assert.equal(await jobs.transition(id, { status: 'failed' }, { from: ['queued'] }), false, 'not from running');
    const done = await jobs.transitionGet(id, { status: 'succeeded' }, { initial: { started_at: 2 } });
    assert.equal(done?.started_at, 1, 'a first start time is kept');
    await jobs.remove(id);
    await sleep(100);
    assert.deepEqual(messages, ['"running"', '"succeeded"', '1']);
  } finally {
    listener.disconnect();
  }
});
