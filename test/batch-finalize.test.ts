/** A batch whose results cannot be written, after every retry, fails with a clear error instead of staying `finalizing`. */
import assert from 'node:assert/strict';
import { rename, rm, writeFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import type { Job } from 'bullmq';
import { toFile } from 'openai';
import { onBatchJobFailedForGood, type BatchJobData } from '../src/worker/batch.js';
import { LinesStillOpen } from '../src/worker/batch-output.js';
import { eventually, startFerry, type Ferry } from './harness.js';

let ferry: Ferry;

before(async () => {
  ferry = await startFerry({ env: { FERRY_UPSTREAM_ATTEMPTS: '2' } });
});
after(async () => {
  await ferry.close();
});

test('finalize failing for good fails the batch with finalize_failed', async () => {
  const client = ferry.client();
  const line = (i: number) =>
    JSON.stringify({
      custom_id: `c${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gemini-2.0-flash', messages: [{ role: 'user', content: `line ${i}` }] },
    });
  const input = await client.files.create({
    file: await toFile(Buffer.from(`${[1, 2, 3].map(line).join('\n')}\n`), 'in.jsonl'),
    purpose: 'batch',
  });
  // Slow lines: the staging store breaks after validation has read the input, before the results are written.
  ferry.emulator.setFaults([{ route: 'generate', kind: 'latency', latencyMs: 1500, count: 3 }]);
  const batch = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  await eventually(async () => (await client.batches.retrieve(batch.id)).status === 'in_progress', 20_000, 'batch in progress');

  const dir = ferry.config.stagingDir;
  await rename(dir, `${dir}.aside`);
  await writeFile(dir, 'not a directory');
  try {
    const failed = await eventually(
      async () => {
        const b = await client.batches.retrieve(batch.id);
        return b.status === 'failed' ? b : null;
      },
      30_000,
      'batch failed',
    );
    assert.equal(failed.errors?.data?.[0]?.code, 'finalize_failed');
    assert.match(failed.errors?.data?.[0]?.message ?? '', /results could not be written/);
    assert.equal(typeof failed.failed_at, 'number');
  } finally {
    await rm(dir, { force: true });
    await rename(`${dir}.aside`, dir);
  }
});

test("a batch not in the failing job's hands, or still running lines, is left to its other endings", async () => {
  const client = ferry.client();
  const line = JSON.stringify({
    custom_id: 'only',
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gemini-2.0-flash', messages: [{ role: 'user', content: 'slow' }] },
  });
  const input = await client.files.create({ file: await toFile(Buffer.from(`${line}\n`), 'in.jsonl'), purpose: 'batch' });
  ferry.emulator.setFaults([{ route: 'generate', kind: 'latency', latencyMs: 1500, count: 1 }]);
  const batch = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  await eventually(async () => (await client.batches.retrieve(batch.id)).status === 'in_progress', 20_000, 'batch in progress');
  const as = (name: string) => ({ name, data: { batchId: batch.id } }) as unknown as Job<BatchJobData>;
  // Finalize gave up on open lines: the window's end will close them and write the rest.
  await onBatchJobFailedForGood(ferry.services, as('finalize'), new LinesStillOpen('a line is still running'));
  // Finalize (or cancel) failing while the batch is in progress: not theirs to end.
  await onBatchJobFailedForGood(ferry.services, as('finalize'), new Error('disk full'));
  await onBatchJobFailedForGood(ferry.services, as('cancel'), new Error('disk full'));
  assert.equal((await client.batches.retrieve(batch.id)).status, 'in_progress');
  const done = await eventually(
    async () => {
      const b = await client.batches.retrieve(batch.id);
      return b.status === 'completed' ? b : null;
    },
    30_000,
    'batch completed',
  );
  assert.equal(done.request_counts?.completed, 1);
});
