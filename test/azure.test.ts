import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BlobServiceClient, RestError, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import OpenAI, { toFile } from 'openai';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { GoneError } from '../src/core/errors.js';
import { blockId, planBlocks } from '../src/providers/azure/blocks.js';
import { toAzureError } from '../src/providers/azure/errors.js';
import { blobPathOf, missingAzureSettings } from '../src/providers/azure/index.js';
import { sanitizeFilename } from '../src/providers/azure/paths.js';
import { geminiSha256Hex } from '../src/providers/gemini/files.js';
import { ensureGeminiCopy } from '../src/worker/gemini-copy.js';
import type { UploadDeps } from '../src/worker/transfer.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, freePort, startAzurite, startDelayProxy, type Azurite } from './azurite.js';
import { KEYS, eventually, spawnFerry, startFerry, writeRandomFile, type Ferry } from './harness.js';

const MIB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let azurite: Azurite;
before(async () => {
  azurite = await startAzurite();
});
after(() => azurite.stop());

/** The seed's three settings, plus the endpoint (Azurite is not at {account}.blob.core.windows.net). */
const seedEnv = (container: string, extra: Record<string, string> = {}) => ({
  AZURE_STORAGE_ACCOUNT_NAME: AZURITE_ACCOUNT,
  AZURE_STORAGE_ACCOUNT_KEY: AZURITE_KEY,
  AZURE_STORAGE_FILE_SYSTEM: container,
  AZURE_STORAGE_ENDPOINT: azurite.endpoint,
  ...extra,
});

const containerOf = (name: string): ContainerClient =>
  new BlobServiceClient(azurite.endpoint, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)).getContainerClient(name);

async function blobSha256(container: ContainerClient, blobPath: string): Promise<{ sha: string; bytes: number }> {
  const res = await container.getBlockBlobClient(blobPath).download(0);
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.readableStreamBody!) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha: h.digest('hex'), bytes };
}

