/**
 * Staged bytes in an Azure Blob container (FERRY_STAGING_CONTAINER), on Azurite: the store's
 * contract, then Ferry through the openai SDK with its staging in the container. Every request
 * Ferry makes to the storage service goes through a logging proxy, so the tests see which bytes
 * passed between Ferry and the service, and which did not.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import OpenAI, { toFile } from 'openai';
import { loadConfig } from '../src/core/config.js';
import { nowSeconds } from '../src/core/time.js';
import { BlobStagingStore, createBlobStagingStore } from '../src/providers/azure/staging.js';
import { HEAD_BYTES } from '../src/core/staging.js';
import { geminiSha256Hex } from '../src/providers/gemini/files.js';
import { sweepExpiredContent } from '../src/worker/maintenance.js';
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  startAzurite,
  startDelayProxy,
  type Azurite,
  type DelayProxy,
  type ProxiedRequest,
} from './azurite.js';
import { createBatch, idsOf, requests, results, waitFinal } from './batch-helpers.js';
import { eventually, startFerry, type Ferry } from './harness.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let azurite: Azurite;
let proxy: DelayProxy;
before(async () => {
  azurite = await startAzurite();
  proxy = await startDelayProxy(azurite.endpoint);
});
after(async () => {
  await proxy.close();
  await azurite.stop();
});

/** Ferry reaches the account through the proxy; the tests look at Azurite directly. */
const proxiedConnectionString = () =>
  `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${proxy.endpoint};`;

const containerOf = (name: string): ContainerClient =>
  new BlobServiceClient(azurite.endpoint, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)).getContainerClient(name);

async function committedBlobs(container: string): Promise<string[]> {
  const names: string[] = [];
  const c = containerOf(container);
  if (!(await c.exists())) return names;
  for await (const b of c.listBlobsFlat()) names.push(b.name);
  return names.sort();
}

async function downloaded(container: string, name: string): Promise<Buffer> {
  return containerOf(container).getBlockBlobClient(name).downloadToBuffer();
}

/** Requests the proxy saw for one blob, from `since` (an index into its log) on. */
const requestsFor = (container: string, blob: string, since = 0): ProxiedRequest[] =>
  proxy.log.slice(since).filter((r) => r.path === `/${AZURITE_ACCOUNT}/${container}/${blob}`);

/** Body bytes that went either way in those requests: only data transfers carry many. */
const bytesMoved = (reqs: ProxiedRequest[]) => reqs.reduce((n, r) => n + r.sentBytes + r.receivedBytes, 0);

async function collect(slices: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const s of slices) parts.push(Buffer.from(s)); // copied: the slice's memory is reused
  return Buffer.concat(parts);
}

const streamOf = (r: Readable) => collect(r);

/** `bytes` as a stream of pieces of `piece` bytes. */
const piecesOf = (bytes: Buffer, piece: number) =>
  Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
    })(),
  );

