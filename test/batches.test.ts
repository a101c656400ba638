import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import type { Job } from 'bullmq';
import { batchProcessor, type BatchJobData } from '../src/worker/batch.js';
import { KEYS, eventually, spawnFerry, startFerry, type Ferry } from './harness.js';
import { createBatch, idsOf, lines, MODEL, request, requests, results, waitFinal, type Line } from './batch-helpers.js';

/** Runs `fn` while every completion takes `ms` at the model. */
async function slowModel<T>(ferry: Ferry, ms: number, fn: () => Promise<T>): Promise<T> {
  ferry.emulator.setFaults([{ route: 'generate', kind: 'latency', latencyMs: ms }]);
  try {
    return await fn();
  } finally {
    ferry.emulator.setFaults([]);
  }
}

const linesDone = (client: OpenAI, id: string, n: number) =>
  eventually(async () => ((await client.batches.retrieve(id)).request_counts?.completed ?? 0) >= n, 40_000, `${n} lines done`);

/** Webhook events received, by type and batch id. */
class Events {
  got: Array<{ type: string; data: { id: string } }> = [];
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      this.got.push(JSON.parse(body));
      res.writeHead(200).end();
    });
  });
  async listen() {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }
  async close() {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
  async expect(type: string, id: string) {
    await eventually(async () => this.got.some((e) => e.type === type && e.data.id === id), 10_000, `${type} for ${id}`);
  }
}

