/**
 * Early uploads: a file whose size is known as it starts arriving (fields first, Content-Length,
 * as the Python SDK and curl send it) goes on to Gemini while the API still receives it.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { readdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { lastPartSize } from '../src/api/multipart.js';
import { loadConfig } from '../src/core/config.js';
import { earlyUploadPlan, earlyUploadsPossible } from '../src/domain/early-uploads.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type Azurite } from './azurite.js';
import { eventually, KEYS, spawnFerry, startFerry, type Ferry } from './harness.js';

const MIB = 1024 * 1024;
const CHUNK = MIB;
const SIZE = 8 * CHUNK + 12_345;

/**
 * A multipart upload sent by hand, fields first, with its Content-Length: its bytes go out when
 * `sendUntil` asks, so a test knows how far the request has got.
 */
class SlowUpload {
  readonly sha256: string;
  readonly req: http.ClientRequest;
  readonly answer: Promise<{ status: number; body: any }>;
  private readonly body: Buffer;
  /** Where the file's bytes begin in the body. */
  private readonly fileStart: number;
  private sent = 0;

  constructor(url: string, fields: Record<string, string>, file: Buffer, opts: UploadOptions = {}) {
    const boundary = `----ferry${randomBytes(8).toString('hex')}`;
    this.sha256 = createHash('sha256').update(file).digest('hex');
    const field = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const head = Buffer.from(
      `${Object.entries(fields)
        .map(([k, v]) => field(k, v))
        .join('')}--${boundary}\r\n` +
        'Content-Disposition: form-data; name="file"; filename="scan.pdf"\r\nContent-Type: application/pdf\r\n\r\n',
    );
    const late = Object.entries(opts.after ?? {})
      .map(([k, v]) => field(k, v))
      .join('');
    this.fileStart = head.length;
    this.body = Buffer.concat([head, file, Buffer.from(`\r\n${late}--${boundary}--\r\n`)]);
    this.req = http.request(`${url}/v1/files`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${KEYS.a}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(this.body.length),
        ...opts.headers,
      },
    });
    this.answer = new Promise((resolve, reject) => {
      this.req.on('response', (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString() || '{}') }));
      });
      this.req.on('error', reject);
    });
    this.answer.catch(() => {});
  }

  /** Sends the body up to `fileBytes` of the file, or all of it. */
  async sendUntil(fileBytes?: number): Promise<void> {
    const to = fileBytes === undefined ? this.body.length : this.fileStart + fileBytes;
    while (this.sent < to) {
      const n = Math.min(256 * 1024, to - this.sent);
      const ok = this.req.write(this.body.subarray(this.sent, this.sent + n));
      this.sent += n;
      if (!ok) await new Promise((r) => this.req.once('drain', r));
    }
    if (this.sent === this.body.length) this.req.end();
  }
}

interface UploadOptions {
  /** Fields sent after the file. */
  after?: Record<string, string>;
  headers?: Record<string, string>;
}

/** A PDF of SIZE random bytes. */
const pdf = () => Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(SIZE - 9)]);

const upload = (url: string, fields: Record<string, string>, opts: UploadOptions = {}, file = pdf()) =>
  new SlowUpload(url, fields, file, opts);

/** Sessions the emulator holds, by status, and the bytes each received. */
function sessions(ferry: Ferry) {
  const stats = ferry.emulator.stats();
  return Object.entries(stats.sessionStatus).map(([id, status]) => ({ id, status, bytes: stats.bytesBySession[id] ?? 0 }));
}

const activeWithAtLeast = (ferry: Ferry, bytes: number) => async () =>
  sessions(ferry).find((s) => s.status === 'active' && s.bytes >= bytes);

/**
 * Sends six chunks of the file, waits until an early session holds `early` bytes (the request
 * still open), sends the rest, and answers that session and the file once processed.
 */
