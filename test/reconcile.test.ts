/**
 * Work whose enqueue was lost (the API died between writing a record and queuing
 * its job) is queued again by maintenance, once, and runs (core/enqueue.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { toFile } from 'openai';
import { pendingKey, PENDING_FORGET_MS, reconcilePending } from '../src/core/enqueue.js';
import { eachQueue } from '../src/core/services.js';
import { startWorkers, type WorkerRuntime } from '../src/worker/runtime.js';
import { eventually, startFerry, type Ferry } from './harness.js';

let ferry: Ferry;
let workers: WorkerRuntime | null = null;

before(async () => {
  ferry = await startFerry({ workers: false });
});
after(async () => {
  await workers?.close();
  await ferry.close();
});

test('a file, a job and a batch whose jobs were lost are queued again and finish', async () => {
  const client = ferry.client();
  const { services } = ferry;
  const file = await client.files.create({
    file: await toFile(Buffer.from('a document that must reach the model'), 'doc.txt'),
    purpose: 'user_data',
  });
  const job = await ferry.fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({ model: 'gemini-2.0-flash', messages: [{ role: 'user', content: 'lost and found' }] }),
  });
  assert.equal(job.status, 202);
  const jobId = ((await job.json()) as { id: string }).id;
  const input = await client.files.create({
    file: await toFile(
      Buffer.from(
        `${JSON.stringify({ custom_id: 'c1', method: 'POST', url: '/v1/chat/completions', body: { model: 'gemini-2.0-flash', messages: [{ role: 'user', content: 'batch line' }] } })}\n`,
      ),
      'in.jsonl',
    ),
    purpose: 'batch',
  });
  const batch = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });

  // Each accepted request queued its work and left the pending set.
  assert.equal(await services.redis.zcard(pendingKey(services)), 0);

  // The crash: the queued work is gone, and the ids are pending since a minute ago.
  await Promise.all(eachQueue(services.queues).map(({ handle }) => handle.obliterate({ force: true })));
  const minuteAgo = Date.now() - 60_000;
  await services.redis.zadd(pendingKey(services), minuteAgo, file.id, minuteAgo, jobId, minuteAgo, batch.id);
  // Pending within the grace period: left alone (its enqueue may still be under way).
  await services.redis.zadd(pendingKey(services), Date.now(), 'job-0000000000000000000000000');

  assert.deepEqual(await reconcilePending(services), { requeued: 3, cleared: 0 });
  assert.deepEqual(await services.redis.zrange(pendingKey(services), 0, -1), ['job-0000000000000000000000000']);
  // An id without a record is kept a while (its record may still be on its way), then forgotten, not queued.
  assert.deepEqual(await reconcilePending(services, Date.now() + 60_000), { requeued: 0, cleared: 0 });
  assert.equal(await services.redis.zcard(pendingKey(services)), 1);
  assert.deepEqual(await reconcilePending(services, Date.now() + PENDING_FORGET_MS + 1), { requeued: 0, cleared: 1 });
  assert.equal(await services.redis.zcard(pendingKey(services)), 0);

  workers = await startWorkers(services, { apiKey: ferry.config.gemini.apiKey!, baseUrl: ferry.config.gemini.baseUrl });
  await eventually(async () => (await client.files.retrieve(file.id)).status === 'processed', 30_000, 'file processed');
  const done = await eventually(
    async () => {
      const r = await ferry.fetch(`/v1/jobs/${jobId}?wait=5`);
      const j = (await r.json()) as { status: string; result?: { choices: Array<{ message: { content: string } }> } };
      return j.status === 'succeeded' ? j : null;
    },
    30_000,
    'job succeeded',
  );
  assert.match(done.result!.choices[0].message.content, /lost and found/);
  const finished = await eventually(
    async () => {
      const b = await client.batches.retrieve(batch.id);
      return b.status === 'completed' ? b : null;
    },
    40_000,
    'batch completed',
  );
  assert.equal(finished.request_counts?.completed, 1);
  // Queued again, the work ran once.
  assert.equal(
    (await Promise.all(services.queues.generate.all.map((q) => q.getCompletedCount()))).reduce((a, b) => a + b),
    2,
  );
});

test('work whose enqueue was lost is queued as soon as a worker process starts', { timeout: 60_000 }, async () => {
  await workers?.close();
  workers = null;
  const { services } = ferry;
  const res = await ferry.fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({ model: 'gemini-2.0-flash', messages: [{ role: 'user', content: 'found at start-up' }] }),
  });
  const jobId = ((await res.json()) as { id: string }).id;
  // The API died between the record and the queue: no job, the id pending since a minute ago.
  await Promise.all(eachQueue(services.queues).map(({ handle }) => handle.obliterate({ force: true })));
  await services.redis.zadd(pendingKey(services), Date.now() - 60_000, jobId);

  const started = Date.now();
  workers = await startWorkers(services, { apiKey: ferry.config.gemini.apiKey!, baseUrl: ferry.config.gemini.baseUrl });
  await eventually(async () => (await services.jobs.get(jobId))?.status === 'succeeded', 20_000, 'the job to run');
  assert.ok(Date.now() - started < 10_000, `queued and run within ${Date.now() - started} ms of the worker's start`);
  assert.equal(await services.redis.zcard(pendingKey(services)), 0);
});
