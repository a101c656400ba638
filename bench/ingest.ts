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

/** Answers every POST, once its body is read, with a file object of the bytes it counted. */
const DRAIN_SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  let n = 0;
  req.on('data', (c) => { n += c.length; });
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ id: 'file-drain', object: 'file', bytes: n, created_at: 0, filename: 'f', purpose: 'user_data', status: 'uploaded' }));
  });
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('draining on ' + process.env.PORT));
`;

export interface IngestRuns {
  drainMs: number[];
  ferryMs: number[];
}

export async function startDrain(scope: Scope): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const proc = spawnNode(scope, 'drain', ['-e', DRAIN_SERVER], { PORT: String(port) });
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
  file: string,
  size: number,
  rounds: number,
  quiet: () => Promise<void>,
  log: (line: string) => void,
): Promise<IngestRuns> {
  const runs: IngestRuns = { drainMs: [], ferryMs: [] };
  const client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 });
  for (let r = 1; r <= rounds; r++) {
    const drained = await sdkUpload(drainUrl, 'drain', file);
    runs.drainMs.push(drained.ms);
    log(`  SDK → drain #${r}   ${(drained.ms / 1000).toFixed(2)} s`);
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