async function sentEarly(ferry: Ferry, u: SlowUpload, early: number) {
  await u.sendUntil(6 * CHUNK);
  const session = await eventually(activeWithAtLeast(ferry, early), 20_000, 'an early session');
  assert.equal(u.req.writableEnded, false, 'the request is still open');
  await u.sendUntil();
  const { status, body } = await u.answer;
  assert.equal(status, 200, JSON.stringify(body));
  const file = await (await ferry.fetch(`/v1/files/${body.id}?wait=30`)).json();
  assert.equal(file.status, 'processed', JSON.stringify(file));
  assert.equal(file.sha256, u.sha256);
  return { session, file };
}

describe('the size of a file part that ends the body', () => {
  const body = (fields: string) =>
    Buffer.from(`${fields}--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\nContent-Type: application/pdf\r\n\r\n`);
  test('is the length less what comes before its bytes and the closing delimiter', () => {
    const head = body('--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n');
    const total = head.length + 1000 + '\r\n--b--\r\n'.length;
    assert.equal(lastPartSize(head, 'b', 'file', total), 1000);
  });
  test('is not told when the part headers are not all in the prefix, or no file part is', () => {
    const head = body('');
    assert.equal(lastPartSize(head.subarray(0, head.length - 3), 'b', 'file', 5000), null);
    const field = Buffer.from('--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n');
    assert.equal(lastPartSize(field, 'b', 'file', 5000), null);
  });
  test('does not take a part whose filename is "file" for the part named file', () => {
    const head = Buffer.from('--b\r\nContent-Disposition: form-data; name="other"; filename="file"\r\n\r\n');
    assert.equal(lastPartSize(head, 'b', 'file', 5000), null);
  });
});

describe('which uploads start early', () => {
  const config = loadConfig({ FERRY_UPLOAD_CHUNK_BYTES: String(CHUNK), FERRY_API_KEYS: 'k:t' });
  const start = (over: Partial<Parameters<typeof earlyUploadPlan>[1]> = {}) => ({
    fileId: 'file-1',
    tenant: 't',
    stagingKey: 'file-1',
    fields: { purpose: 'user_data' },
    query: {},
    filename: 'a.pdf',
    partType: 'application/pdf',
    bytes: SIZE,
    ...over,
  });
  test('a Gemini file of known size larger than a chunk, with its fields in order', () => {
    assert.equal(earlyUploadPlan(config, start())?.bytes, SIZE);
    assert.equal(earlyUploadPlan(config, start({ fields: { purpose: 'user_data', display_name: 'Scan' } }))?.display_name, 'Scan');
  });
  test('not one whose size is unknown, one chunk or less, or over the limit', () => {
    assert.equal(earlyUploadPlan(config, start({ bytes: null })), null);
    assert.equal(earlyUploadPlan(config, start({ bytes: CHUNK })), null);
    assert.equal(earlyUploadPlan(config, start({ bytes: config.maxFileBytes + 1 })), null);
  });
  test('not batch input, an Azure target, a URL, or fields that will be refused', () => {
    const refused: Record<string, string>[] = [
      { purpose: 'batch' },
      { purpose: 'user_data', target_storage: 'azure_storage' },
      { purpose: 'user_data', url: 'https://example.com/a.pdf' },
      { purpose: 'nonsense' },
      { purpose: 'user_data', bogus: '1' },
      {},
    ];
    for (const fields of refused) assert.equal(earlyUploadPlan(config, start({ fields })), null, JSON.stringify(fields));
  });
  test('only where a worker can read a write under way, and not when turned off', () => {
    assert.equal(earlyUploadsPossible(config), true);
    assert.equal(earlyUploadsPossible(loadConfig({ FERRY_UPLOAD_OVERLAP: 'off', FERRY_API_KEYS: 'k:t' })), false);
    assert.equal(earlyUploadsPossible({ ...config, stagingContainer: 'staging' }), false);
  });
});