describe('batches', () => {
  let ferry: Ferry;
  let client: OpenAI;
  const events = new Events();

  before(async () => {
    ferry = await startFerry({
      env: {
        FERRY_BATCH_MAX_LINES: '2000',
        FERRY_BATCH_MAX_BYTES: String(2 * 1024 * 1024),
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1',
        FERRY_WEBHOOK_RETRY_SCHEDULE: '0,0.2,0.2',
      },
    });
    client = ferry.client();
    const url = await events.listen();
    const res = await ferry.fetch('/v1/webhook_endpoints', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url, events: ['batch.completed', 'batch.failed', 'batch.expired', 'batch.cancelled'] }),
    });
    assert.equal(res.status, 201);
  });
  after(async () => {
    await ferry.close();
    await events.close();
  });

  test('a 1,000-line batch: every custom_id once, every answer its own', { timeout: 90_000 }, async (t) => {
    const ids = Array.from({ length: 1000 }, (_, i) => `doc-${i}`);
    const started = Date.now();
    const created = await createBatch(
      client,
      ids.map((id) => request(id, `summarise ${id} please`)),
      '24h',
      { run: 'big' },
    );
    assert.match(created.id, /^batch_/);
    assert.equal(created.object, 'batch');
    assert.equal(created.status, 'validating');
    assert.equal(created.endpoint, '/v1/chat/completions');
    assert.equal(created.completion_window, '24h');
    assert.equal(created.expires_at, created.created_at + 24 * 3600);
    assert.deepEqual(created.metadata, { run: 'big' });
    const b = await waitFinal(client, created.id, 80);
    const seconds = (Date.now() - started) / 1000;
    t.diagnostic(`1,000 lines in ${seconds.toFixed(1)} s (${Math.round(1000 / seconds)} lines/s)`);
    assert.equal(b.status, 'completed');
    assert.ok(b.in_progress_at && b.finalizing_at && b.completed_at);
    assert.equal(b.error_file_id, null);
    const { out } = await results(client, b, ids);
    for (const l of out) {
      assert.match(l.id, /^batch_req_/);
      assert.match(l.response.request_id, /^job-/);
      assert.match(l.response.body.choices[0].message.content, new RegExp(`text=summarise ${l.custom_id} please$`));
    }
    assert.deepEqual(
      out.map((l) => l.custom_id),
      ids,
      'output lines in input order',
    );
    assert.equal(
      (b as any).usage.total_tokens,
      out.reduce((s, l) => s + l.response.body.usage.total_tokens, 0),
    );
    const file = await client.files.retrieve(b.output_file_id!);
    assert.equal(file.purpose, 'batch_output');
    // Lines are jobs too, and /v1/jobs shows them.
    const job = await (await ferry.fetch(`/v1/jobs/${out[5].response.request_id}`)).json();
    assert.equal(job.batch_id, b.id);
    assert.equal(job.custom_id, 'doc-5');
    assert.equal(job.status, 'succeeded');
    await events.expect('batch.completed', b.id);
  });

  test('malformed input: bad JSON on line 7, duplicate custom_id on line 12 → failed, both named, nothing runs', async () => {
    const before = ferry.emulator.stats().requests.generate;
    const input: Array<Line | string> = requests(15, 'm');
    input[6] = '{"custom_id": "m-6", "method": "POST", ';
    input[11] = request('m-2');
    const created = await createBatch(client, input);
    const b = await waitFinal(client, created.id, 20);
    assert.equal(b.status, 'failed');
    assert.ok(b.failed_at);
    const errs = b.errors!.data!;
    assert.deepEqual(
      errs.map((e) => [e.line, e.code]),
      [
        [7, 'invalid_json_line'],
        [12, 'duplicate_custom_id'],
      ],
    );
    assert.match(errs[1].message!, /line 3/);
    assert.equal(b.output_file_id, null);
    assert.equal(b.error_file_id, null);
    assert.equal(ferry.emulator.stats().requests.generate, before, 'no request reached the model');
    const listed = await (await ferry.fetch('/v1/jobs?limit=1000')).json();
    assert.equal(listed.data.filter((j: any) => j.batch_id === b.id).length, 0, 'no line became a job');
    await events.expect('batch.failed', b.id);
  });

  test('wrong method, wrong url, a body the mapper refuses, a missing file, too many lines: each named by line', async () => {
    const input: Line[] = [
      request('ok-1'),
      { ...request('bad-method'), method: 'GET' },
      { ...request('bad-url'), url: '/v1/embeddings' },
      { ...request('bad-model'), body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] } },
      { ...request('bad-param'), body: { model: MODEL, messages: [{ role: 'user', content: 'x' }], logit_bias: {} } },
      {
        ...request('no-file'),
        body: { model: MODEL, messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-nope' } }] }] },
      },
      { custom_id: 7, method: 'POST', url: '/v1/chat/completions', body: {} },
    ];
    const b = await waitFinal(client, (await createBatch(client, input)).id, 20);
    assert.equal(b.status, 'failed');
    assert.deepEqual(
      b.errors!.data!.map((e) => [e.line, e.code, e.param]),
      [
        [2, 'invalid_method', 'method'],
        [3, 'invalid_url', 'url'],
        [4, 'invalid_request', 'body.model'],
        [5, 'invalid_request', 'body.logit_bias'],
        [6, 'invalid_file', 'body.messages'],
        [7, 'missing_custom_id', 'custom_id'],
      ],
    );
    const many = await waitFinal(client, (await createBatch(client, requests(2001, 'n'))).id, 20);
    assert.equal(many.status, 'failed');
    assert.deepEqual(
      many.errors!.data!.map((e) => [e.line, e.code]),
      [[2001, 'too_many_requests']],
    );
  });

  test(
    '20% upstream 503/429: every line completes; a line the upstream refuses (400) goes to the error file',
    { timeout: 60_000 },
    async () => {
      const stats0 = ferry.emulator.stats();
      ferry.emulator.setFaults([
        { route: 'generate', kind: '400', count: 1 },
        { route: 'generate', kind: '429', probability: 0.1, retryAfterSeconds: 0 },
        { route: 'generate', kind: '503', probability: 0.1 },
      ]);
      try {
        const input = requests(150, 'f');
        const b = await waitFinal(client, (await createBatch(client, input)).id, 50);
        assert.equal(b.status, 'completed');
        const { out, err } = await results(client, b, idsOf(input));
        assert.equal(out.length, 149);
        assert.equal(err.length, 1);
        assert.equal(err[0].error.code, 'upstream_400');
        assert.match(err[0].error.message, /Gemini answered 400/);
        const stats = ferry.emulator.stats();
        const faults = stats.faultsInjected.generate - stats0.faultsInjected.generate;
        assert.ok(faults > 15, `faults were injected (${faults})`);
        // Each line reached the model successfully exactly once.
        assert.equal(stats.requests.generate - stats0.requests.generate - faults, 149);
      } finally {
        ferry.emulator.setFaults([]);
      }
    },
  );

  test(
    'cancel mid-way: cancelling → cancelled; finished lines kept in the output, the rest in the error file',
    { timeout: 60_000 },
    async () => {
      await slowModel(ferry, 100, async () => {
        const input = requests(300, 'c');
        const created = await createBatch(client, input);
        await linesDone(client, created.id, 30);
        const cancelling = await client.batches.cancel(created.id);
        assert.ok(['cancelling', 'cancelled'].includes(cancelling.status), cancelling.status);
        assert.ok(cancelling.cancelling_at);
        const again = await client.batches.cancel(created.id);
        assert.ok(['cancelling', 'cancelled'].includes(again.status));
        const b = await waitFinal(client, created.id, 30);
        assert.equal(b.status, 'cancelled');
        assert.ok(b.cancelled_at);
        const { out, err } = await results(client, b, idsOf(input));
        assert.ok(out.length >= 30 && out.length < 300, `${out.length} finished lines kept`);
        assert.ok(err.every((l) => l.error.code === 'batch_cancelled'));
        await events.expect('batch.cancelled', b.id);
        await assert.rejects(client.batches.cancel((await waitFinal(client, (await createBatch(client, requests(2, 'd'))).id)).id), {
          status: 409,
        });
      });
    },
  );

  test('completion window expiry: lines not done become batch_expired errors, status expired', { timeout: 60_000 }, async () => {
    await slowModel(ferry, 200, async () => {
      const input = requests(1000, 'e');
      // Long enough for some lines to be answered on a loaded machine, far too short for 1,000 (about 20 s).
      const created = await createBatch(client, input, '5s');
      assert.equal(created.expires_at, created.created_at + 5);
      const b = await waitFinal(client, created.id, 30);
      assert.equal(b.status, 'expired');
      assert.ok(b.expired_at);
      const { out, err } = await results(client, b, idsOf(input));
      assert.ok(out.length > 0 && err.length > 0, `${out.length} done, ${err.length} expired`);
      assert.ok(err.every((l) => l.error.code === 'batch_expired'));
      await events.expect('batch.expired', b.id);
    });
  });

  test('retrieve, list with pagination, tenants, and refused requests', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createBatch(client, requests(1, `p${i}`))).id);
    const page = await client.batches.list({ limit: 2 });
    assert.equal(page.data.length, 2);
    assert.equal(page.data[0].id, ids[2], 'newest first');
    assert.ok(page.has_more);
    const all: string[] = [];
    for await (const b of client.batches.list({ limit: 2 })) all.push(b.id);
    assert.ok(ids.every((id) => all.includes(id)));
    assert.equal(new Set(all).size, all.length);
    await assert.rejects(ferry.client(KEYS.b).batches.retrieve(ids[0]), { status: 404 });
    const input = await client.files.create({
      file: await toFile(Buffer.from(`${JSON.stringify(request('x'))}\n`), 'in.jsonl'),
      purpose: 'batch',
    });
    const doc = await client.files.create({ file: await toFile(Buffer.from('plain text'), 'a.txt'), purpose: 'user_data' });
    const bad = (body: Record<string, unknown>) =>
      client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h', ...body } as any);
    await assert.rejects(bad({ endpoint: '/v1/completions' }), { status: 400, param: 'endpoint' });
    await assert.rejects(bad({ completion_window: '48h' }), { status: 400, param: 'completion_window' });
    await assert.rejects(bad({ input_file_id: doc.id }), { status: 400, param: 'input_file_id' });
    await assert.rejects(bad({ input_file_id: 'file-none' }), { status: 404 });
    await assert.rejects(
      ferry.client(KEYS.b).batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
      { status: 404 },
    );
    await assert.rejects(client.files.create({ file: await toFile(Buffer.alloc(3 * 1024 * 1024, 'a'), 'big.jsonl'), purpose: 'batch' }), {
      status: 413,
    });
    for (const id of ids) assert.equal((await waitFinal(client, id)).status, 'completed');
  });

  test('a finalize run again (a crash before it ended) writes the same files under the same ids', async () => {
    const input = requests(30, 'z');
    input[4] = { ...request('z-4'), body: { model: MODEL, messages: [{ role: 'user', content: 'FINISH:SAFETY' }] } };
    ferry.emulator.setFaults([{ route: 'generate', kind: '400', count: 1 }]);
    const done = await waitFinal(client, (await createBatch(client, input)).id);
    ferry.emulator.setFaults([]);
    const before = { out: await lines(client, done.output_file_id), err: await lines(client, done.error_file_id) };
    assert.equal(before.err.length, 1);
    // As if the worker died after writing the files but before the batch ended.
    // Written straight to the record: no status change of the lifecycle leads back from completed.
    const { batches, redis } = ferry.services;
    await redis.hset(batches.key(done.id), { status: '"finalizing"', ending: '"completed"', completed_at: 'null' });
    const rerun = await batchProcessor(ferry.services)({ name: 'finalize', data: { batchId: done.id } } as Job<BatchJobData>);
    assert.ok(rerun && typeof rerun === 'object' && 'completed' in rerun);
    const again = await client.batches.retrieve(done.id);
    assert.equal(again.status, 'completed');
    assert.equal(again.output_file_id, done.output_file_id);
    assert.equal(again.error_file_id, done.error_file_id);
    assert.deepEqual(await lines(client, again.output_file_id), before.out);
    assert.deepEqual(await lines(client, again.error_file_id), before.err);
    await results(client, again, idsOf(input));
  });

  test('Idempotency-Key answers the same batch; a BOM and CRLF line ends are read as lines', async () => {
    const text = `\uFEFF${JSON.stringify(request('crlf-1'))}\r\n${JSON.stringify(request('crlf-2'))}\r\n`;
    const input = await client.files.create({ file: await toFile(Buffer.from(text), 'windows.jsonl'), purpose: 'batch' });
    const body = { input_file_id: input.id, endpoint: '/v1/chat/completions' as const, completion_window: '24h' as const };
    const first = await client.batches.create(body, { headers: { 'Idempotency-Key': 'nightly-1' } });
    const again = await client.batches.create(body, { headers: { 'Idempotency-Key': 'nightly-1' } });
    assert.equal(again.id, first.id);
    await assert.rejects(client.batches.create({ ...body, metadata: { x: 'y' } }, { headers: { 'Idempotency-Key': 'nightly-1' } }), {
      status: 422,
    });
    const b = await waitFinal(client, first.id);
    assert.equal(b.status, 'completed');
    await results(client, b, ['crlf-1', 'crlf-2']);
  });
});

