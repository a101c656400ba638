/**
 * Ingest: how fast the openai SDK's `files.create` gets a large file into Ferry's API, against
 * the same SDK call to a plain server that only drains the body (the client's own ceiling on
 * this machine, measured in the same run). Rounds alternate the two, and each Ferry round waits
 * until its file is processed and the processes are idle, so one round's worker leg never
 * overlaps the next round's ingest.
 */
import { createReadStream } from 'node:fs';
import OpenAI from 'openai';
import { freePort, now, sleep, spawnNode, waitFor, type Proc, type Scope, type Stack } from './lib.js';

/**
 * Answers every POST, once its body is read, with a file object of the bytes it counted. With
 * STORE_DIR set it is the bare store instead: what any service that keeps an upload must do and
 * nothing more (busboy's parse, a sha256, the file written to STORE_DIR, then deleted).
 */
const DRAIN_SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const store = process.env.STORE_DIR;
const answer = (res, n) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ id: 'file-drain', object: 'file', bytes: n, created_at: 0, filename: 'f', purpose: 'user_data', status: 'uploaded' }));
};
let seq = 0;
http.createServer((req, res) => {
  let n = 0;
  if (!store) {
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => answer(res, n));
    return;
  }
  const bb = require('busboy')({ headers: req.headers });
  let written = Promise.resolve();
  bb.on('file', (_name, stream) => {
    const hash = crypto.createHash('sha256');
    const file = path.join(store, 'bare-' + process.pid + '-' + seq++);
    const out = fs.createWriteStream(file, { highWaterMark: 1 << 20 });
    stream.on('data', (c) => { n += c.length; hash.update(c); });
    stream.pipe(out);
    written = new Promise((resolve) => out.on('close', resolve)).then(() => { hash.digest('hex'); fs.rmSync(file, { force: true }); });
  });
  bb.on('close', () => written.then(() => answer(res, n)));
  req.pipe(bb);
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('draining on ' + process.env.PORT));
`;

export interface IngestRuns {
  drainMs: number[];
  ferryMs: number[];
  /** The same call to the bare store (parse, hash, write to the staging disk): the floor of any service that keeps the bytes. */
  bareMs: number[];
  /** With blob staging: the Azure SDK staging the same file into the same Azurite (the store's ceiling). */
  plainStageMs: number[];
}

/** A draining server, or with `storeDir` the bare store writing there. */
export async function startDrain(scope: Scope, storeDir?: string): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const proc = spawnNode(scope, storeDir ? 'bare-store' : 'drain', ['-e', DRAIN_SERVER], {
    PORT: String(port),
    ...(storeDir ? { STORE_DIR: storeDir } : {}),
  });
  const url = `http://127.0.0.1:${port}/v1`;
  await waitFor('the drain server to listen', async () => (proc.tail().includes('draining on') ? true : null), { timeoutMs: 10_000 });
  return { url, proc };
}

async function sdkUpload(baseURL: string, apiKey: string, file: string): Promise<{ ms: number; id: string; bytes: number }> {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30 * 60_000 });
  const t0 = now();
  const f = await client.files.create({ file: createReadStream(file), purpose: 'user_data' });
  return { ms: now() - t0, id: f.id, bytes: f.bytes };
}

/** `rounds` of (SDK → drain, SDK → Ferry then wait until processed); `quiet` runs between steps. */
export async function measureIngest(
  stack: Stack,
  drainUrl: string,
  bareUrl: string | null,
  file: string,
  size: number,
  rounds: number,
  quiet: () => Promise<void>,
  log: (line: string) => void,
  stagePlain: ((file: string) => Promise<number>) | null = null,
): Promise<IngestRuns> {
  const runs: IngestRuns = { drainMs: [], ferryMs: [], bareMs: [], plainStageMs: [] };
  const client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 });
  for (let r = 1; r <= rounds; r++) {
    const drained = await sdkUpload(drainUrl, 'drain', file);
    runs.drainMs.push(drained.ms);
    log(`  SDK → drain #${r}   ${(drained.ms / 1000).toFixed(2)} s`);
    if (bareUrl) {
      await sleep(500);
      runs.bareMs.push((await sdkUpload(bareUrl, 'bare', file)).ms);
      log(`  SDK → bare store #${r}   ${(runs.bareMs[r - 1] / 1000).toFixed(2)} s`);
    }
    if (stagePlain) {
      runs.plainStageMs.push(await stagePlain(file));
      log(`  Azure SDK → Azurite #${r}   ${(runs.plainStageMs[r - 1] / 1000).toFixed(2)} s`);
    }
    await sleep(500);
    const ferry = await sdkUpload(`${stack.apiUrl}/v1`, stack.apiKey, file);
    if (ferry.bytes !== size) throw new Error(`Ferry staged ${ferry.bytes} bytes, not ${size}`);
    runs.ferryMs.push(ferry.ms);
    log(`  SDK → Ferry #${r}   ${(ferry.ms / 1000).toFixed(2)} s (${ferry.id})`);
    await waitProcessed(client, ferry.id);
    await client.files.delete(ferry.id);
    await quiet();
  }
  return runs;
}

async function waitProcessed(client: OpenAI, id: string): Promise<void> {
  for (;;) {
    const f = await client.files.retrieve(id, { query: { wait: 60 } } as never);
    if (f.status === 'processed') return;
    if (f.status === 'error') throw new Error(`file ${id} failed: ${f.status_details}`);
  }
}

export interface PartedRun {
  parts: number;
  concurrency: number;
  /** Creation to the last part staged. */
  partsMs: number;
  /** The /complete call: the parts read once in order to hash them. */
  completeMs: number;
  /** Completed to processed (the worker's upload of the parts, read in order). */
  workerMs: number;
  totalMs: number;
}

/**
 * A file sent through the Uploads API as the SDK's users send a large one: parts of `partBytes`,
 * `concurrency` at a time, each read from its slice of the file, then completed and waited for.
 */
export async function measureParted(stack: Stack, file: string, size: number, partBytes: number, concurrency: number): Promise<PartedRun> {
  const client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0, timeout: 30 * 60_000 });
  const t0 = now();
  const upload = await client.uploads.create({ bytes: size, filename: 'bench-parted.mp4', mime_type: 'video/mp4', purpose: 'user_data' });
  const count = Math.ceil(size / partBytes);
  const ids: string[] = new Array(count);
  let next = 0;
  const sender = async () => {
    for (let i = next++; i < count; i = next++) {
      const start = i * partBytes;
      const end = Math.min(size, start + partBytes) - 1;
      const part = await client.uploads.parts.create(upload.id, { data: createReadStream(file, { start, end }) });
      ids[i] = part.id;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, sender));
  const t1 = now();
  const done = await client.uploads.complete(upload.id, { part_ids: ids });
  const t2 = now();
  if (!done.file || done.file.bytes !== size) throw new Error(`the completed upload holds ${done.file?.bytes} bytes, not ${size}`);
  await waitProcessed(client, done.file.id);
  const t3 = now();
  await client.files.delete(done.file.id);
  return { parts: count, concurrency, partsMs: t1 - t0, completeMs: t2 - t1, workerMs: t3 - t2, totalMs: t3 - t0 };
}