describe('early uploads', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({ env: { FERRY_UPLOAD_CHUNK_BYTES: String(CHUNK) } });
  });
  after(() => ferry.close());

  test('a file whose fields come first is sent on to Gemini while it is still being received', { timeout: 60_000 }, async () => {
    ferry.emulator.reset();
    const u = upload(ferry.url, { purpose: 'user_data' });
    // Five chunks at Gemini before the request ended.
    const { session: early } = await sentEarly(ferry, u, 5 * CHUNK);
    const all = sessions(ferry);
    assert.equal(all.length, 1, `one session, the early one, finished: ${JSON.stringify(all)}`);
    assert.equal(all[0].id, early.id);
    assert.equal(all[0].status, 'final');
    assert.equal(all[0].bytes, SIZE, 'every byte sent once');
  });

  test('a request cut off mid-way leaves no session open and nothing staged', { timeout: 60_000 }, async () => {
    ferry.emulator.reset();
    const staged = async () => (await readdir(ferry.config.stagingDir).catch(() => [])).sort();
    const stagedBefore = await staged();
    const filesBefore = await ferry.services.redis.keys(`${ferry.config.prefix}:file:*`);
    const u = upload(ferry.url, { purpose: 'user_data' });
    await u.sendUntil(5 * CHUNK);
    await eventually(activeWithAtLeast(ferry, 3 * CHUNK), 20_000, 'an early session');
    u.req.destroy();
    await eventually(async () => sessions(ferry).every((s) => s.status === 'cancelled'), 20_000, 'the session cancelled');
    assert.deepEqual(await staged(), stagedBefore, 'nothing staged');
    await eventually(
      async () => (await ferry.services.redis.keys(`${ferry.config.prefix}:file:*`)).length === filesBefore.length,
      10_000,
      'no file, no early-upload state left',
    );
  });

  test(
    'a repeat under the same Idempotency-Key is answered with the first file; its own session is cancelled',
    { timeout: 60_000 },
    async () => {
      ferry.emulator.reset();
      const headers = { 'idempotency-key': `early-${randomBytes(4).toString('hex')}` };
      const file = pdf();
      const first = upload(ferry.url, { purpose: 'user_data' }, { headers }, file);
      await first.sendUntil();
      const a = await first.answer;
      assert.equal((await (await ferry.fetch(`/v1/files/${a.body.id}?wait=30`)).json()).status, 'processed');
      // Same fields, same bytes: a repeat.
      const again = upload(ferry.url, { purpose: 'user_data' }, { headers }, file);
      await again.sendUntil();
      const b = await again.answer;
      assert.equal(b.status, 200, JSON.stringify(b.body));
      assert.equal(b.body.id, a.body.id);
      await eventually(
        async () =>
          sessions(ferry)
            .filter((s) => s.status !== 'final')
            .every((s) => s.status === 'cancelled'),
        20_000,
        'no session left open',
      );
      assert.equal(sessions(ferry).filter((s) => s.status === 'final').length, 1);
    },
  );

  test(
    'a field after the file: the size foreseen is wrong, the early session is dropped and the file uploads whole',
    { timeout: 60_000 },
    async () => {
      ferry.emulator.reset();
      const u = upload(ferry.url, { purpose: 'user_data' }, { after: { display_name: 'late field' } });
      const { file: done } = await sentEarly(ferry, u, 4 * CHUNK);
      assert.equal(done.filename, 'scan.pdf');
      await eventually(async () => sessions(ferry).every((s) => s.status !== 'active'), 20_000, 'the early session cancelled');
      assert.deepEqual(
        sessions(ferry)
          .map((s) => s.status)
          .sort(),
        ['cancelled', 'final'],
      );
    },
  );
});

