import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { KEYS, eventually, spawnFerry, startFerry, type Ferry } from './harness.js';
import { createBatch, idsOf, MODEL, request, requests, results, waitFinal, type Line } from './batch-helpers.js';

type GeminiBatched = Batch & { execution: string; gemini_batches?: Array<{ model: string; name: string | null; state: string }> };

const generateCalls = (ferry: Ferry) => (ferry.emulator.stats().requests.generate ?? 0) + (ferry.emulator.stats().requests.stream ?? 0);

/** The emulator's batches, as Gemini lists them. */
async function geminiBatches(ferry: Ferry): Promise<Array<{ name: string; metadata: { state: string; displayName: string } }>> {
  const res = await fetch(`${ferry.emulator.url}/v1beta/batches?pageSize=100`, { headers: { 'x-goog-api-key': 'emulator-key' } });
  return ((await res.json()) as { operations?: [] }).operations ?? [];
}

const retrieve = async (client: OpenAI, id: string) => (await client.batches.retrieve(id)) as GeminiBatched;

/** Waits until the batch's Gemini batch exists, and answers its name. */
const submitted = (client: OpenAI, id: string) =>
  eventually(async () => (await retrieve(client, id)).gemini_batches?.[0]?.name, 30_000, 'the Gemini batch to be created');

async function uploadDocument(client: OpenAI, text: string): Promise<string> {
  const f = await client.files.create({ file: await toFile(Buffer.from(text), 'doc.txt'), purpose: 'user_data' });
  await eventually(async () => (await client.files.retrieve(f.id)).status === 'processed', 20_000, 'the document to be processed');
  return f.id;
}

/** A batch line asking `text` about the file `fileId`. */
const lineAbout = (id: string, text: string, fileId: string): Line => ({
  ...request(id),
  body: {
    model: MODEL,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text },
          { type: 'file', file: { file_id: fileId } },
        ],
      },
    ],
  },
});

