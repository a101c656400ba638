/**
 * The Uploads API through the openai SDK: parts sent in parallel and through two API processes,
 * completed in the file's order (not the order they arrived), checked by md5, then travelling to
 * Gemini as any file; wrong md5, wrong size, unknown parts, cancel and expiry each answered clearly.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { KEYS, eventually, freePort, processedFile, spawnFerry, startFerry, type Ferry } from './harness.js';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { COMPLETE_STEPS, expireUploads } from '../src/domain/uploads.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('the Uploads API', () => {
  let ferry: Ferry;
  let client: OpenAI;
  before(async () => {
    ferry = await startFerry();
    client = ferry.client();
  });
  after(() => ferry.close());

  /** `n` parts of `data`, as the SDK sends them, all at once; answers their ids in the file's order. */
  async function sendParts(c: OpenAI, uploadId: string, data: Buffer, n: number): Promise<string[]> {
    const size = Math.ceil(data.length / n);
    const chunks = Array.from({ length: n }, (_, i) => data.subarray(i * size, (i + 1) * size));
    const parts = await Promise.all(
      chunks.map(async (chunk, i) => c.uploads.parts.create(uploadId, { data: await toFile(chunk, `p${i}`) })),
    );
    for (const p of parts) {
      assert.equal(p.object, 'upload.part');
      assert.equal(p.upload_id, uploadId);
    }
    return parts.map((p) => p.id);
  }

  test('parts sent in parallel, completed in order with their md5: the file is the bytes, processed on Gemini', async () => {
    const data = randomBytes(700_000);
    const upload = await client.uploads.create({
      bytes: data.length,
      filename: 'scan.pdf',
      mime_type: 'application/pdf',
      purpose: 'user_data',
    });
    assert.equal(upload.object, 'upload');
    assert.equal(upload.status, 'pending');
    assert.equal(upload.expires_at, upload.created_at + 3600);
    const ids = await sendParts(client, upload.id, data, 4);
    const done = await client.uploads.complete(upload.id, { part_ids: ids, md5: md5(data) });
    assert.equal(done.status, 'completed');
    assert.ok(done.file, 'the completed upload carries its file');
    assert.equal(done.file!.bytes, data.length);
    assert.equal((done.file as any).sha256, sha256(data));
    const file = await processedFile(client, done.file!.id);
    assert.equal(ferry.emulator.stats().bytesByFile[file.provider_file], data.length);
    // The bytes read back are the file's, in order.
    const back = Buffer.from(await (await client.files.content(file.id)).arrayBuffer());
    assert.equal(sha256(back), sha256(data));
    // A completion sent again (its answer lost) answers the same file.
    const again = await client.uploads.complete(upload.id, { part_ids: ids, md5: md5(data) });
    assert.equal(again.file!.id, done.file!.id);
  });

  test('part_ids out of order are caught by the md5; a wrong size, an unknown part and a bad md5 are 400s naming the field', async () => {
    const data = randomBytes(300_000);
    const upload = await client.uploads.create({ bytes: data.length, filename: 'a.txt', mime_type: 'text/plain', purpose: 'user_data' });
    const ids = await sendParts(client, upload.id, data, 3);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ part_ids: [ids[1], ids[0], ids[2]], md5: md5(data) }, 'md5'],
      [{ part_ids: ids.slice(0, 2) }, 'part_ids'],
      [{ part_ids: [...ids.slice(0, 2), 'part_nope'] }, 'part_ids[2]'],
      [{ part_ids: ids, md5: 'xyz' }, 'md5'],
      [{ part_ids: ids, bogus: 1 }, 'bogus'],
    ];
    for (const [body, param] of cases) {
      await assert.rejects(
        client.uploads.complete(upload.id, body as any),
        (e: any) => e.status === 400 && e.param === param,
        JSON.stringify(body),
      );
    }
    assert.equal(
      await ferry.services.staging.size(`${(await ferry.services.uploads.get(upload.id))!.file_id}.parts`),
      null,
      'no manifest is left',
    );
    // Still pending: the right order completes it; a part sent but not named is not the file's, and goes.
    const [spare] = await sendParts(client, upload.id, randomBytes(1000), 1);
    const spareKey = (await ferry.services.uploads.parts(upload.id)).get(spare)!.staging_key;
    assert.equal((await client.uploads.complete(upload.id, { part_ids: ids, md5: md5(data) })).status, 'completed');
    assert.equal(await ferry.services.staging.size(spareKey), null, 'the part not named is deleted');
  });

  test('a part of exactly 64 MiB (the default part size of the SDKs) is taken; one byte more is a 413', async () => {
    const data = randomBytes(64 * 1024 * 1024 + 1);
    const upload = await client.uploads.create({ bytes: data.length - 1, filename: 'p.bin', mime_type: 'video/mp4', purpose: 'user_data' });
    const part = await client.uploads.parts.create(upload.id, { data: await toFile(data.subarray(1), 'p0') });
    assert.match(part.id, /^part_/);
    await assert.rejects(client.uploads.parts.create(upload.id, { data: await toFile(data, 'p1') }), (e: any) => e.status === 413);
    await client.uploads.cancel(upload.id);
  });

  test('create refuses what Gemini cannot take before any part is sent', async () => {
    await assert.rejects(
      client.uploads.create({ bytes: 10, filename: 'x.exe', mime_type: 'application/x-msdownload', purpose: 'user_data' }),
      (e: any) => e.status === 415,
    );
    await assert.rejects(
      client.uploads.create({ bytes: 3 * 1024 ** 3, filename: 'big.mp4', mime_type: 'video/mp4', purpose: 'user_data' }),
      (e: any) => e.status === 413 && /FERRY_MAX_FILE_BYTES/.test(e.message),
    );
    await assert.rejects(
      client.uploads.create({ bytes: 9 * 1024 ** 3, filename: 'big.mp4', mime_type: 'video/mp4', purpose: 'user_data' }),
      (e: any) => e.status === 400 && e.param === 'bytes',
    );
  });

  test('cancel deletes the parts; a part or a completion after it is a 400 saying it was cancelled', async () => {
    const data = randomBytes(50_000);
    const upload = await client.uploads.create({ bytes: data.length, filename: 'c.txt', mime_type: 'text/plain', purpose: 'user_data' });
    const [partId] = await sendParts(client, upload.id, data, 1);
    const parts = await ferry.services.uploads.parts(upload.id);
    const staged = parts.get(partId)!.staging_key;
    assert.equal(await ferry.services.staging.size(staged), data.length);
    const cancelled = await client.uploads.cancel(upload.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(await ferry.services.staging.size(staged), null, 'the part is deleted');
    await assert.rejects(
      client.uploads.parts.create(upload.id, { data: await toFile(data, 'late') }),
      (e: any) => e.status === 400 && e.code === 'upload_cancelled',
    );
    await assert.rejects(client.uploads.complete(upload.id, { part_ids: [partId] }), (e: any) => e.code === 'upload_cancelled');
  });

  test('an upload not completed within its hour expires and its parts are deleted', async () => {
    const data = randomBytes(20_000);
    const upload = await client.uploads.create({ bytes: data.length, filename: 'e.txt', mime_type: 'text/plain', purpose: 'user_data' });
    const [partId] = await sendParts(client, upload.id, data, 1);
    const staged = (await ferry.services.uploads.parts(upload.id)).get(partId)!.staging_key;
    assert.ok((await expireUploads(ferry.services, upload.created_at + 3601)) >= 1);
    assert.equal(await ferry.services.staging.size(staged), null);
    await assert.rejects(client.uploads.complete(upload.id, { part_ids: [partId] }), (e: any) => e.code === 'upload_expired');
  });

  test("another tenant's upload id is a 404", async () => {
    const upload = await client.uploads.create({ bytes: 5, filename: 'mine.txt', mime_type: 'text/plain', purpose: 'user_data' });
    const other = ferry.client(KEYS.b);
    await assert.rejects(
      other.uploads.parts.create(upload.id, { data: await toFile(Buffer.from('hello'), 'x') }),
      (e: any) => e.status === 404,
    );
    await assert.rejects(other.uploads.cancel(upload.id), (e: any) => e.status === 404);
  });

  test(
    'a completion killed between any two of its writes: sent again, it makes the one file, queued once',
    { timeout: 60_000 },
    async () => {
      for (const step of COMPLETE_STEPS) {
        const data = randomBytes(30_000);
        const upload = await client.uploads.create({
          bytes: data.length,
          filename: `k-${step}.txt`,
          mime_type: 'text/plain',
          purpose: 'user_data',
        });
        const ids = await sendParts(client, upload.id, data, 2);
        const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/complete-child.ts'], {
          cwd: path.resolve(import.meta.dirname, '..'),
          env: { ...process.env, ...ferry.env, FERRY_CRASH_AT: step, UPLOAD_ID: upload.id, PART_IDS: JSON.stringify(ids) },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const signal = await new Promise((r) => child.once('exit', (_c, sig) => r(sig)));
        assert.equal(signal, 'SIGKILL', `killed at ${step}`);
        const again = await client.uploads.complete(upload.id, { part_ids: ids, md5: md5(data) });
        assert.equal(again.status, 'completed', step);
        assert.equal(again.file!.id, (await ferry.services.uploads.get(upload.id))!.file_id, `${step}: the file named at creation`);
        const file = await processedFile(client, again.file!.id);
        assert.equal(file.sha256, sha256(data), step);
        const mine = (await client.files.list({ purpose: 'user_data' } as any)).data.filter((f) => f.filename === `k-${step}.txt`);
        assert.equal(mine.length, 1, `${step}: one file`);
      }
    },
  );

  test('parts sent through two API processes make one file', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const second = spawnFerry('api', { ...ferry.env, PORT: String(port) });
    try {
      await eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok, 30_000, 'the second API');
      const other = new OpenAI({ apiKey: KEYS.a, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
      const data = randomBytes(400_000);
      const upload = await client.uploads.create({
        bytes: data.length,
        filename: 'two.txt',
        mime_type: 'text/plain',
        purpose: 'user_data',
      });
      const half = data.length / 2;
      const [first, last] = await Promise.all([
        client.uploads.parts.create(upload.id, { data: await toFile(data.subarray(0, half), 'a') }),
        other.uploads.parts.create(upload.id, { data: await toFile(data.subarray(half), 'b') }),
      ]);
      const done = await other.uploads.complete(upload.id, { part_ids: [first.id, last.id], md5: md5(data) });
      assert.equal((done.file as any).sha256, sha256(data));
      assert.equal(second.exitCode, null, 'the second API is still running');
    } finally {
      second.kill('SIGTERM');
      await new Promise((r) => (second.exitCode !== null ? r(null) : second.once('exit', r)));
    }
  });
});