describe('interactive requests while a batch runs', () => {
  let ferry: Ferry;
  before(async () => {
    // Few completion slots, so that scheduling shows: batch lines may take 2 of 4, and come after interactive jobs.
    // The model takes 150 ms, as a real one takes its time (what is measured is waiting, not CPU).
    ferry = await startFerry({
      env: { FERRY_GENERATE_CONCURRENCY: '4', FERRY_BATCH_WORKER_SLOTS: '2', FERRY_BATCH_CONCURRENCY: '8' },
      emulator: { faults: [{ route: 'generate', kind: 'latency', latencyMs: 150 }] },
    });
  });
  after(() => ferry.close());

  test('interactive latency while a batch runs stays within 2× its idle latency', { timeout: 60_000 }, async (t) => {
    const client = ferry.client();
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const measure = async (n: number) => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const c = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `interactive ${i}` }] });
        ms.push(performance.now() - t0);
        assert.match(c.choices[0].message.content ?? '', new RegExp(`interactive ${i}$`));
      }
      return median(ms);
    };
    await measure(2);
    const idle = await measure(7);
    const created = await createBatch(client, requests(300, 'l'));
    await linesDone(client, created.id, 4);
    const busy = await measure(7);
    const during = await client.batches.retrieve(created.id);
    t.diagnostic(
      `interactive median: idle ${idle.toFixed(0)} ms, during the batch ${busy.toFixed(0)} ms (batch ${during.status}, ${during.request_counts?.completed} lines done)`,
    );
    assert.equal(during.status, 'in_progress', 'measured while the batch ran');
    assert.ok(busy <= 2 * idle, `interactive median ${busy.toFixed(0)} ms is within 2× idle ${idle.toFixed(0)} ms`);
    await client.batches.cancel(created.id);
    const ended = await waitFinal(client, created.id, 30);
    assert.equal(ended.status, 'cancelled');
    await results(client, ended, idsOf(requests(300, 'l')));
  });
});

