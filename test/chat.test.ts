import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { KEYS, eventually, jobWaitingForSlowFile, startFerry, type Ferry } from './harness.js';

const MODEL = 'gemini-2.0-flash';

async function uploadProcessed(ferry: Ferry, name = 'doc.pdf', bytes = randomBytes(4096)) {
  const f = await ferry.client().files.create({ file: await toFile(bytes, name), purpose: 'user_data' });
  const res = await ferry.fetch(`/v1/files/${f.id}?wait=30`);
  const body = await res.json();
  assert.equal(body.status, 'processed');
  return body;
}

describe('chat completions', () => {
  let ferry: Ferry;
  let client: OpenAI;
  before(async () => {
    ferry = await startFerry({ env: { FERRY_SYNC_WAIT_SECONDS: '20' } });
    client = ferry.client();
  });
  after(() => ferry.close());

  test('the seed flow: upload a file, then a completion with a file part proves the file reached the model', async () => {
    const file = await uploadProcessed(ferry, 'contract.pdf');
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'system', content: 'You summarise contracts.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this document?' },
            { type: 'file', file: { file_id: file.id } },
          ],
        },
      ],
    });
    assert.equal(completion.object, 'chat.completion');
    assert.match(completion.id, /^chatcmpl-/);
    assert.equal(completion.model, MODEL);
    const text = completion.choices[0].message.content ?? '';
    assert.ok(text.includes(file.provider_file), `the reply names the Gemini file: ${text}`);
    assert.ok(text.includes('What is in this document?'));
    assert.ok(text.includes('You summarise contracts.'));
    assert.equal(completion.choices[0].finish_reason, 'stop');
    assert.ok(completion.usage!.prompt_tokens > 0 && completion.usage!.total_tokens >= completion.usage!.prompt_tokens);
    const req = ferry.emulator.stats().generateRequests.at(-1) as any;
    const parts = req.body.contents[0].parts;
    assert.ok(parts.some((p: any) => p.fileData?.fileUri === file.uri && p.fileData?.mimeType === 'application/pdf'));
  });

  test('parameters map to Gemini; finish reasons and JSON mode map back', async () => {
    const c = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'one two three four five six seven' }],
      max_tokens: 3,
      temperature: 0.2,
      top_p: 0.9,
      stop: ['END'],
      seed: 7,
      n: 2,
    });
    assert.equal(c.choices.length, 2);
    assert.equal(c.choices[0].finish_reason, 'length');
    const cfg = (ferry.emulator.stats().generateRequests.at(-1) as any).body.generationConfig;
    assert.equal(cfg.maxOutputTokens, 3);
    assert.equal(cfg.temperature, 0.2);
    assert.equal(cfg.topP, 0.9);
    assert.deepEqual(cfg.stopSequences, ['END']);
    assert.equal(cfg.seed, 7);
    assert.equal(cfg.candidateCount, 2);

    const safety = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'FINISH:SAFETY please' }] });
    assert.equal(safety.choices[0].finish_reason, 'content_filter');

    const json = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'give json' }],
      response_format: { type: 'json_object' },
    });
    assert.doesNotThrow(() => JSON.parse(json.choices[0].message.content!));
  });

  test('tools: a function call comes back as tool_calls, and a tool answer goes back as a function response', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'lookup', description: 'Look up', parameters: { type: 'object', properties: { q: { type: 'string' } } } },
      },
    ];
    const first = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'CALL lookup {"q":"ferry"}' }],
      tools,
      tool_choice: 'auto',
    });
    const choice = first.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    const call = choice.message.tool_calls![0] as any;
    assert.equal(call.function.name, 'lookup');
    assert.deepEqual(JSON.parse(call.function.arguments), { q: 'ferry' });
    const second = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'user', content: 'CALL lookup {"q":"ferry"}' },
        choice.message as any,
        { role: 'tool', tool_call_id: call.id, content: '{"answer":"a boat"}' },
      ],
      tools,
    });
    assert.match(second.choices[0].message.content ?? '', /a boat/);
  });

  test('Prefer: respond-async answers 202 with Location; the job can be polled to its result', async () => {
    const res = await ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'async hello' }], metadata: { ticket: 'T-1' } }),
    });
    assert.equal(res.status, 202);
    const job = await res.json();
    assert.equal(res.headers.get('location'), `/v1/jobs/${job.id}`);
    assert.equal(job.object, 'job');
    assert.ok(['queued', 'running', 'succeeded'].includes(job.status));
    const done = await (await ferry.fetch(`/v1/jobs/${job.id}?wait=20`)).json();
    assert.equal(done.status, 'succeeded');
    assert.equal(done.result.object, 'chat.completion');
    assert.match(done.result.choices[0].message.content, /async hello/);
    assert.deepEqual(done.metadata, { ticket: 'T-1' });
    assert.ok(done.started_at >= done.created_at && done.finished_at >= done.started_at);
    assert.equal(done.attempts, 1);
    const list = await (await ferry.fetch('/v1/jobs?status=succeeded&limit=100')).json();
    assert.ok(list.data.some((j: any) => j.id === job.id));
    assert.ok(list.data.every((j: any) => j.status === 'succeeded'));
    assert.equal((await ferry.fetch(`/v1/jobs/${job.id}`, { key: KEYS.b })).status, 404);
  });

  test('a synchronous wait that overruns answers 202 with the job, and the result is kept', async () => {
    const slow = await startFerry({ env: { FERRY_SYNC_WAIT_SECONDS: '1' } });
    try {
      slow.emulator.setFaults([{ route: 'generate', kind: 'latency', latencyMs: 2500 }]);
      const res = await slow.fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'take your time' }] }),
      });
      assert.equal(res.status, 202);
      const job = await res.json();
      assert.equal(res.headers.get('location'), `/v1/jobs/${job.id}`);
      const done = await (await slow.fetch(`/v1/jobs/${job.id}?wait=20`)).json();
      assert.equal(done.status, 'succeeded');
    } finally {
      await slow.close();
    }
  });

  test('stream: true works through the SDK stream iterator, with usage in the last chunk', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'stream this sentence back to me please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let usage: any = null;
    let finish: string | null = null;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
    assert.ok(chunks >= 3, `several chunks (${chunks})`);
    assert.match(text, /stream this sentence back to me please/);
    assert.equal(finish, 'stop');
    assert.ok(usage && usage.total_tokens > 0);
  });

  test('a client that leaves mid-stream: its job still finishes, and the next stream is not held up', async () => {
    ferry.emulator.setFaults([{ route: 'stream', kind: 'latency', latencyMs: 4000, count: 1 }]);
    const ac = new AbortController();
    const res = await ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'nobody reads me' }] }),
      signal: ac.signal,
    });
    const jobId = res.headers.get('x-ferry-job-id')!;
    // Gone while the API waits for the first chunk.
    await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await res.body?.cancel().catch(() => {});

    const started = Date.now();
    const stream = await client.chat.completions.create({
      model: MODEL,
      stream: true,
      messages: [{ role: 'user', content: 'right after' }],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.match(text, /right after/);
    // A relay connection handed on while still blocked would hold this stream until the first job answers.
    assert.ok(Date.now() - started < 3000, `the next stream took ${Date.now() - started} ms`);
    const job = await (await ferry.fetch(`/v1/jobs/${jobId}?wait=10`)).json();
    assert.equal(job.status, 'succeeded');
  });

  test('a job submitted while its file uploads waits (waiting_for_files), then succeeds', async () => {
    ferry.emulator.setFaults([{ route: 'upload.chunk', kind: 'latency', latencyMs: 1500, count: 1 }]);
    const f = await client.files.create({ file: await toFile(randomBytes(2048), 'late.pdf'), purpose: 'user_data' });
    const res = await ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: f.id } }] }] }),
    });
    const job = await res.json();
    await eventually(
      async () => (await (await ferry.fetch(`/v1/jobs/${job.id}`)).json()).status === 'waiting_for_files',
      5000,
      'waiting_for_files',
    );
    const done = await (await ferry.fetch(`/v1/jobs/${job.id}?wait=20`)).json();
    assert.equal(done.status, 'succeeded');
    ferry.emulator.setFaults([]);
  });

  test('cancel: a waiting job never runs; cancelling a finished job is 409', async () => {
    const before = ferry.emulator.stats().requests.generate ?? 0;
    const { fileId, jobId } = await jobWaitingForSlowFile(ferry, 1500);
    const cancelled = await (await ferry.fetch(`/v1/jobs/${jobId}/cancel`, { method: 'POST' })).json();
    assert.equal(cancelled.status, 'cancelled');
    await (await ferry.fetch(`/v1/files/${fileId}?wait=20`)).json();
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await (await ferry.fetch(`/v1/jobs/${jobId}`)).json()).status, 'cancelled');
    assert.equal(ferry.emulator.stats().requests.generate ?? 0, before, 'the cancelled job never reached Gemini');
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] });
    const finished = (await (await ferry.fetch('/v1/jobs?status=succeeded&limit=1')).json()).data[0];
    const again = await ferry.fetch(`/v1/jobs/${finished.id}/cancel`, { method: 'POST' });
    assert.equal(again.status, 409);
    ferry.emulator.setFaults([]);
  });

  test('Idempotency-Key: same key and body → one job; different body → 422; keys are per tenant', async () => {
    const body = { model: MODEL, messages: [{ role: 'user', content: 'once only' }] };
    const post = (b: unknown, key: string = KEYS.a) =>
      ferry.fetch('/v1/chat/completions', {
        key,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'order-42', prefer: 'respond-async' },
        body: JSON.stringify(b),
      });
    const a = await (await post(body)).json();
    const b = await (await post(body)).json();
    assert.equal(a.id, b.id);
    const c = await post({ ...body, messages: [{ role: 'user', content: 'something else' }] });
    assert.equal(c.status, 422);
    assert.equal((await c.json()).error.code, 'idempotency_key_reused');
    const other = await (await post(body, KEYS.b)).json();
    assert.notEqual(other.id, a.id);
    // The SDK's own retries with an idempotency key get the original answer too.
    const sync1 = await client.chat.completions.create(body as any, { headers: { 'Idempotency-Key': 'sync-1' } });
    const sync2 = await client.chat.completions.create(body as any, { headers: { 'Idempotency-Key': 'sync-1' } });
    assert.equal(sync1.id, sync2.id);
  });

  test('upstream faults: 30% 429/503 across 200 jobs → all succeed, each with exactly one result', { timeout: 120_000 }, async () => {
    const f = await startFerry({ env: { FERRY_TENANT_MAX_RUNNING: '0' }, emulator: { seed: 42 } });
    try {
      f.emulator.setFaults([
        { route: 'generate', kind: '429', probability: 0.15, retryAfterSeconds: 0 },
        { route: 'generate', kind: '503', probability: 0.15 },
      ]);
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) {
        const res = await f.fetch('/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json', prefer: 'respond-async' },
          body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `job ${i}` }] }),
        });
        ids.push((await res.json()).id);
      }
      for (const [i, id] of ids.entries()) {
        const job = await (await f.fetch(`/v1/jobs/${id}?wait=60`)).json();
        assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
        assert.match(job.result.choices[0].message.content, new RegExp(`job ${i}\\b`));
      }
      const stats = f.emulator.stats();
      assert.ok((stats.faultsInjected.generate ?? 0) > 20, `faults were injected (${stats.faultsInjected.generate})`);
      // Each job reached Gemini successfully exactly once: successes = jobs.
      assert.equal((stats.requests.generate ?? 0) - (stats.faultsInjected.generate ?? 0), 200);
    } finally {
      await f.close();
    }
  });

  test('a retried job keeps its first start time and counts its attempts', async () => {
    const f = await startFerry({ emulator: { seed: 7 } });
    try {
      // The first attempt is told to come back in 2 s; the second succeeds at once.
      f.emulator.setFaults([{ route: 'generate', kind: '429', count: 1, retryAfterSeconds: 2 }]);
      const res = await f.fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'respond-async' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'try again later' }] }),
      });
      const job = await (await f.fetch(`/v1/jobs/${(await res.json()).id}?wait=30`)).json();
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      assert.equal(job.attempts, 2);
      assert.ok(
        job.finished_at - job.started_at >= 1,
        `started_at is the first attempt's (${job.started_at}, finished ${job.finished_at})`,
      );
    } finally {
      await f.close();
    }
  });

  test("a tenant's cap on running jobs holds across the burst, and another tenant is not starved", { timeout: 60_000 }, async () => {
    const capped = await startFerry({ env: { FERRY_TENANT_MAX_RUNNING: '1' } });
    try {
      capped.emulator.setFaults([{ route: 'generate', kind: 'latency', latencyMs: 300 }]);
      const submit = async (key: string, text: string) =>
        (
          await (
            await capped.fetch('/v1/chat/completions', {
              key,
              method: 'POST',
              headers: { 'content-type': 'application/json', prefer: 'respond-async' },
              body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: text }] }),
            })
          ).json()
        ).id as string;
      const started = Date.now();
      const burst = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => submit(KEYS.a, `burst ${i}`)));
      const other = await submit(KEYS.b, 'other tenant');
      const otherDone = await (await capped.fetch(`/v1/jobs/${other}?wait=30`, { key: KEYS.b })).json();
      const otherMs = Date.now() - started;
      assert.equal(otherDone.status, 'succeeded');
      for (const id of burst) assert.equal((await (await capped.fetch(`/v1/jobs/${id}?wait=30`)).json()).status, 'succeeded');
      const burstMs = Date.now() - started;
      assert.ok(burstMs >= 6 * 300, `one at a time: six 300 ms jobs took ${burstMs} ms`);
      assert.ok(otherMs < burstMs - 600, `the other tenant finished first (${otherMs} ms vs ${burstMs} ms)`);
    } finally {
      await capped.close();
    }
  });

  test('many callers waiting at once, synchronous and streamed, raise no listener warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    ferry.emulator.setLatency({ kind: 'fixed', ms: 300 });
    try {
      const c = ferry.client();
      const ask = (i: number) => c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `w${i}` }] });
      const stream = async (i: number) => {
        for await (const _ of await c.chat.completions.create({
          model: MODEL,
          stream: true,
          messages: [{ role: 'user', content: `s${i}` }],
        }));
      };
      await Promise.all([...Array.from({ length: 12 }, (_, i) => ask(i)), ...Array.from({ length: 12 }, (_, i) => stream(i))]);
      await new Promise((r) => setImmediate(r));
    } finally {
      ferry.emulator.setLatency({ kind: 'fixed', ms: 0 });
      process.off('warning', onWarning);
    }
    assert.deepEqual(
      warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')),
      [],
    );
  });

  test('a 400 from upstream fails the job at once with the upstream message', async () => {
    ferry.emulator.setFaults([{ route: 'generate', kind: '400', count: 1 }]);
    const res = await ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'refuse me' }] }),
    });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.match(body.error.message, /Gemini answered 400/);
    const job = (await (await ferry.fetch('/v1/jobs?status=failed&limit=1')).json()).data[0];
    assert.equal(job.attempts, 1);
    ferry.emulator.setFaults([]);
  });

  test("an image URL that cannot be read is the request's 400, or a retried 502 when its server cut it off", async () => {
    const img = http.createServer((q, s) => {
      if (q.url === '/missing') return void s.writeHead(404).end();
      if (q.url === '/loop') return void s.writeHead(302, { location: '/loop' }).end();
      // Says 1,000 bytes, sends 8, and hangs up.
      s.writeHead(200, { 'content-type': 'image/png', 'content-length': '1000' });
      s.write(Buffer.from('89504e470d0a1a0a', 'hex'), () => s.destroy());
    });
    await new Promise<void>((r) => img.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(img.address() as any).port}`;
    const open = await startFerry({ env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1', FERRY_UPSTREAM_ATTEMPTS: '1' } });
    const ask = async (path: string) => {
      const res = await open.fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: MODEL,
          messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${base}${path}` } }] }],
        }),
      });
      return { status: res.status, error: (await res.json()).error, jobId: res.headers.get('x-ferry-job-id') };
    };
    try {
      for (const [path, said] of [
        ['/missing', /answered 404/],
        ['/loop', /redirects too often/],
      ] as const) {
        const { status, error } = await ask(path);
        assert.equal(status, 400, path);
        assert.equal(error.code, 'image_url_unreadable');
        assert.equal(error.param, 'messages');
        assert.match(error.message, said);
      }
      const cut = await ask('/short.png');
      assert.equal(cut.status, 502);
      assert.equal(cut.error.code, 'upstream_unreachable');
      assert.match(cut.error.message, /stopped sending/);
      // The fetch was the job's one try, and its record counts it.
      const job = await (await open.fetch(`/v1/jobs/${cut.jobId}`)).json();
      assert.equal(job.status, 'failed');
      assert.equal(job.attempts, 1);
    } finally {
      await open.close();
      img.close();
    }
  });

  test('image URLs are fetched through the SSRF guard', async () => {
    const img = http.createServer((_q, s) => s.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from('89504e470d0a1a0a', 'hex')));
    await new Promise<void>((r) => img.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(img.address() as any).port}/a.png`;
    try {
      const res = await ferry.fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] }),
      });
      assert.equal(res.status, 400, 'loopback is refused with the guard on');
      assert.match((await res.json()).error.message, /not allowed/);
      const open = await startFerry({ env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1' } });
      try {
        const c = await open
          .client()
          .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] });
        assert.match(c.choices[0].message.content ?? '', /image\/png\(8 bytes\)/);
      } finally {
        await open.close();
      }
    } finally {
      img.close();
    }
  });
});

describe('chat completions: bad input is a 4xx naming the problem', () => {
  let ferry: Ferry;
  let fileOfB: string;
  before(async () => {
    ferry = await startFerry({ workers: false });
    const f = await ferry.client(KEYS.b).files.create({ file: await toFile(Buffer.from('b\n'), 'b.txt'), purpose: 'user_data' });
    fileOfB = f.id;
  });
  after(() => ferry.close());

  const post = (body: unknown) =>
    ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const user = (content: unknown) => ({ model: MODEL, messages: [{ role: 'user', content }] });

  const cases: Array<[string, () => unknown, number, string]> = [
    ['unknown model', () => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }), 400, 'model'],
    ['empty messages', () => ({ model: MODEL, messages: [] }), 400, 'messages'],
    ['only a system message', () => ({ model: MODEL, messages: [{ role: 'system', content: 'be brief' }] }), 400, 'messages'],
    ['wrong types', () => ({ model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }), 400, 'temperature'],
    ['unknown parameter', () => ({ ...user('x'), logprobs: true }), 400, 'logprobs'],
    ['unknown file id', () => user([{ type: 'file', file: { file_id: 'file-nope' } }]), 404, 'messages'],
    ["another tenant's file", () => user([{ type: 'file', file: { file_id: fileOfB } }]), 404, 'messages'],
    ['unsupported part', () => user([{ type: 'video_url', video_url: { url: 'x' } }]), 400, 'messages[0].content[0]'],
    ['bad role', () => ({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages[0].role'],
    [
      'oversize inline data',
      () => user([{ type: 'file', file: { file_data: `data:application/pdf;base64,${'A'.repeat(27_000_000)}`, filename: 'a.pdf' } }]),
      413,
      'messages',
    ],
    ['bad JSON', () => '{"model":', 400, ''],
    [
      'too many image URLs',
      () => user(Array.from({ length: 17 }, (_, i) => ({ type: 'image_url', image_url: { url: `https://example.com/${i}.png` } }))),
      400,
      'messages',
    ],
  ];
  for (const [name, body, status, param] of cases) {
    test(name, async () => {
      const res = await post(body());
      assert.equal(res.status, status);
      const b = await res.json();
      assert.equal(typeof b.error.message, 'string');
      if (param) assert.equal(b.error.param, param);
      assert.equal((await ferry.fetch('/healthz', { key: null })).status, 200);
    });
  }
  test('the SDK raises its error classes', async () => {
    await assert.rejects(
      ferry.client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      OpenAI.BadRequestError,
    );
    await assert.rejects(
      ferry.client().chat.completions.create(user([{ type: 'file', file: { file_id: fileOfB } }]) as any),
      OpenAI.NotFoundError,
    );
  });
});
