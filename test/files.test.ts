import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { KEYS, eventually, startFerry, writeRandomFile, type Ferry } from './harness.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function processed(ferry: Ferry, id: string, key: string = KEYS.a) {
  const res = await ferry.fetch(`/v1/files/${id}?wait=30`, { key });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.notEqual(body.status, 'uploaded', `file ${id} still uploading after the long-poll`);
  return body;
}

function assertErrorShape(body: any) {
  assert.equal(typeof body.error?.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.equal(typeof body.error.type, 'string');
  assert.ok('param' in body.error && 'code' in body.error, 'error has param and code');
}

describe('Files API through the openai SDK', () => {
  let ferry: Ferry;
  let client: OpenAI;
  before(async () => {
    ferry = await startFerry({ env: { FERRY_UPLOAD_CHUNK_BYTES: String(1 << 20) } });
    client = ferry.client();
  });
  after(() => ferry.close());

  test('files.create from fs.createReadStream with target_model_names inline reaches processed', async () => {
    const file = path.join(ferry.tmp, 'report.pdf');
    await writeRandomFile(file, 3 * 1024 * 1024 + 12345);
    const original = await readFile(file);
    const created = await client.files.create({
      file: createReadStream(file),
      purpose: 'user_data',
      target_model_names: ['gemini-2.0-flash', 'gemini-2.5-pro'],
    } as any);
    assert.match(created.id, /^file-/);
    assert.equal(created.object, 'file');
    assert.equal(created.bytes, original.length);
    assert.equal(created.filename, 'report.pdf');
    assert.equal(created.purpose, 'user_data');
    assert.equal(created.status, 'uploaded');
    const c = created as any;
    assert.equal(c.storage, 'gemini');
    assert.equal(c.mime_type, 'application/pdf');
    assert.equal(c.sha256, sha256(original));
    assert.deepEqual(c.target_model_names, ['gemini-2.0-flash', 'gemini-2.5-pro']);

    const done = await processed(ferry, created.id);
    assert.equal(done.status, 'processed');
    assert.equal(done.provider_state, 'active');
    assert.equal(done.bytes_uploaded, original.length);
    assert.match(done.provider_file, /^files\//);
    assert.ok(done.uri.includes(done.provider_file.slice('files/'.length)));

    const again = await client.files.retrieve(created.id);
    assert.equal(again.status, 'processed');
    // The emulator received exactly the file's bytes, once.
    assert.equal(ferry.emulator.stats().bytesByFile[done.provider_file], original.length);
  });

  test('files.create from toFile (a Buffer), content streams the original bytes back', async () => {
    const bytes = Buffer.from('Ferry carries documents.\n'.repeat(1000));
    const created = await client.files.create({ file: await toFile(bytes, 'notes.txt'), purpose: 'user_data' });
    assert.equal((created as any).mime_type, 'text/plain');
    const done = await processed(ferry, created.id);
    assert.equal(done.status, 'processed');
    const content = await client.files.content(created.id);
    assert.equal(content.headers.get('content-type'), 'text/plain');
    assert.deepEqual(Buffer.from(await content.arrayBuffer()), bytes);
  });

  test('list pages with limit/after/order and filters by purpose', async () => {
    const other = await startFerry({ env: { FERRY_API_KEYS: `${KEYS.a}:lister` } });
    try {
      const c = other.client();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const f = await c.files.create({ file: await toFile(Buffer.from(`doc ${i}\n`), `doc${i}.txt`), purpose: 'user_data' });
        ids.push(f.id);
      }
      const batchFile = await c.files.create({ file: await toFile(Buffer.from('{"a":1}\n'), 'in.jsonl'), purpose: 'batch' });
      const seen: string[] = [];
      for await (const f of c.files.list({ limit: 2, purpose: 'user_data' } as any)) seen.push(f.id);
      assert.deepEqual(seen, [...ids].reverse(), 'newest first across pages, batch file filtered out');
      const page = await c.files.list({ limit: 2, order: 'asc' } as any);
      assert.deepEqual(
        page.data.map((f) => f.id),
        ids.slice(0, 2),
      );
      assert.equal(page.hasNextPage(), true);
      const res = await other.fetch(`/v1/files?limit=2&order=asc&after=${ids[1]}`);
      const body = await res.json();
      assert.deepEqual(
        body.data.map((f: any) => f.id),
        ids.slice(2, 4),
      );
      assert.equal(body.first_id, ids[2]);
      assert.equal(body.last_id, ids[3]);
      assert.equal(body.has_more, true);
      const batches = await c.files.list({ purpose: 'batch' } as any);
      assert.deepEqual(
        batches.data.map((f) => f.id),
        [batchFile.id],
      );
      assert.equal(batches.data[0].status, 'processed', 'batch input stays with Ferry and is ready at once');
    } finally {
      await other.close();
    }
  });

  test('delete removes the record, the staged bytes and the Gemini file', async () => {
    const created = await client.files.create({ file: await toFile(Buffer.from('to be deleted\n'), 'gone.txt'), purpose: 'user_data' });
    const done = await processed(ferry, created.id);
    const res = await client.files.delete(created.id);
    assert.deepEqual(res, { id: created.id, object: 'file', deleted: true });
    await assert.rejects(client.files.retrieve(created.id), OpenAI.NotFoundError);
    await assert.rejects(client.files.content(created.id), OpenAI.NotFoundError);
    const name = done.provider_file.slice('files/'.length);
    await eventually(
      async () => (await fetch(`${ferry.emulator.url}/v1beta/files/${name}?key=k`)).status === 404,
      10_000,
      'Gemini copy deleted',
    );
    await eventually(async () => (await ferry.services.staging.size(created.id)) === null, 10_000, 'staged bytes deleted');
    await assert.rejects(client.files.delete(created.id), OpenAI.NotFoundError);
  });

  test("another tenant's file answers 404 everywhere, never 403", async () => {
    const created = await client.files.create({ file: await toFile(Buffer.from('private\n'), 'mine.txt'), purpose: 'user_data' });
    const b = ferry.client(KEYS.b);
    await assert.rejects(b.files.retrieve(created.id), OpenAI.NotFoundError);
    await assert.rejects(b.files.content(created.id), OpenAI.NotFoundError);
    await assert.rejects(b.files.delete(created.id), OpenAI.NotFoundError);
    const listed = await b.files.list();
    assert.ok(!listed.data.some((f) => f.id === created.id));
    // The admin key sees every tenant's files.
    const admin = await ferry.client(KEYS.admin).files.retrieve(created.id);
    assert.equal(admin.id, created.id);
    assert.equal((await client.files.retrieve(created.id)).id, created.id);
  });

  test('a file Gemini fails to process ends in error with status details', async () => {
    const created = await client.files.create({
      file: await toFile(Buffer.from('x\n'), 'doc.txt'),
      purpose: 'user_data',
      display_name: 'fail-processing-doc',
    } as any);
    const done = await processed(ferry, created.id);
    assert.equal(done.status, 'error');
    assert.match(done.status_details, /Gemini could not process/);
  });

  test('transient upstream faults are retried; a 4xx from Gemini fails the file with its message', async () => {
    ferry.emulator.setFaults([
      { route: 'upload.chunk', kind: '503', count: 2 },
      { route: 'upload.start', kind: '429', count: 1, retryAfterSeconds: 0 },
    ]);
    const ok = await client.files.create({ file: await toFile(randomBytes(3 << 20), 'clip.mp4'), purpose: 'user_data' });
    assert.equal((await processed(ferry, ok.id)).status, 'processed');
    assert.equal(ferry.emulator.stats().faultsInjected['upload.chunk'], 2);

    ferry.emulator.setFaults([{ route: 'upload.start', kind: '400', count: 1 }]);
    const bad = await client.files.create({ file: await toFile(Buffer.from('hello\n'), 'a.txt'), purpose: 'user_data' });
    const failed = await processed(ferry, bad.id);
    assert.equal(failed.status, 'error');
    assert.match(failed.status_details, /Gemini answered 400/);
    ferry.emulator.setFaults([]);
  });

  test('bytes past their retention are swept; content then answers 410 and the record stays', async () => {
    const created = await client.files.create({ file: await toFile(Buffer.from('short-lived\n'), 'brief.txt'), purpose: 'user_data' });
    await processed(ferry, created.id);
    const { sweepExpiredContent } = await import('../src/worker/maintenance.js');
    const swept = await sweepExpiredContent(ferry.services, Math.floor(Date.now() / 1000) + ferry.config.contentRetentionSeconds + 1);
    assert.ok(swept.deleted >= 1);
    assert.equal(await ferry.services.staging.size(created.id), null);
    const res = await ferry.fetch(`/v1/files/${created.id}/content`);
    assert.equal(res.status, 410);
    assert.match((await res.json()).error.message, /no longer retained/);
    const rec = await client.files.retrieve(created.id);
    assert.equal(rec.status, 'processed');
    assert.equal((rec as any).content_expires_at, null);
  });

  test('Idempotency-Key on upload: same key and bytes → the original file; other bytes → 422', async () => {
    const opts = { headers: { 'Idempotency-Key': 'upload-7' } };
    const first = await client.files.create({ file: await toFile(Buffer.from('same bytes\n'), 'same.txt'), purpose: 'user_data' }, opts);
    const second = await client.files.create({ file: await toFile(Buffer.from('same bytes\n'), 'same.txt'), purpose: 'user_data' }, opts);
    assert.equal(second.id, first.id);
    await assert.rejects(
      client.files.create({ file: await toFile(Buffer.from('other bytes\n'), 'same.txt'), purpose: 'user_data' }, opts),
      (e: unknown) => e instanceof OpenAI.UnprocessableEntityError,
    );
    const mine = await client.files.list({ limit: 100 } as any);
    assert.equal(mine.data.filter((f) => f.filename === 'same.txt').length, 1);
  });

  test('operations: healthz, readyz, metrics, request ids, Bull Board behind the admin key', async () => {
    assert.equal((await ferry.fetch('/healthz', { key: null })).status, 200);
    const ready = await ferry.fetch('/readyz', { key: null });
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', redis: true, workers: true });
    const metrics = await (await ferry.fetch('/metrics', { key: null })).text();
    assert.match(metrics, /ferry_bytes_uploaded_total\{storage="gemini"\} [1-9]/);
    assert.match(metrics, /ferry_upstream_calls_total\{provider="gemini",operation="upload.chunk",status="200"\}/);
    assert.match(metrics, /ferry_queue_jobs\{queue="upload",state="completed"\}/);
    assert.match(metrics, /ferry_job_duration_seconds_count\{queue="upload",outcome="completed"\}/);
    const r1 = await ferry.fetch('/v1/files', { headers: { 'x-request-id': 'trace-123' } });
    assert.equal(r1.headers.get('x-request-id'), 'trace-123');
    const r2 = await ferry.fetch('/v1/files');
    assert.match(r2.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal((await ferry.fetch('/admin/queues', { key: KEYS.a })).status, 401);
    assert.equal((await ferry.fetch('/admin/queues', { key: KEYS.admin })).status, 200);
  });
});

describe('bad input gets a clear 4xx in the error shape, and the server keeps serving', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({ workers: false, env: { FERRY_MAX_FILE_BYTES: String(64 * 1024) } });
  });
  after(() => ferry.close());

  const form = (parts: Array<[string, string | Blob, string?]>) => {
    const f = new FormData();
    for (const [name, value, filename] of parts) {
      if (typeof value === 'string') f.append(name, value);
      else f.append(name, value, filename);
    }
    return f;
  };
  const text = (s: string) => new Blob([s], { type: 'text/plain' });

  const cases: Array<[string, () => Promise<Response>, number, string | null]> = [
    ['no file part', () => ferry.fetch('/v1/files', { method: 'POST', body: form([['purpose', 'user_data']]) }), 400, 'file'],
    [
      'empty file',
      () =>
        ferry.fetch('/v1/files', {
          method: 'POST',
          body: form([
            ['file', text(''), 'e.txt'],
            ['purpose', 'user_data'],
          ]),
        }),
      400,
      'file',
    ],
    [
      'oversize file',
      () =>
        ferry.fetch('/v1/files', {
          method: 'POST',
          body: form([
            ['file', new Blob([randomBytes(200 * 1024)]), 'big.pdf'],
            ['purpose', 'user_data'],
          ]),
        }),
      413,
      'file',
    ],
    ['missing purpose', () => ferry.fetch('/v1/files', { method: 'POST', body: form([['file', text('hi'), 'a.txt']]) }), 400, 'purpose'],
    [
      'unknown purpose',
      () =>
        ferry.fetch('/v1/files', {
          method: 'POST',
          body: form([
            ['file', text('hi'), 'a.txt'],
            ['purpose', 'nonsense'],
          ]),
        }),
      400,
      'purpose',
    ],
    [
      'unsupported target_storage',
      () =>
        ferry.fetch('/v1/files', {
          method: 'POST',
          body: form([
            ['file', text('hi'), 'a.txt'],
            ['purpose', 'user_data'],
            ['target_storage', 's3'],
          ]),
        }),
      400,
      'target_storage',
    ],
    [
      'a type Gemini cannot take',
      () =>
        ferry.fetch('/v1/files', {
          method: 'POST',
          body: form([
            ['file', new Blob([Buffer.from('504b0304140000000800', 'hex'), randomBytes(100)]), 'archive.zip'],
            ['purpose', 'user_data'],
          ]),
        }),
      415,
      'file',
    ],
    [
      'malformed multipart',
      () =>
        ferry.fetch('/v1/files', {
          method: 'POST',
          headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
          body: '--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nunterminated',
        }),
      400,
      null,
    ],
    [
      'a JSON body',
      () => ferry.fetch('/v1/files', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"purpose":"user_data"}' }),
      400,
      null,
    ],
    ['unknown id', () => ferry.fetch('/v1/files/file-doesnotexist'), 404, 'file_id'],
    ['bad list limit', () => ferry.fetch('/v1/files?limit=0'), 400, 'limit'],
    ['bad wait', () => ferry.fetch('/v1/files/file-x?wait=soon'), 400, null],
    ['missing key', () => ferry.fetch('/v1/files', { key: null }), 401, null],
    ['wrong key', () => ferry.fetch('/v1/files', { key: 'sk-wrong' }), 401, null],
    ['unknown route', () => ferry.fetch('/v1/nothing-here'), 404, null],
    ['an id that is not a record id', () => ferry.fetch('/v1/files/meta'), 404, 'file_id'],
    ['a broken URL escape', () => ferry.fetch('/v1/files/%E0%A4%A'), 400, null],
    [
      'an unsupported JSON charset',
      () =>
        ferry.fetch('/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=latin1' },
          body: '{}',
        }),
      415,
      null,
    ],
  ];

  for (const [name, call, status, param] of cases) {
    test(name, async () => {
      const res = await call();
      assert.equal(res.status, status, `${name}: status`);
      const body = await res.json();
      assertErrorShape(body);
      if (param) assert.equal(body.error.param, param);
      assert.equal((await ferry.fetch('/healthz', { key: null })).status, 200, 'still serving');
    });
  }

  test('refused uploads leave nothing behind: no record, no staged bytes', async () => {
    const list = await (await ferry.fetch('/v1/files')).json();
    assert.deepEqual(list.data, []);
    const { readdir } = await import('node:fs/promises');
    const left = await readdir(ferry.config.stagingDir).catch(() => []);
    assert.deepEqual(left, []);
  });

  test('the message says what to change: escapes, charset, the body, the file part, the batch input, the size', async () => {
    const json = (body: string, type = 'application/json') =>
      ferry.fetch('/v1/chat/completions', { method: 'POST', headers: { 'content-type': type }, body });
    const form = new FormData();
    form.append('purpose', 'user_data');
    form.append('file', 'contents without a filename');
    const cases: Array<[string, Promise<Response>, number, string, RegExp]> = [
      ['a broken escape', ferry.fetch('/v1/files/%E0%A4%A'), 400, 'invalid_url_encoding', /percent-encode/],
      ['latin1', json('{}', 'application/json; charset=latin1'), 415, 'unsupported_charset', /send the body as UTF-8/],
      ['null', json('null'), 400, 'invalid_json', /must be a JSON object/],
      ['a file part without a filename', ferry.fetch('/v1/files', { method: 'POST', body: form }), 400, 'invalid_request', /no filename/],
      ['over the body limit', json(`{"model":"${'x'.repeat(33 * 1024 * 1024)}"}`), 413, 'request_too_large', /larger than \d+ bytes/],
    ];
    for (const [name, call, status, code, message] of cases) {
      const res = await call;
      assert.equal(res.status, status, name);
      const { error } = await res.json();
      assert.equal(error.code, code, name);
      assert.match(error.message, message, name);
    }
    const batch = await ferry.fetch('/v1/batches', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' }),
    });
    assert.equal(batch.status, 404);
    assert.equal((await batch.json()).error.param, 'input_file_id');
  });

  test('the SDK maps the errors to its classes', async () => {
    const c = ferry.client();
    await assert.rejects(c.files.retrieve('file-nope'), OpenAI.NotFoundError);
    await assert.rejects(ferry.client('bad').files.list(), OpenAI.AuthenticationError);
    await assert.rejects(
      c.files.create({ file: await toFile(Buffer.from('x'), 'a.txt'), purpose: 'weird' as any }),
      OpenAI.BadRequestError,
    );
  });
});