describe('early uploads and crashes', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({
      workers: false,
      env: { FERRY_UPLOAD_CHUNK_BYTES: String(CHUNK), FERRY_JOB_LOCK_MS: '2000', FERRY_UPLOAD_STALL_SECONDS: '2' },
    });
  });
  after(() => ferry.close());

  for (const [point, label] of [
    ['early.recorded:3', 'a worker killed between two early chunks'],
    ['early.taken', 'a worker killed as its upload job takes the early session over'],
  ] as const) {
    test(`${label}: the upload resumes the session, sending no byte twice`, { timeout: 90_000 }, async () => {
      ferry.emulator.reset();
      const doomed = spawnFerry('worker', { ...ferry.env, FERRY_CRASH_AT: point });
      const exited = new Promise((r) => doomed.once('exit', r));
      const u = upload(ferry.url, { purpose: 'user_data' });
      await eventually(async () => (await ferry.services.queues.early.getWorkersCount()) > 0, 20_000, 'worker up');
      await u.sendUntil(6 * CHUNK);
      if (point.startsWith('early.recorded')) await exited;
      await u.sendUntil();
      const { body } = await u.answer;
      await exited;
      const second = spawnFerry('worker', ferry.env);
      try {
        const done = await (await ferry.fetch(`/v1/files/${body.id}?wait=60`)).json();
        assert.equal(done.status, 'processed', JSON.stringify(done));
        assert.equal(done.sha256, u.sha256);
        const all = sessions(ferry);
        assert.equal(all.length, 1, `one session, resumed: ${JSON.stringify(all)}`);
        assert.ok(all[0].bytes >= SIZE && all[0].bytes <= SIZE + CHUNK, `bytes sent at most once plus one chunk: ${all[0].bytes}`);
      } finally {
        second.kill('SIGTERM');
        await new Promise((r) => second.once('exit', r));
      }
    });
  }

  test('an API killed mid-request: the early session is cancelled once nothing more arrives', { timeout: 90_000 }, async () => {
    ferry.emulator.reset();
    const worker = spawnFerry('worker', ferry.env);
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const api = spawnFerry('api', { ...ferry.env, PORT: String(port) });
    try {
      const url = `http://127.0.0.1:${port}`;
      await eventually(async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok, 30_000, 'api up');
      const u = upload(url, { purpose: 'user_data' });
      await u.sendUntil(5 * CHUNK);
      await eventually(activeWithAtLeast(ferry, 3 * CHUNK), 20_000, 'an early session');
      api.kill('SIGKILL');
      await eventually(async () => sessions(ferry).every((s) => s.status === 'cancelled'), 30_000, 'the session cancelled');
      await eventually(
        async () => (await ferry.services.redis.keys(`${ferry.config.prefix}:file:*:early`)).length === 0,
        10_000,
        'no early-upload state left',
      );
    } finally {
      api.kill('SIGKILL');
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
    }
  });
});

describe('early uploads and a field after the file that sends it to Azure', () => {
  let azurite: Azurite;
  let ferry: Ferry;
  before(async () => {
    azurite = await startAzurite();
    ferry = await startFerry({
      env: {
        FERRY_UPLOAD_CHUNK_BYTES: String(CHUNK),
        AZURE_STORAGE_ACCOUNT_NAME: AZURITE_ACCOUNT,
        AZURE_STORAGE_ACCOUNT_KEY: AZURITE_KEY,
        AZURE_STORAGE_FILE_SYSTEM: `early-${randomBytes(3).toString('hex')}`,
        AZURE_STORAGE_ENDPOINT: azurite.endpoint,
      },
    });
  });
  after(async () => {
    await ferry?.close();
    await azurite?.stop();
  });

  test('the file is stored in Azure and its early Gemini session is cancelled', { timeout: 60_000 }, async () => {
    ferry.emulator.reset();
    const u = upload(ferry.url, { purpose: 'user_data' }, { after: { target_storage: 'azure_storage' } });
    const { file: done } = await sentEarly(ferry, u, 3 * CHUNK);
    assert.equal(done.storage, 'azure_storage');
    await eventually(async () => sessions(ferry).every((s) => s.status === 'cancelled'), 20_000, 'the early session cancelled');
    await eventually(
      async () => (await ferry.services.redis.keys(`${ferry.config.prefix}:file:*:early`)).length === 0,
      10_000,
      'no early-upload state left',
    );
  });
});