describe('batches and a worker killed with SIGKILL', () => {
  let ferry: Ferry;
  before(async () => {
    // API here; workers run as separate processes so one can be killed.
    ferry = await startFerry({ workers: false, env: { FERRY_JOB_LOCK_MS: '2000', FERRY_BATCH_CONCURRENCY: '16' } });
  });
  after(() => ferry.close());

  test('the batch completes on another worker; each custom_id exactly once, each with its own answer', { timeout: 90_000 }, async () => {
    const client = ferry.client();
    const first = spawnFerry('worker', ferry.env);
    const input = requests(400, 'k');
    await slowModel(ferry, 40, async () => {
      const created = await createBatch(client, input);
      await linesDone(client, created.id, 60);
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      const atKill = (await client.batches.retrieve(created.id)).request_counts!;
      assert.ok(atKill.completed < 400, 'killed mid-batch');
      const second = spawnFerry('worker', ferry.env);
      try {
        const b = await waitFinal(client, created.id, 60);
        assert.equal(b.status, 'completed');
        const { out } = await results(client, b, idsOf(input));
        assert.equal(out.length, 400);
        for (const l of out) assert.match(l.response.body.choices[0].message.content, new RegExp(`text=question ${l.custom_id}$`));
      } finally {
        second.kill('SIGTERM');
        await new Promise((r) => second.once('exit', r));
      }
    });
  });
});