async function settled(ferry: Ferry, id: string, seconds = 30) {
  const res = await ferry.fetch(`/v1/files/${id}?wait=${seconds}`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.notEqual(body.status, 'uploaded', `file ${id} still uploading after the long-poll`);
  return body;
}

const depsOf = (ferry: Ferry): UploadDeps => ({ services: ferry.services, gemini: ferry.runtime!.gemini, azure: ferry.runtime!.azure });

/** As the content sweep does when retention ends. */
async function dropStagedBytes(ferry: Ferry, id: string) {
  await ferry.services.staging.delete(id);
  await ferry.services.files.update(id, { content_deleted: true });
}

const uploadSessions = (ferry: Ferry) => ferry.emulator.stats().requests['upload.start'];

describe('blob layout and error mapping', () => {
  test('block ids are deterministic, fixed-length and cover the file in chunk-sized blocks', () => {
    assert.equal(blockId(0), blockId(0));
    assert.notEqual(blockId(0), blockId(1));
    assert.equal(new Set([0, 9, 99_999, 49_999].map((i) => blockId(i).length)).size, 1);
    const plan = planBlocks(10 * MIB + 5, 4 * MIB);
    assert.deepEqual(
      plan.map((b) => [b.start, b.end]),
      [
        [0, 4 * MIB],
        [4 * MIB, 8 * MIB],
        [8 * MIB, 10 * MIB + 5],
      ],
    );
  });

  test('blob paths are {tenant}/{file id}/{sanitised filename}', () => {
    assert.equal(sanitizeFilename('Résumé 2024 (final).pdf'), 'Resume_2024_final_.pdf');
    assert.equal(sanitizeFilename('../../etc/passwd'), 'passwd');
    assert.equal(sanitizeFilename('日本語'), 'file');
    assert.equal(blobPathOf({ id: 'file-1', tenant: 't', filename: 'a b.txt', sha256: 'x' }), 't/file-1/a_b.txt');
  });

  test('408, 429, 5xx and network failures are retryable; 403 and a missing account are not, and say what to check', () => {
    const rest = (status: number, code: string) => new RestError(`${code} happened\nRequestId:x`, { statusCode: status, code });
    for (const status of [408, 429, 500, 503]) assert.equal(toAzureError(rest(status, 'ServerBusy')).retryable, true);
    assert.equal(toAzureError(new RestError('socket hang up', { code: 'REQUEST_SEND_ERROR' })).retryable, true);
    const denied = toAzureError(rest(403, 'AuthenticationFailed'));
    assert.equal(denied.retryable, false);
    assert.equal(denied.provider, 'azure');
    assert.match(
      denied.message,
      /^Azure Blob Storage answered 403 AuthenticationFailed: AuthenticationFailed happened \(check AZURE_STORAGE_ACCOUNT_KEY/,
    );
    assert.match(toAzureError(rest(403, 'AuthorizationPermissionMismatch')).message, /Storage Blob Data Contributor/);
    const noAccount = toAzureError(Object.assign(new Error('getaddrinfo ENOTFOUND nosuch.blob.core.windows.net'), { code: 'ENOTFOUND' }));
    assert.equal(noAccount.retryable, false);
    assert.match(noAccount.message, /account not found .*AZURE_STORAGE_ACCOUNT_NAME/);
  });
});

describe('azure_storage through the openai SDK (the seed)', () => {
  const CONTAINER = 'ferry-seed';
  let ferry: Ferry;
  let client: OpenAI;
  before(async () => {
    ferry = await startFerry({ env: seedEnv(CONTAINER, { FERRY_UPLOAD_CHUNK_BYTES: String(MIB) }) });
    client = ferry.client();
  });
  after(() => ferry.close());

  test("the seed's files.create reaches processed; the blob holds the bytes, type and metadata", async () => {
    const file = path.join(ferry.tmp, 'document.pdf');
    await writeRandomFile(file, 2 * MIB + 12_345);
    const original = await readFile(file);
    const created = await client.files.create({
      file: createReadStream(file),
      purpose: 'user_data',
      target_storage: 'azure_storage',
      target_model_names: 'gemini-2.0-flash',
    } as any);
    assert.equal((created as any).storage, 'azure_storage');
    const done = await settled(ferry, created.id);
    assert.equal(done.status, 'processed', done.status_details);
    assert.equal(done.provider_state, 'stored');
    assert.equal(done.bytes_uploaded, original.length);
    const blobPath = `tenant-a/${created.id}/document.pdf`;
    assert.equal(done.uri, `${azurite.endpoint}/${CONTAINER}/${blobPath}`);
    assert.deepEqual(done.target_model_names, ['gemini-2.0-flash']);

    const container = containerOf(CONTAINER);
    const blob = container.getBlockBlobClient(blobPath);
    assert.deepEqual(await blobSha256(container, blobPath), { sha: sha256(original), bytes: original.length });
    const props = await blob.getProperties();
    assert.equal(props.contentType, 'application/pdf');
    assert.deepEqual(props.metadata, {
      ferry_file_id: created.id,
      ferry_tenant: 'tenant-a',
      sha256: sha256(original),
      original_name: 'document.pdf',
    });
    const blocks = await blob.getBlockList('committed');
    assert.deepEqual(
      blocks.committedBlocks?.map((b) => b.size),
      [MIB, MIB, 12_345],
    );
    assert.equal(uploadSessions(ferry), 0, 'nothing went to Gemini at upload');
  });

  test('target_storage as a query parameter; the name is sanitised in the path and kept in metadata', async () => {
    const name = 'Report 2024 (final).txt';
    const bytes = Buffer.from('Ferry carries documents to Azure.\n'.repeat(500));
    const created = await client.files.create(
      { file: await toFile(bytes, name), purpose: 'user_data' },
      { query: { target_storage: 'azure_storage' } },
    );
    const done = await settled(ferry, created.id);
    assert.equal(done.status, 'processed', done.status_details);
    assert.equal(done.storage, 'azure_storage');
    assert.ok(done.uri.endsWith(`/tenant-a/${created.id}/Report_2024_final_.txt`), done.uri);
    const props = await containerOf(CONTAINER).getBlockBlobClient(`tenant-a/${created.id}/Report_2024_final_.txt`).getProperties();
    assert.equal(props.metadata!.original_name, 'Report%202024%20(final).txt');
    assert.equal(decodeURIComponent(props.metadata!.original_name), name);
    assert.equal(props.contentType, 'text/plain');
  });

  test('retrieve, list and content; content comes from the blob once the staged bytes are gone', async () => {
    const bytes = randomBytes(300_000);
    const created = await client.files.create({
      file: await toFile(bytes, 'clip.mp3'),
      purpose: 'user_data',
      target_storage: 'azure_storage',
    } as any);
    await settled(ferry, created.id);
    const got = await client.files.retrieve(created.id);
    assert.equal(got.status, 'processed');
    assert.equal((got as any).storage, 'azure_storage');
    const listed = await client.files.list();
    assert.ok(listed.data.some((f) => f.id === created.id && (f as any).storage === 'azure_storage'));
    assert.deepEqual(Buffer.from(await (await client.files.content(created.id)).arrayBuffer()), bytes);

    await dropStagedBytes(ferry, created.id);
    assert.equal(await ferry.services.staging.size(created.id), null);
    const content = await client.files.content(created.id);
    assert.equal(content.headers.get('content-type'), 'audio/mpeg');
    assert.equal(content.headers.get('content-length'), String(bytes.length));
    assert.deepEqual(Buffer.from(await content.arrayBuffer()), bytes);
  });

  test('delete removes the record and the blob', async () => {
    const created = await client.files.create({
      file: await toFile(Buffer.from('short-lived\n'), 'gone.txt'),
      purpose: 'user_data',
      target_storage: 'azure_storage',
    } as any);
    await settled(ferry, created.id);
    const blob = containerOf(CONTAINER).getBlockBlobClient(`tenant-a/${created.id}/gone.txt`);
    assert.equal(await blob.exists(), true);
    assert.deepEqual(await client.files.delete(created.id), { id: created.id, object: 'file', deleted: true });
    await assert.rejects(client.files.retrieve(created.id), OpenAI.NotFoundError);
    await eventually(async () => !(await blob.exists()), 10_000, 'blob deleted');
  });

  test('transfer hand-off: the blob is streamed into Gemini once, cached, and sent again after it expires', async () => {
    const size = 3 * MIB + 777;
    const bytes = randomBytes(size);
    const created = await client.files.create({
      file: await toFile(bytes, 'talk.wav'),
      purpose: 'user_data',
      target_storage: 'azure_storage',
    } as any);
    await settled(ferry, created.id);
    // The staged bytes are gone: whatever reaches Gemini comes from the blob.
    await dropStagedBytes(ferry, created.id);
    const deps = depsOf(ferry);
    const sessions = uploadSessions(ferry);

    const first = await ensureGeminiCopy(deps, (await ferry.services.files.get(created.id))!);
    const rec = (await ferry.services.files.get(created.id))!;
    assert.match(rec.gemini_name ?? '', /^files\//);
    assert.equal(first.fileUri, rec.gemini_uri);
    assert.ok(first.fileUri.startsWith(ferry.emulator.url), first.fileUri);
    assert.equal(first.mimeType, 'audio/wav');
    assert.equal(ferry.emulator.stats().bytesByFile[rec.gemini_name!], size, 'the emulator received the bytes, once');
    assert.ok(rec.gemini_expires_at! > Date.now() / 1000 + 47 * 3600, 'expiry cached on the record');
    const upstream = await (await fetch(`${ferry.emulator.url}/v1beta/${rec.gemini_name}?key=k`)).json();
    assert.equal(geminiSha256Hex(upstream.sha256Hash), sha256(bytes), 'Gemini holds the original bytes');
    assert.equal(uploadSessions(ferry), sessions + 1);

    const second = await ensureGeminiCopy(deps, (await ferry.services.files.get(created.id))!);
    assert.equal(second.fileUri, first.fileUri);
    assert.equal(uploadSessions(ferry), sessions + 1, 'no second transfer within 48 h');

    ferry.emulator.expireFile(rec.gemini_name!);
    const third = await ensureGeminiCopy(deps, (await ferry.services.files.get(created.id))!);
    const after3 = (await ferry.services.files.get(created.id))!;
    assert.notEqual(third.fileUri, first.fileUri);
    assert.equal(ferry.emulator.stats().bytesByFile[after3.gemini_name!], size);
    assert.equal(uploadSessions(ferry), sessions + 2);

    // Two users at once: one transfer, both get its uri.
    ferry.emulator.expireFile(after3.gemini_name!);
    const stale = (await ferry.services.files.get(created.id))!;
    const [a, b] = await Promise.all([ensureGeminiCopy(deps, stale), ensureGeminiCopy(deps, stale)]);
    assert.equal(a.fileUri, b.fileUri);
    assert.equal(uploadSessions(ferry), sessions + 3, 'exactly one transfer for two concurrent uses');
  });

  test('a gemini file: its copy is used while live, uploaded again from staged bytes once expired, a clear error once those are gone', async () => {
    const bytes = Buffer.from('Gemini keeps files for 48 hours.\n'.repeat(2000));
    const created = await client.files.create({ file: await toFile(bytes, 'notes.txt'), purpose: 'user_data' });
    const done = await settled(ferry, created.id);
    assert.equal(done.storage, 'gemini');
    const deps = depsOf(ferry);
    const sessions = uploadSessions(ferry);

    const live = await ensureGeminiCopy(deps, (await ferry.services.files.get(created.id))!);
    assert.deepEqual(live, { fileUri: done.uri, mimeType: 'text/plain' });
    assert.equal(uploadSessions(ferry), sessions);

    ferry.emulator.expireFile(done.provider_file);
    const again = await ensureGeminiCopy(deps, (await ferry.services.files.get(created.id))!);
    assert.notEqual(again.fileUri, done.uri);
    const rec = (await ferry.services.files.get(created.id))!;
    assert.equal(again.fileUri, rec.gemini_uri);
    assert.equal(ferry.emulator.stats().bytesByFile[rec.gemini_name!], bytes.length);
    assert.equal(uploadSessions(ferry), sessions + 1);
    assert.equal(rec.status, 'processed');

    ferry.emulator.expireFile(rec.gemini_name!);
    await dropStagedBytes(ferry, created.id);
    await assert.rejects(ensureGeminiCopy(deps, (await ferry.services.files.get(created.id))!), (err: Error) => {
      assert.ok(err instanceof GoneError, 'a 410, not an upstream error to retry');
      assert.match(err.message, /expired and its bytes are no longer retained/);
      return true;
    });
  });
});

describe('a worker killed mid-upload resumes from the uncommitted blocks of the blob', () => {
  const CONTAINER = 'ferry-resume';
  const CHUNK = 4 * MIB;
  const SIZE = 64 * MIB + 123_457;
  const BLOCKS = Math.ceil(SIZE / CHUNK);
  let ferry: Ferry;
  let proxy: Awaited<ReturnType<typeof startDelayProxy>>;
  before(async () => {
    proxy = await startDelayProxy(azurite.endpoint);
    ferry = await startFerry({
      workers: false,
      env: seedEnv(CONTAINER, {
        AZURE_STORAGE_ENDPOINT: proxy.endpoint,
        FERRY_UPLOAD_CHUNK_BYTES: String(CHUNK),
        FERRY_JOB_LOCK_MS: '2000',
      }),
    });
  });
  after(async () => {
    await ferry.close();
    await proxy.close();
  });

  test('SIGKILL, then a fresh worker stages only the missing blocks; the blob is byte-identical', { timeout: 120_000 }, async () => {
    const file = path.join(ferry.tmp, 'big-video.mp4');
    await writeRandomFile(file, SIZE);
    const h = createHash('sha256');
    for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
    const expected = h.digest('hex');

    proxy.delayMs = 600; // Each staged block is acknowledged slowly, so the kill lands mid-upload.
    const first = spawnFerry('worker', ferry.env);
    const created = await ferry
      .client()
      .files.create({ file: createReadStream(file), purpose: 'user_data', target_storage: 'azure_storage' } as any);
    await eventually(
      async () => {
        const r = await ferry.services.files.get(created.id);
        return r && r.bytes_uploaded >= 6 * CHUNK;
      },
      60_000,
      'six blocks staged',
    );
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    await new Promise((r) => setTimeout(r, 300));
    const blobPath = `tenant-a/${created.id}/big-video.mp4`;
    const blob = containerOf(CONTAINER).getBlockBlobClient(blobPath);
    const staged = (await blob.getBlockList('uncommitted')).uncommittedBlocks ?? [];
    assert.ok(staged.length >= 6 && staged.length < BLOCKS, `killed mid-upload: ${staged.length} of ${BLOCKS} blocks staged`);
    assert.equal(await blob.exists(), false, 'nothing committed yet');

    proxy.delayMs = 0;
    const metricsPort = await freePort();
    const second = spawnFerry('worker', { ...ferry.env, FERRY_METRICS_PORT: String(metricsPort) });
    try {
      const done = await settled(ferry, created.id, 90);
      assert.equal(done.status, 'processed', done.status_details);
      assert.equal(done.bytes_uploaded, SIZE);
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const m = /ferry_upstream_calls_total\{provider="azure",operation="blob\.stageBlock",status="201"\} (\d+)/.exec(metrics);
      assert.ok(m, 'the fresh worker counts its stageBlock calls');
      assert.equal(Number(m[1]), BLOCKS - staged.length, `the fresh worker staged only the ${BLOCKS - staged.length} missing blocks`);
      assert.deepEqual(await blobSha256(containerOf(CONTAINER), blobPath), { sha: expected, bytes: SIZE });
      const committed = (await blob.getBlockList('committed')).committedBlocks ?? [];
      assert.equal(committed.length, BLOCKS);
    } finally {
      second.kill('SIGTERM');
      await new Promise((r) => second.once('exit', r));
    }
  });
});

describe('transient Azure failures', () => {
  test('a block answered 503 is staged again under the retry policy; the upload completes', async () => {
    const proxy = await startDelayProxy(azurite.endpoint);
    const ferry = await startFerry({
      env: seedEnv('ferry-flaky', { AZURE_STORAGE_ENDPOINT: proxy.endpoint, FERRY_UPLOAD_CHUNK_BYTES: String(MIB) }),
    });
    try {
      const bytes = randomBytes(3 * MIB);
      proxy.failBlocks = 3;
      const created = await ferry.client().files.create({
        file: await toFile(bytes, 'flaky.bin'),
        purpose: 'user_data',
        target_storage: 'azure_storage',
        mime_type: 'video/mp4',
      } as any);
      const done = await settled(ferry, created.id);
      assert.equal(done.status, 'processed', done.status_details);
      assert.equal(proxy.failBlocks, 0, 'the faults were met');
      assert.deepEqual(await blobSha256(containerOf('ferry-flaky'), `tenant-a/${created.id}/flaky.bin`), {
        sha: sha256(bytes),
        bytes: bytes.length,
      });
      const metrics = await (await ferry.fetch('/metrics', { key: null })).text();
      assert.match(metrics, /ferry_upstream_calls_total\{provider="azure",operation="blob\.stageBlock",status="503"\} [3-9]/);
      assert.match(metrics, /ferry_upstream_retries_total\{provider="azure",operation="blob\.stageBlock"\} [3-9]/);
    } finally {
      await ferry.close();
      await proxy.close();
    }
  });
});

describe('signed_url hand-off (connection string settings)', () => {
  const CONTAINER = 'ferry-signed';
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({
      env: {
        AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
        AZURE_STORAGE_FILE_SYSTEM: CONTAINER,
        FERRY_AZURE_HANDOFF: 'signed_url',
      },
    });
  });
  after(() => ferry.close());

  test('a file under the external-URL limit is handed over as a short-lived read-only SAS URL', async () => {
    const bytes = randomBytes(200_000);
    const created = await ferry
      .client()
      .files.create({ file: await toFile(bytes, 'photo.png'), purpose: 'user_data', target_storage: 'azure_storage' } as any);
    const done = await settled(ferry, created.id);
    assert.equal(done.status, 'processed', done.status_details);
    assert.equal(done.uri, `${azurite.endpoint}/${CONTAINER}/tenant-a/${created.id}/photo.png`, 'the file object never carries a SAS');
    const copy = await ensureGeminiCopy(depsOf(ferry), (await ferry.services.files.get(created.id))!);
    const url = new URL(copy.fileUri);
    assert.equal(`${url.origin}${url.pathname}`, done.uri);
    assert.equal(url.searchParams.get('sp'), 'r');
    assert.ok(url.searchParams.get('sig') && url.searchParams.get('se'));
    assert.ok(Date.parse(url.searchParams.get('se')!) <= Date.now() + 31 * 60_000, 'expires within about half an hour');
    assert.deepEqual(Buffer.from(await (await fetch(copy.fileUri)).arrayBuffer()), bytes);
    const write = await fetch(copy.fileUri, { method: 'PUT', body: 'x', headers: { 'x-ms-blob-type': 'BlockBlob' } });
    assert.equal(write.status, 403, 'read-only');
    assert.equal(uploadSessions(ferry), 0, 'nothing transferred');
  });

  test('a file over the limit is transferred instead', { timeout: 120_000 }, async () => {
    const file = path.join(ferry.tmp, 'long.mp4');
    const size = 100 * 1000 * 1000 + 1;
    await writeRandomFile(file, size);
    const created = await ferry
      .client()
      .files.create({ file: createReadStream(file), purpose: 'user_data', target_storage: 'azure_storage' } as any);
    assert.equal((await settled(ferry, created.id, 90)).status, 'processed');
    const copy = await ensureGeminiCopy(depsOf(ferry), (await ferry.services.files.get(created.id))!);
    assert.ok(copy.fileUri.startsWith(ferry.emulator.url), copy.fileUri);
    const rec = (await ferry.services.files.get(created.id))!;
    assert.equal(ferry.emulator.stats().bytesByFile[rec.gemini_name!], size);
  });
});

describe('bad Azure configuration and input', () => {
  test('a wrong account key (Azurite answers 403) ends the file in error with a clear status', async () => {
    const ferry = await startFerry({
      env: seedEnv('ferry-badkey', { AZURE_STORAGE_ACCOUNT_KEY: Buffer.from('not the account key').toString('base64') }),
    });
    try {
      const created = await ferry
        .client()
        .files.create({ file: await toFile(Buffer.from('x\n'), 'a.txt'), purpose: 'user_data', target_storage: 'azure_storage' } as any);
      const done = await settled(ferry, created.id);
      assert.equal(done.status, 'error');
      assert.equal(done.provider_state, 'failed');
      assert.match(done.status_details, /Azure Blob Storage answered 403 AuthorizationFailure/);
      assert.match(done.status_details, /AZURE_STORAGE_ACCOUNT_KEY/);
      const job = await ferry.services.queues.upload.getJob(`upload-${created.id}`);
      assert.equal(job?.attemptsMade, 1, 'not retried');
    } finally {
      await ferry.close();
    }
  });

  test('a missing container without FERRY_AZURE_CREATE_CONTAINER says so', async () => {
    const ferry = await startFerry({ env: seedEnv('ferry-absent', { FERRY_AZURE_CREATE_CONTAINER: '0' }) });
    try {
      const created = await ferry
        .client()
        .files.create({ file: await toFile(Buffer.from('x\n'), 'a.txt'), purpose: 'user_data', target_storage: 'azure_storage' } as any);
      const done = await settled(ferry, created.id);
      assert.equal(done.status, 'error');
      assert.match(done.status_details, /404 ContainerNotFound.*FERRY_AZURE_CREATE_CONTAINER/);
    } finally {
      await ferry.close();
    }
  });

  test('missing settings: 400 at upload naming them, nothing kept', async () => {
    const ferry = await startFerry({ workers: false });
    try {
      const form = () => {
        const f = new FormData();
        f.append('file', new Blob(['hello\n'], { type: 'text/plain' }), 'a.txt');
        f.append('purpose', 'user_data');
        return f;
      };
      const viaField = form();
      viaField.append('target_storage', 'azure_storage');
      for (const res of [
        await ferry.fetch('/v1/files', { method: 'POST', body: viaField }),
        await ferry.fetch('/v1/files?target_storage=azure_storage', { method: 'POST', body: form() }),
      ]) {
        assert.equal(res.status, 400);
        const body = await res.json();
        assert.equal(body.error.param, 'target_storage');
        assert.equal(body.error.code, 'azure_storage_not_configured');
        assert.match(body.error.message, /AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_FILE_SYSTEM are not set/);
      }
      await assert.rejects(
        ferry
          .client()
          .files.create({ file: await toFile(Buffer.from('x'), 'a.txt'), purpose: 'user_data', target_storage: 'azure_storage' } as any),
        OpenAI.BadRequestError,
      );
      assert.deepEqual((await (await ferry.fetch('/v1/files')).json()).data, []);
      assert.deepEqual(await readdir(ferry.config.stagingDir).catch(() => []), []);
    } finally {
      await ferry.close();
    }
    const only = (env: Record<string, string>) => missingAzureSettings(loadConfig(env).azure);
    assert.deepEqual(only({ AZURE_STORAGE_ACCOUNT_NAME: 'acct', AZURE_STORAGE_ACCOUNT_KEY: 'k' }), ['AZURE_STORAGE_FILE_SYSTEM']);
    assert.deepEqual(only({ AZURE_STORAGE_FILE_SYSTEM: 'docs', AZURE_STORAGE_ACCOUNT_KEY: 'k' }), ['AZURE_STORAGE_ACCOUNT_NAME']);
    assert.deepEqual(only({ AZURE_STORAGE_FILE_SYSTEM: 'docs', AZURE_STORAGE_ACCOUNT_NAME: 'acct' }), [], 'no key: DefaultAzureCredential');
    assert.deepEqual(only({ AZURE_STORAGE_FILE_SYSTEM: 'docs', AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true' }), []);
  });

  test('an invalid container name stops start-up with a ConfigError naming AZURE_STORAGE_FILE_SYSTEM', async () => {
    for (const name of ['Bad_Container', 'ab', 'double--hyphen', '-leading']) {
      assert.throws(
        () => loadConfig({ AZURE_STORAGE_FILE_SYSTEM: name }),
        (err: unknown) => err instanceof ConfigError && err.variable === 'AZURE_STORAGE_FILE_SYSTEM' && err.message.includes(name),
      );
    }
    const child = spawnFerry('worker', { FERRY_API_KEYS: `${KEYS.a}:t`, AZURE_STORAGE_FILE_SYSTEM: 'Bad_Container' });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 2);
    assert.match(stderr, /configuration error: AZURE_STORAGE_FILE_SYSTEM/);
  });
});
