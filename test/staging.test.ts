/** The staging store's sequential reader: the bytes of every range, read ahead or not, are the staged ones. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { HEAD_BYTES, LocalStagingStore } from '../src/core/staging.js';
import { JsonlSink } from '../src/worker/batch-output.js';

let dir: string;
let store: LocalStagingStore;
const bytes = randomBytes(10_000);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-staging-'));
  store = new LocalStagingStore(dir);
  await store.write('f', Readable.from([bytes]));
});
after(() => rm(dir, { recursive: true, force: true }));

async function collect(slices: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const s of slices) parts.push(Buffer.from(s)); // copied: the slice's memory is reused
  return Buffer.concat(parts);
}

test('ranges in order, a range again from an earlier offset (a resume), and a short last range', async () => {
  const reader = store.reader('f', Buffer.alloc(1024));
  try {
    const ranges: Array<[number, number]> = [
      [0, 2499],
      [2500, 4999], // starts where the read ahead did
      [1000, 1999], // a resume: the read ahead at 5000 is dropped
      [2000, 2099], // shorter than the read ahead
      [2100, 9999],
      [9999, 9999],
    ];
    for (const [start, end] of ranges) {
      assert.ok((await collect(reader.read({ start, end }))).equals(bytes.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }
  } finally {
    await reader.close();
  }
});

test('a range past the end of the staged bytes is an error, not short data', async () => {
  const reader = store.reader('f', Buffer.alloc(4096));
  try {
    await assert.rejects(collect(reader.read({ start: 9000, end: 10_500 })), /end before 10501/);
  } finally {
    await reader.close();
  }
});

test('a source that fails before the store reads it fails the write, leaves nothing and raises nothing else', async () => {
  // The store makes its directory first: the failure lands before the stream has a reader.
  const source = new PassThrough();
  const writing = store.write('early', source);
  source.destroy(new Error('the caller gave up'));
  await assert.rejects(writing, /the caller gave up/);
  assert.equal(await store.size('early'), null);
});

test('a JSONL sink aborted before the store has taken up its stream fails its write and nothing else', async () => {
  const sink = new JsonlSink(store, 'aborted');
  sink.abort(new Error('asked again later'));
  await assert.rejects(sink.done);
  assert.equal(await store.size('aborted'), null);
});

test('a write answers the bytes, sha256 and head of what it stored, from a source of buffers or of strings', async () => {
  const big = await store.write('tally', Readable.from([bytes.subarray(0, 3000), bytes.subarray(3000)]));
  assert.deepEqual(big, {
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    head: bytes.subarray(0, HEAD_BYTES),
  });
  const text = await store.write('text', Readable.from(['{"a":1}\n', 'é\n']));
  const expected = Buffer.from('{"a":1}\né\n');
  assert.deepEqual(text, { bytes: expected.length, sha256: createHash('sha256').update(expected).digest('hex'), head: expected });
  assert.ok((await readFile(path.join(dir, 'text'))).equals(expected));
});

test('writes a killed process left unfinished are swept once long idle; finished and growing ones stay', async () => {
  const sub = new LocalStagingStore(path.join(dir, 'sweep'));
  await sub.write('kept', Readable.from([Buffer.from('done')]));
  await mkdir(sub.dir, { recursive: true });
  const dead = path.join(sub.dir, 'file-dead.live.part');
  const growing = path.join(sub.dir, 'file-growing.live.part');
  await writeFile(dead, 'half');
  await writeFile(growing, 'half');
  const hourAgo = new Date(Date.now() - 2 * 3600_000);
  await utimes(dead, hourAgo, hourAgo);
  assert.equal(await sub.sweepUnfinished(3600_000), 1);
  assert.deepEqual((await readdir(sub.dir)).sort(), ['file-growing.live.part', 'kept']);
});

test('a followed write is read as it grows and on through its rename', async () => {
  const source = new PassThrough();
  const writing = store.write('followed', source, { followable: true });
  const first = randomBytes(300_000);
  source.write(first);
  let followed = null;
  while (!followed) followed = await store.follow('followed', Buffer.alloc(64 * 1024));
  while ((await followed.landed()) < first.length) await new Promise((r) => setTimeout(r, 5));
  const second = randomBytes(200_000);
  source.end(second);
  await writing;
  assert.equal(await followed.landed(), 500_000);
  const all = await collect(followed.read({ start: 0, end: 499_999 }));
  await followed.close();
  assert.ok(all.equals(Buffer.concat([first, second])));
});