describe('batches on Gemini Batch Mode', () => {
  let ferry: Ferry;
  let client: OpenAI;

  before(async () => {
    ferry = await startFerry({
      env: { FERRY_BATCH_MAX_LINES: '2000', FERRY_BATCH_MAX_BYTES: String(2 * 1024 * 1024) },
      emulator: { batches: { pendingMs: 200, runningMs: 500 } },
    });
    client = ferry.client();
  });
  after(() => ferry.close());

  test('1,000 lines: the same files as direct, every custom_id once, no generateContent call', { timeout: 120_000 }, async () => {
    const docId = await uploadDocument(client, 'the contents of a document');
    const withFile = (id: string) => lineAbout(id, `about ${id}`, docId);
    const input = requests(1000, 'g').map((l, i) => (i % 100 === 7 ? withFile(String(l.custom_id)) : l));
    ferry.emulator.setBatchSetting({ failKeys: ['g-13'] });
    const callsBefore = generateCalls(ferry);
    const created = (await createBatch(client, input, '24h', undefined, 'gemini_batch')) as GeminiBatched;
    assert.equal(created.execution, 'gemini_batch');
    const b = (await waitFinal(client, created.id, 100)) as GeminiBatched;
    assert.equal(b.status, 'completed');
    const { out, err } = await results(client, b, idsOf(input));
    assert.equal(out.length, 999);
    assert.deepEqual(
      err.map((l) => l.custom_id),
      ['g-13'],
    );
    // As a direct line that Gemini answers 400.
    assert.equal(err[0].error.code, 'upstream_400');
    assert.match(err[0].error.message, /Gemini answered 400/);
    assert.match(out[0].id, /^batch_req_/);
    assert.match(out[0].response.request_id, /^job-/);
    assert.match(out[0].response.body.choices[0].message.content, /text=question g-0$/);
    assert.ok(
      out.some((l) => l.custom_id === 'g-7' && /file/.test(JSON.stringify(l.response.body))),
      'a line with a file is answered',
    );
    assert.equal(generateCalls(ferry), callsBefore, 'no line was a live generateContent call');
    assert.equal(ferry.emulator.stats().batches.created, 1);
    assert.equal(b.gemini_batches?.length, 1);
    assert.match(String(b.gemini_batches?.[0].name), /^batches\//);
    assert.equal(
      (b as any).usage.total_tokens,
      out.reduce((s, l) => s + l.response.body.usage.total_tokens, 0),
    );
    // The Gemini batch and its files go once Ferry's files are written.
    await eventually(async () => (await geminiBatches(ferry)).length === 0, 10_000, 'the Gemini batch to be deleted');
  });

  test('a direct batch of the same lines writes lines of the same shape', { timeout: 60_000 }, async () => {
    ferry.emulator.setBatchSetting({ failKeys: [] });
    const input = requests(5, 's');
    const direct = await waitFinal(client, (await createBatch(client, input, '24h', undefined, 'direct')).id);
    const gemini = await waitFinal(client, (await createBatch(client, input, '24h', undefined, 'gemini_batch')).id);
    const shape = (l: any) => JSON.stringify(l, (_k, v) => (v === null || typeof v !== 'object' ? typeof v : v));
    const a = (await results(client, direct, idsOf(input))).out;
    const b = (await results(client, gemini, idsOf(input))).out;
    assert.deepEqual(b.map(shape), a.map(shape));
    assert.equal((direct as GeminiBatched).execution, 'direct');
  });

  test('cancel: the Gemini batch is cancelled and every line is batch_cancelled', { timeout: 60_000 }, async () => {
    ferry.emulator.setBatchSetting({ pendingMs: 60_000 });
    try {
      const input = requests(20, 'c');
      const created = await createBatch(client, input, '24h', undefined, 'gemini_batch');
      const name = await submitted(client, created.id);
      await client.batches.cancel(created.id);
      const b = await waitFinal(client, created.id);
      assert.equal(b.status, 'cancelled');
      assert.equal((b as GeminiBatched).gemini_batches?.[0].state, 'CANCELLED');
      const { err } = await results(client, b, idsOf(input));
      assert.ok(err.every((l) => l.error.code === 'batch_cancelled'));
      const seen = ferry.emulator.stats().requests['batches.cancel'] ?? 0;
      assert.ok(seen >= 1, `Gemini was asked to cancel ${name}`);
    } finally {
      ferry.emulator.setBatchSetting({ pendingMs: 200 });
    }
  });

  test('the completion window passing: unanswered lines are batch_expired, the batch expired', { timeout: 60_000 }, async () => {
    ferry.emulator.setBatchSetting({ pendingMs: 60_000 });
    try {
      const input = requests(10, 'w');
      const created = await createBatch(client, input, '3s', undefined, 'gemini_batch');
      await submitted(client, created.id);
      const b = await waitFinal(client, created.id);
      assert.equal(b.status, 'expired');
      const { err } = await results(client, b, idsOf(input));
      assert.equal(err.length, 10);
      assert.ok(err.every((l) => l.error.code === 'batch_expired'));
    } finally {
      ferry.emulator.setBatchSetting({ pendingMs: 200 });
    }
  });

  test("Gemini's batch expiring (48 h) makes its lines batch_expired", { timeout: 60_000 }, async () => {
    ferry.emulator.setBatchSetting({ pendingMs: 60_000 });
    try {
      const input = requests(10, 'x');
      const created = await createBatch(client, input, '24h', undefined, 'gemini_batch');
      await ferry.emulator.expireBatch(await submitted(client, created.id));
      const b = await waitFinal(client, created.id, 90);
      assert.equal(b.status, 'completed');
      const { err } = await results(client, b, idsOf(input));
      assert.ok(err.length === 10 && err.every((l) => l.error.code === 'batch_expired'));
    } finally {
      ferry.emulator.setBatchSetting({ pendingMs: 200 });
    }
  });

  test('a line whose file is still on its way to Gemini waits for it, and the batch completes', { timeout: 60_000 }, async () => {
    ferry.emulator.setBatchSetting({ failKeys: [] });
    ferry.emulator.setFaults([{ route: 'upload.start', kind: 'latency', latencyMs: 1500, count: 1 }]);
    const f = await client.files.create({ file: await toFile(Buffer.from('a late document'), 'late.txt'), purpose: 'user_data' });
    assert.equal(f.status, 'uploaded');
    const input: Line[] = [
      {
        ...request('late-0'),
        body: { model: MODEL, messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: f.id } }] }] },
      },
      request('late-1'),
    ];
    const b = await waitFinal(client, (await createBatch(client, input, '24h', undefined, 'gemini_batch')).id);
    assert.equal(b.status, 'completed');
    const { out } = await results(client, b, idsOf(input));
    assert.deepEqual(out.map((l) => l.custom_id).sort(), ['late-0', 'late-1']);
    assert.equal((await client.files.retrieve(f.id)).status, 'processed');
  });

  test('another tenant gets 404; a malformed execution is a 400 naming it', async () => {
    const created = await createBatch(client, requests(1, 't'), '24h', undefined, 'gemini_batch');
    await assert.rejects(ferry.client(KEYS.b).batches.retrieve(created.id), { status: 404 });
    for (const execution of ['fast', 1, '']) {
      const res = await ferry.fetch('/v1/batches', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          input_file_id: created.input_file_id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          execution,
        }),
      });
      assert.equal(res.status, 400);
      const body = await res.json();
      assert.equal(body.error.param, 'execution');
      assert.match(body.error.message, /gemini_batch/);
    }
    await waitFinal(client, created.id);
  });
});

