import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, spawnFerry, startFerry, writeRandomFile, type Ferry } from './harness.js';

const MIB = 1024 * 1024;
const SIZE = 64 * MIB + 123_457;
const CHUNK = 8 * MIB;

async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

let ferry: Ferry;
before(async () => {
  // API here; workers run as separate processes so one can be killed.
  ferry = await startFerry({ workers: false, env: { FERRY_UPLOAD_CHUNK_BYTES: String(CHUNK), FERRY_JOB_LOCK_MS: '2000' } });
});
after(() => ferry.close());

test('a worker killed with SIGKILL mid-upload is replaced; the upload resumes, not restarts', { timeout: 120_000 }, async () => {
  const file = path.join(ferry.tmp, 'big-video.mp4');
  await writeRandomFile(file, SIZE);
  const expected = await fileSha256(file);
  // Slow each chunk down so the kill lands mid-upload.
  ferry.emulator.setFaults([{ route: 'upload.chunk', kind: 'latency', latencyMs: 250 }]);

  const first = spawnFerry('worker', ferry.env);
  const created = await ferry.client().files.create({ file: createReadStream(file), purpose: 'user_data' });
  const rec = await eventually(
    async () => {
      const r = await ferry.services.files.get(created.id);
      return r && r.upload_offset >= 3 * CHUNK ? r : null;
    },
    60_000,
    'three chunks acknowledged',
  );
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  const offsetAtKill = (await ferry.services.files.get(created.id))!.upload_offset;
  assert.ok(offsetAtKill < SIZE, 'killed before the upload finished');
  assert.ok(rec.upload_url, 'the session URL was recorded');

  ferry.emulator.setFaults([]);
  const second = spawnFerry('worker', ferry.env);
  try {
    const res = await ferry.fetch(`/v1/files/${created.id}?wait=90`);
    const done = await res.json();
    assert.equal(done.status, 'processed', JSON.stringify(done));
    assert.equal(done.sha256, expected);
    const stats = ferry.emulator.stats();
    const received = stats.bytesByFile[done.provider_file];
    assert.ok(received >= SIZE, 'every byte arrived');
    assert.ok(received <= SIZE + CHUNK, `bytes sent at most once plus one chunk: ${received} for ${SIZE}`);
    // The emulator's own hash of what it holds equals the original's.
    const upstream = await (await fetch(`${ferry.emulator.url}/v1beta/${done.provider_file}?key=k`)).json();
    const raw = Buffer.from(upstream.sha256Hash, 'base64');
    const hex = raw.length === 32 ? raw.toString('hex') : raw.toString('utf8');
    assert.equal(hex, expected);
    assert.equal(Object.keys(stats.bytesBySession).length, 1, 'one upload session, resumed');
  } finally {
    second.kill('SIGTERM');
    await new Promise((r) => second.once('exit', r));
  }
});

test('SIGTERM lets a worker stop cleanly with exit code 0', { timeout: 60_000 }, async () => {
  const w = spawnFerry('worker', ferry.env);
  await eventually(async () => (await ferry.services.queues.upload.getWorkersCount()) > 0, 20_000, 'worker up');
  w.kill('SIGTERM');
  const code = await new Promise((r) => w.once('exit', (c) => r(c)));
  assert.equal(code, 0);
});