describe('the blob staging store', () => {
  const CONTAINER = 'ferry-stage-unit';
  const BLOCK = 64 * KIB;
  const IN_FLIGHT = 2;
  let store: BlobStagingStore;
  before(() => {
    const config = loadConfig({ AZURE_STORAGE_CONNECTION_STRING: proxiedConnectionString(), FERRY_STAGING_CONTAINER: CONTAINER });
    store = createBlobStagingStore(config, { blockBytes: BLOCK, blocksInFlight: IN_FLIGHT, readSegmentBytes: 100_000 });
  });

  test('write streams in blocks and answers bytes and sha256; ranges, size, a second write replaces, delete', async () => {
    const bytes = randomBytes(300_123);
    const since = proxy.log.length;
    assert.deepEqual(await store.write('k1', piecesOf(bytes, 10_000)), {
      bytes: bytes.length,
      sha256: sha256(bytes),
      head: bytes.subarray(0, HEAD_BYTES),
    });
    const blocks = requestsFor(CONTAINER, 'k1', since).filter((r) => r.method === 'PUT' && r.comp === 'block');
    assert.ok(blocks.length >= 4, `staged in blocks, not in one request (${blocks.length})`);
    assert.ok(
      blocks.every((b) => b.sentBytes <= BLOCK + 10_000),
      'each block about the block size',
    );
    assert.ok((await downloaded(CONTAINER, 'k1')).equals(bytes));

    assert.equal(await store.size('k1'), bytes.length);
    assert.equal(await store.size('absent'), null);
    assert.ok((await streamOf(store.read('k1'))).equals(bytes), 'the whole blob');
    for (const [start, end] of [
      [0, 0],
      [BLOCK - 1, BLOCK + 10],
      [200_000, 300_122],
      [300_122, 300_122],
    ]) {
      assert.ok((await streamOf(store.read('k1', { start, end }))).equals(bytes.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }

    const second = Buffer.from('a shorter second version\n');
    assert.deepEqual(await store.write('k1', Readable.from([second])), {
      bytes: second.length,
      sha256: sha256(second),
      head: second.subarray(0, HEAD_BYTES),
    });
    assert.equal(await store.size('k1'), second.length);
    assert.ok((await streamOf(store.read('k1'))).equals(second));

    const empty = await store.write('empty', Readable.from([]));
    assert.deepEqual(empty, { bytes: 0, sha256: sha256(Buffer.alloc(0)), head: Buffer.alloc(0) });
    assert.equal(await store.size('empty'), 0);

    await store.delete('k1');
    assert.equal(await store.size('k1'), null);
    await store.delete('k1');
    await store.delete('never-written');
    assert.ok(!(await committedBlobs(CONTAINER)).includes('k1'));
  });

  test('the sequential reader: ranges in order, a resume, a short last range, and a range past the end', async () => {
    const bytes = randomBytes(350_000);
    await store.write('seq', Readable.from([bytes]));
    const reader = store.reader('seq', Buffer.alloc(32 * KIB));
    try {
      const ranges: Array<[number, number]> = [
        [0, 99_999], // one segment
        [100_000, 249_999], // from the segment read ahead into the next
        [50_000, 60_000], // a resume: what was read ahead is dropped
        [60_001, 60_001],
        [60_002, 349_999], // to the last byte
        [349_999, 349_999],
      ];
      for (const [start, end] of ranges) {
        assert.ok((await collect(reader.read({ start, end }))).equals(bytes.subarray(start, end + 1)), `bytes ${start}-${end}`);
      }
      await assert.rejects(collect(reader.read({ start: 300_000, end: 350_000 })), /end before 350001/);
    } finally {
      await reader.close();
    }
  });

  test('a source that fails midway leaves no blob; nor does a commit that fails', async () => {
    const failing = Readable.from(
      (async function* () {
        yield randomBytes(3 * BLOCK);
        throw new Error('the client went away');
      })(),
    );
    await assert.rejects(store.write('cut', failing), /the client went away/);
    assert.equal(await store.size('cut'), null);

    // Failing before the store reads it: a new store first makes sure of its container.
    const config = loadConfig({ AZURE_STORAGE_CONNECTION_STRING: proxiedConnectionString(), FERRY_STAGING_CONTAINER: CONTAINER });
    const early = new PassThrough();
    const writing = createBlobStagingStore(config).write('early', early);
    early.destroy(new Error('the caller gave up'));
    await assert.rejects(writing, /the caller gave up/);
    assert.equal(await store.size('early'), null);

    const since = proxy.log.length;
    proxy.failCommits = 1;
    await assert.rejects(store.write('uncommitted', Readable.from([randomBytes(2 * BLOCK)])), /400/);
    const seen = requestsFor(CONTAINER, 'uncommitted', since);
    assert.ok(
      seen.some((r) => r.comp === 'blocklist' && r.status === 400),
      'the commit reached the service, its answer was lost',
    );
    assert.ok(
      seen.some((r) => r.method === 'DELETE'),
      'so the blob it may have committed is deleted',
    );
    assert.equal(await store.size('uncommitted'), null);
    const left = await committedBlobs(CONTAINER);
    assert.ok(!left.includes('cut') && !left.includes('uncommitted'), `left: ${left.join(', ')}`);
  });

  test('memory stays bounded: the source is read only as fast as blocks are staged', async () => {
    const PIECE = 16 * KIB;
    const total = 2 * MIB;
    const since = proxy.log.length;
    const acknowledged = () =>
      requestsFor(CONTAINER, 'slow', since)
        .filter((r) => r.comp === 'block')
        .reduce((n, r) => n + r.sentBytes, 0);
    let pulled = 0;
    let most = 0;
    const source = Readable.from(
      (function* () {
        for (; pulled < total; pulled += PIECE) {
          most = Math.max(most, pulled - acknowledged());
          yield randomBytes(PIECE);
        }
      })(),
      { highWaterMark: 1 },
    );
    proxy.delayMs = 40; // each block is acknowledged slowly
    try {
      assert.equal((await store.write('slow', source)).bytes, total);
    } finally {
      proxy.delayMs = 0;
    }
    // Gathering one block, and IN_FLIGHT staging; each may exceed the block size by one piece.
    const bound = (IN_FLIGHT + 1) * (BLOCK + PIECE) + 2 * PIECE;
    assert.ok(most <= bound, `at most ${most} bytes read and not yet acknowledged (bound ${bound}, file ${total})`);
  });

  test('writes in parallel share the block buffers of the store: memory stays that of a few, whatever their number', async () => {
    const config = loadConfig({ AZURE_STORAGE_CONNECTION_STRING: proxiedConnectionString(), FERRY_STAGING_CONTAINER: CONTAINER });
    const BUDGET = 3;
    const WRITES = 6;
    const shared = createBlobStagingStore(config, { blockBytes: BLOCK, blocksInFlight: 4, blocksInProcess: BUDGET });
    const PIECE = 16 * KIB;
    const each = 1 * MIB;
    const since = proxy.log.length;
    const acknowledged = () =>
      proxy.log
        .slice(since)
        .filter((r) => r.comp === 'block' && r.path.startsWith(`/${AZURITE_ACCOUNT}/${CONTAINER}/parallel-`))
        .reduce((n, r) => n + r.sentBytes, 0);
    let pulled = 0;
    let most = 0;
    const source = () =>
      Readable.from(
        (function* () {
          for (let mine = 0; mine < each; mine += PIECE) {
            pulled += PIECE;
            most = Math.max(most, pulled - acknowledged());
            yield randomBytes(PIECE);
          }
        })(),
        { highWaterMark: 1 },
      );
    proxy.delayMs = 40;
    try {
      const written = await Promise.all(Array.from({ length: WRITES }, (_, i) => shared.write(`parallel-${i}`, source())));
      assert.ok(written.every((w) => w.bytes === each));
    } finally {
      proxy.delayMs = 0;
    }
    assert.ok(shared.blockBuffers <= BUDGET, `${shared.blockBuffers} block buffers allocated (budget ${BUDGET})`);
    // The budget staging, and each write gathering one block: not 4 in flight for each of the 6.
    const bound = (BUDGET + WRITES) * (BLOCK + PIECE) + 2 * PIECE;
    assert.ok(most <= bound, `at most ${most} bytes read and not yet acknowledged (bound ${bound}, ${WRITES} writes)`);
    await Promise.all(Array.from({ length: WRITES }, (_, i) => shared.delete(`parallel-${i}`)));
  });
});

describe('Ferry with its staging in a blob container', () => {
  const STAGING = 'ferry-staging';
  const FILES = 'ferry-files';
  // Over two staging blocks (4 MiB), so a refused upload has blocks staged before the limit is met.
  const MAX = 10 * MIB;
  let ferry: Ferry;
  let client: OpenAI;
  before(async () => {
    ferry = await startFerry({
      env: {
        FERRY_STAGING_CONTAINER: STAGING,
        AZURE_STORAGE_CONNECTION_STRING: proxiedConnectionString(),
        AZURE_STORAGE_FILE_SYSTEM: FILES,
        FERRY_MAX_FILE_BYTES: String(MAX),
        FERRY_UPLOAD_CHUNK_BYTES: String(MIB),
      },
    });
    client = ferry.client();
  });
  after(() => ferry.close());

  async function settled(id: string) {
    const res = await ferry.fetch(`/v1/files/${id}?wait=30`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, 'processed', body.status_details);
    return body;
  }

  const contentOf = async (id: string) => Buffer.from(await (await client.files.content(id)).arrayBuffer());

  test('an upload lands in the container, reaches Gemini from there, and /content reads it back', async () => {
    assert.ok(ferry.services.staging.inner instanceof BlobStagingStore);
    const bytes = randomBytes(3 * MIB + 5);
    const since = proxy.log.length;
    const created = await client.files.create({ file: await toFile(bytes, 'clip.mp4'), purpose: 'user_data' });
    assert.ok((await downloaded(STAGING, created.id)).equals(bytes), 'the staged blob holds the upload');
    assert.deepEqual(await readdir(ferry.config.stagingDir).catch(() => []), [], 'nothing staged on this machine');

    const done = await settled(created.id);
    assert.equal(ferry.emulator.stats().bytesByFile[done.provider_file], bytes.length);
    const upstream = await (await fetch(`${ferry.emulator.url}/v1beta/${done.provider_file}?key=k`)).json();
    assert.equal(geminiSha256Hex(upstream.sha256Hash), sha256(bytes), 'Gemini holds the original bytes');
    const reads = requestsFor(STAGING, created.id, since).filter((r) => r.method === 'GET' && r.comp === '');
    assert.ok(bytesMoved(reads) >= bytes.length, 'the worker read the staged blob through the proxy');

    assert.ok((await contentOf(created.id)).equals(bytes));
  });

  test('an Uploads API file: its parts are staged blobs, read in order on the way to Gemini, deleted with the file', async () => {
    const bytes = randomBytes(3 * MIB + 7);
    const upload = await client.uploads.create({
      bytes: bytes.length,
      filename: 'parts.mp4',
      mime_type: 'video/mp4',
      purpose: 'user_data',
    });
    const cut = [0, MIB + 3, 2 * MIB + 11, bytes.length];
    const parts = await Promise.all(
      [0, 1, 2].map(async (i) =>
        client.uploads.parts.create(upload.id, { data: await toFile(bytes.subarray(cut[i], cut[i + 1]), `p${i}`) }),
      ),
    );
    const done = await client.uploads.complete(upload.id, { part_ids: parts.map((p) => p.id) });
    const file = await settled(done.file!.id);
    const upstream = await (await fetch(`${ferry.emulator.url}/v1beta/${file.provider_file}?key=k`)).json();
    assert.equal(geminiSha256Hex(upstream.sha256Hash), sha256(bytes), 'Gemini holds the parts in order');
    assert.ok((await contentOf(file.id)).equals(bytes));
    const staged = (await committedBlobs(STAGING)).filter((n) => n.startsWith(file.id));
    assert.equal(staged.length, 4, `three parts and their manifest: ${staged.join(', ')}`);
    await client.files.delete(file.id);
    await eventually(async () => (await committedBlobs(STAGING)).every((n) => !n.startsWith(file.id)), 10_000, 'the parts deleted');
  });

  test('an azure_storage upload is copied by the service: no byte of it passes through the worker', async () => {
    const bytes = randomBytes(2 * MIB + 7);
    const since = proxy.log.length;
    const created = await client.files.create({
      file: await toFile(bytes, 'doc.pdf'),
      purpose: 'user_data',
      target_storage: 'azure_storage',
    } as any);
    const done = await settled(created.id);
    const blobPath = `tenant-a/${created.id}/doc.pdf`;
    assert.equal(done.provider_state, 'stored');
    assert.equal(done.bytes_uploaded, bytes.length);
    assert.equal(done.uri, `${proxy.endpoint}/${FILES}/${blobPath}`);
    const job = await ferry.services.queues.upload.getJob(`upload-${created.id}`);
    assert.deepEqual(job?.returnvalue, { stored: blobPath, copied: 'server-side' });

    const target = containerOf(FILES).getBlockBlobClient(blobPath);
    assert.ok((await target.downloadToBuffer()).equals(bytes));
    const props = await target.getProperties();
    assert.equal(props.contentType, 'application/pdf');
    assert.deepEqual(props.metadata, {
      ferry_file_id: created.id,
      ferry_tenant: 'tenant-a',
      sha256: sha256(bytes),
      original_name: 'doc.pdf',
    });

    const staged = requestsFor(STAGING, created.id, since);
    const toTarget = requestsFor(FILES, blobPath, since);
    assert.deepEqual(
      staged.filter((r) => r.method === 'GET' && r.comp === ''),
      [],
      'the staged blob was never downloaded',
    );
    assert.deepEqual(
      toTarget.filter((r) => r.comp === 'block'),
      [],
      'no block was uploaded to the target',
    );
    const copies = toTarget.filter((r) => r.copySource !== '');
    assert.equal(copies.length, 1);
    assert.equal(new URL(copies[0].copySource).pathname, `/${AZURITE_ACCOUNT}/${STAGING}/${created.id}`);
    assert.ok(new URL(copies[0].copySource).searchParams.get('sig'), 'the source is read through a SAS');
    assert.ok(bytesMoved(toTarget) < 64 * KIB, `only requests and answers, ${bytesMoved(toTarget)} bytes, for a ${bytes.length}-byte file`);

    // The copy stands on its own: with the staged bytes gone, /content reads the target blob.
    await ferry.services.staging.delete(created.id);
    await ferry.services.files.update(created.id, { content_deleted: true });
    assert.ok((await contentOf(created.id)).equals(bytes));
  });

  test('a file over the synchronous copy limit is copied asynchronously, polled until it ends', async () => {
    const azure = ferry.runtime!.azure!;
    azure.syncCopyMaxBytes = MIB;
    try {
      const bytes = randomBytes(MIB + 1);
      const since = proxy.log.length;
      const created = await client.files.create({
        file: await toFile(bytes, 'big.pdf'),
        purpose: 'user_data',
        target_storage: 'azure_storage',
      } as any);
      await settled(created.id);
      const blobPath = `tenant-a/${created.id}/big.pdf`;
      assert.ok((await containerOf(FILES).getBlockBlobClient(blobPath).downloadToBuffer()).equals(bytes));
      assert.equal((await containerOf(FILES).getBlockBlobClient(blobPath).getProperties()).contentType, 'application/pdf');
      assert.equal(requestsFor(FILES, blobPath, since).filter((r) => r.copySource !== '').length, 1);
      assert.equal(bytesMoved(requestsFor(STAGING, created.id, since).filter((r) => r.method === 'GET' && r.comp === '')), 0);
      const metrics = await (await ferry.fetch('/metrics', { key: null })).text();
      assert.match(metrics, /ferry_upstream_calls_total\{provider="azure",operation="blob\.startCopyFromURL",status="\d+"\} [1-9]/);
    } finally {
      azure.syncCopyMaxBytes = 256 * MIB;
    }
  });

  test('a refused upload (413 over FERRY_MAX_FILE_BYTES) leaves nothing in the container', async () => {
    const before = await committedBlobs(STAGING);
    const since = proxy.log.length;
    const form = new FormData();
    // Within the declared-length allowance, so it is refused while streaming, blocks already staged.
    form.append('file', new Blob([randomBytes(MAX + 512 * KIB)], { type: 'video/mp4' }), 'too-big.mp4');
    form.append('purpose', 'user_data');
    const res = await ferry.fetch('/v1/files', { method: 'POST', body: form });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.type, 'invalid_request_error');
    const staged = proxy.log.slice(since).filter((r) => r.path.startsWith(`/${AZURITE_ACCOUNT}/${STAGING}/`));
    assert.ok(
      staged.some((r) => r.comp === 'block'),
      'blocks were staged before the limit was met',
    );
    assert.deepEqual(
      staged.filter((r) => r.comp === 'blocklist'),
      [],
      'never committed',
    );
    assert.deepEqual(await committedBlobs(STAGING), before);
  });

  test('deleting a file removes its staged blob', async () => {
    const created = await client.files.create({ file: await toFile(Buffer.from('short-lived\n'), 'gone.txt'), purpose: 'user_data' });
    await settled(created.id);
    const staged = containerOf(STAGING).getBlockBlobClient(created.id);
    assert.equal(await staged.exists(), true);
    await client.files.delete(created.id);
    await eventually(async () => !(await staged.exists()), 10_000, 'staged blob deleted');
  });

  for (const execution of ['direct', 'gemini_batch'] as const) {
    test(`a ${execution} batch reads its input from the container and writes its output file there`, async () => {
      const lines = requests(3, execution);
      const created = await createBatch(client, lines, '24h', undefined, execution);
      const batch = await waitFinal(client, created.id, 30);
      assert.equal(batch.status, 'completed');
      assert.equal((await results(client, batch, idsOf(lines))).out.length, 3);
      const output = await downloaded(STAGING, batch.output_file_id!);
      assert.equal(output.toString().trim().split('\n').length, 3, 'the output file is a blob of the container');
      assert.deepEqual(await readdir(ferry.config.stagingDir).catch(() => []), []);
    });
  }

  test('retention: the sweep deletes staged blobs, and /content then answers 410', async () => {
    const created = await client.files.create({ file: await toFile(Buffer.from('kept a while\n'), 'kept.txt'), purpose: 'user_data' });
    await settled(created.id);
    assert.equal(await containerOf(STAGING).getBlockBlobClient(created.id).exists(), true);
    await sweepExpiredContent(ferry.services, nowSeconds() + ferry.config.contentRetentionSeconds + 60);
    assert.equal(await containerOf(STAGING).getBlockBlobClient(created.id).exists(), false);
    await assert.rejects(client.files.content(created.id), (err: unknown) => err instanceof OpenAI.APIError && err.status === 410);
  });
});