describe('Gemini Batch Mode with workers killed', () => {
  let ferry: Ferry;
  let client: OpenAI;

  before(async () => {
    ferry = await startFerry({ workers: false, emulator: { batches: { pendingMs: 200, runningMs: 3000 } } });
    client = ferry.client();
  });
  after(() => ferry.close());

  const stop = async (w: ReturnType<typeof spawnFerry>, signal: NodeJS.Signals) => {
    w.kill(signal);
    if (w.exitCode === null) await new Promise((r) => w.once('exit', r));
  };

  /** Runs a batch, killing its worker at `killWhen`; a second worker finishes it. */
  async function survives(killWhen: (batchId: string) => Promise<unknown>) {
    const createdBefore = ferry.emulator.stats().batches.created;
    const first = spawnFerry('worker', ferry.env);
    const input = requests(200, `k${createdBefore}`);
    const created = await createBatch(client, input, '24h', undefined, 'gemini_batch');
    await killWhen(created.id);
    await stop(first, 'SIGKILL');
    const second = spawnFerry('worker', ferry.env);
    try {
      const b = await waitFinal(client, created.id, 90);
      assert.equal(b.status, 'completed');
      const { out } = await results(client, b, idsOf(input));
      assert.equal(out.length, 200);
      assert.equal(ferry.emulator.stats().batches.created, createdBefore + 1, 'exactly one Gemini batch');
    } finally {
      await stop(second, 'SIGTERM');
    }
  }

  test('killed while its Gemini batch runs: the next worker asks after the same one', { timeout: 120_000 }, async () => {
    // Recorded, and being asked after: Gemini's batch runs for 3 s.
    await survives((id) => submitted(client, id));
  });

  test('killed between creating the Gemini batch and recording it: the next worker finds it', { timeout: 120_000 }, async () => {
    // Gemini makes the batch, and the answer takes 5 s: the worker dies before it can record it.
    ferry.emulator.setFaults([{ route: 'batches.create', kind: 'latency', latencyMs: 5000, afterHandler: true, count: 1 }]);
    const before = ferry.emulator.stats().batches.created;
    await survives(() => eventually(async () => ferry.emulator.stats().batches.created === before + 1, 30_000, 'a Gemini batch'));
    await eventually(async () => (await geminiBatches(ferry)).length === 0, 10_000, 'the Gemini batch deleted once the files are written');
  });
});

describe('Gemini Batch Mode at odd moments', () => {
  let ferry: Ferry;
  let client: OpenAI;

  before(async () => {
    ferry = await startFerry({
      // Two tries per call, and two failing polls in a row give up: outages fit in a test.
      env: { FERRY_UPSTREAM_ATTEMPTS: '2' },
      emulator: { batches: { pendingMs: 200, runningMs: 500 } },
    });
    client = ferry.client();
  });
  after(() => ferry.close());

  const calls = (route: string) => ferry.emulator.stats().requests[route] ?? 0;
  /** What Gemini still holds of a Ferry batch: its Gemini batches and input files, by display name. */
  async function leftOnGemini(batchId: string): Promise<string[]> {
    const files = await fetch(`${ferry.emulator.url}/v1beta/files?pageSize=100`, { headers: { 'x-goog-api-key': 'emulator-key' } });
    const inputs = (((await files.json()) as { files?: Array<{ name: string; displayName?: string }> }).files ?? []).filter((f) =>
      f.displayName?.startsWith(`ferry-${batchId}`),
    );
    const batches = (await geminiBatches(ferry)).filter((op) => op.metadata.displayName.startsWith(`ferry-${batchId}`));
    return [...inputs.map((f) => `${f.name} (input)`), ...batches.map((op) => `${op.name} ${op.metadata.state}`)];
  }
  async function withSettings(faults: Parameters<Ferry['emulator']['setFaults']>[0], pendingMs: number, fn: () => Promise<void>) {
    ferry.emulator.setFaults(faults);
    ferry.emulator.setBatchSetting({ pendingMs });
    try {
      await fn();
    } finally {
      ferry.emulator.setFaults([]);
      ferry.emulator.setBatchSetting({ pendingMs: 200 });
    }
  }
  async function cancelledWhile(route: 'batches.create' | 'upload.chunk', prefix: string) {
    const before = calls(route);
    const input = requests(5, prefix);
    const created = await createBatch(client, input, '24h', undefined, 'gemini_batch');
    await eventually(async () => calls(route) > before, 30_000, `${route} under way`);
    await client.batches.cancel(created.id);
    const b = await waitFinal(client, created.id);
    assert.equal(b.status, 'cancelled');
    assert.ok((await results(client, b, idsOf(input))).err.every((l) => l.error.code === 'batch_cancelled'));
    return created.id;
  }

  test('cancelled while Gemini creates its batch (the answer late): that Gemini batch is stopped and deleted', { timeout: 60_000 }, () =>
    withSettings([{ route: 'batches.create', kind: 'latency', latencyMs: 3000, afterHandler: true, count: 1 }], 60_000, async () => {
      const id = await cancelledWhile('batches.create', 'late-create');
      await eventually(async () => (await leftOnGemini(id)).length === 0, 15_000, 'nothing of the batch left on Gemini');
    }),
  );

  test('cancelled while its input goes up: no Gemini batch is made, the input file goes', { timeout: 60_000 }, () =>
    withSettings([{ route: 'upload.chunk', kind: 'latency', latencyMs: 2500, count: 1 }], 60_000, async () => {
      const created = ferry.emulator.stats().batches.created;
      const id = await cancelledWhile('upload.chunk', 'late-input');
      // The upload's answer comes after the cancel; then the job looks again.
      await eventually(
        async () => (await ferry.services.batches.get(id))?.gemini_batches?.every((g) => g.collected) === true,
        15_000,
        'the gemini job to have looked again',
      );
      assert.deepEqual(await leftOnGemini(id), []);
      assert.equal(ferry.emulator.stats().batches.created, created);
    }),
  );

  test("a 429 on create waits Gemini's Retry-After before asking again", { timeout: 60_000 }, () =>
    withSettings([{ route: 'batches.create', kind: '429', retryAfterSeconds: 4, count: 1 }], 200, async () => {
      const before = calls('batches.create');
      const input = requests(3, 'retry-after');
      const created = await createBatch(client, input, '24h', undefined, 'gemini_batch');
      await eventually(async () => calls('batches.create') > before, 30_000, 'the first create');
      const refusedAt = Date.now();
      await eventually(async () => calls('batches.create') > before + 1, 30_000, 'the second create');
      assert.ok(Date.now() - refusedAt >= 3500, `asked again after ${Date.now() - refusedAt} ms, not after Retry-After's 4 s`);
      assert.equal((await waitFinal(client, created.id)).status, 'completed');
    }),
  );

  test('short Gemini outages while it waits, more of them than attempts, do not fail the lines', { timeout: 90_000 }, () =>
    // Gemini's batch stays pending for 20 s: both outages come while Ferry asks after it.
    withSettings([], 20_000, async () => {
      const input = requests(5, 'outages');
      const created = await createBatch(client, input, '24h', undefined, 'gemini_batch');
      await submitted(client, created.id);
      for (let outage = 0; outage < 2; outage++) {
        // One poll fails both its tries (500, 500); the next one gets through.
        const gets = calls('batches.get');
        ferry.emulator.setFaults([{ route: 'batches.get', kind: '500', count: 2 }]);
        await eventually(async () => calls('batches.get') >= gets + 3, 30_000, `outage ${outage + 1} and a poll after it`);
      }
      const b = await waitFinal(client, created.id, 60);
      assert.equal(b.status, 'completed');
      const { out, err } = await results(client, b, idsOf(input));
      assert.equal(out.length, 5, `answered by Gemini, but: ${JSON.stringify(err.map((l) => l.error))}`);
    }),
  );

  test('Gemini failing poll after poll fails the lines, and Gemini is asked to stop that batch', { timeout: 90_000 }, () =>
    withSettings([], 60_000, async () => {
      const input = requests(5, 'gives-up');
      const created = await createBatch(client, input, '24h', undefined, 'gemini_batch');
      await submitted(client, created.id);
      const cancels = calls('batches.cancel');
      ferry.emulator.setFaults([{ route: 'batches.get', kind: '500' }]);
      const b = await waitFinal(client, created.id, 60);
      ferry.emulator.setFaults([]);
      assert.equal(b.status, 'completed');
      const { err } = await results(client, b, idsOf(input));
      assert.ok(err.length === 5 && err.every((l) => l.error.code === 'gemini_batch_failed'));
      assert.ok(calls('batches.cancel') > cancels, 'Gemini was asked to cancel the batch whose lines failed');
    }),
  );

  test('the window ending after Gemini answered but before Ferry asked again: the answers are kept', { timeout: 60_000 }, () =>
    // Gemini answers within a second; Ferry's first ask is told to come back in 10 s; the window is 3 s.
    withSettings([{ route: 'batches.get', kind: '429', retryAfterSeconds: 10, count: 1 }], 200, async () => {
      const input = requests(5, 'paid-for');
      const created = await createBatch(client, input, '3s', undefined, 'gemini_batch');
      const b = await waitFinal(client, created.id);
      assert.equal(b.status, 'expired');
      const { out, err } = await results(client, b, idsOf(input));
      assert.equal(out.length, 5, `answered by Gemini, but: ${JSON.stringify(err.map((l) => l.error.code))}`);
    }),
  );

  test("a file's Gemini copy renewed for a later batch stays for the batch still running on it", { timeout: 90_000 }, async () => {
    const f = await client.files.create({ file: await toFile(Buffer.from('a shared document'), 'shared.txt'), purpose: 'user_data' });
    await eventually(async () => (await client.files.retrieve(f.id)).status === 'processed', 20_000, 'the document processed');
    const about = (id: string) => lineAbout(id, id, f.id);
    ferry.emulator.setBatchSetting({ pendingMs: 6000 });
    const first = await createBatch(client, [about('first')], '24h', undefined, 'gemini_batch');
    await submitted(client, first.id);
    ferry.emulator.setBatchSetting({ pendingMs: 200 });
    const copy = (await ferry.services.files.get(f.id))!.gemini_name;
    // A day later the copy has two hours left: enough for the first batch, not for a new 24 h one.
    await ferry.services.files.update(f.id, { gemini_expires_at: Math.floor(Date.now() / 1000) + 7200 });
    const second = await waitFinal(client, (await createBatch(client, [about('second')], '24h', undefined, 'gemini_batch')).id);
    assert.equal(second.status, 'completed');
    assert.notEqual((await ferry.services.files.get(f.id))!.gemini_name, copy, 'a new copy for the second batch');
    const done = await waitFinal(client, first.id, 60);
    const { out, err } = await results(client, done, ['first']);
    assert.equal(out.length, 1, `the first batch's line: ${JSON.stringify(err.map((l) => l.error))}`);
  });
});
