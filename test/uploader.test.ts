/**
 * The resumable uploader against a server that answers a chunk before it has read it (a front end
 * that refuses early, then drains the body): the retry must send exactly the file's bytes, though
 * its chunks are read into the same buffer the refused request was sending from.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { LocalStagingStore } from '../src/core/staging.js';
import { GeminiUploader } from '../src/providers/gemini/uploader.js';

const CHUNK = 4 * 1024 * 1024;
const bytes = randomBytes(3 * CHUNK + 12345);
let dir: string;
let store: LocalStagingStore;
let server: http.Server;
let base: string;
let received = Buffer.alloc(0);
let chunkRequests = 0;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-uploader-'));
  store = new LocalStagingStore(dir);
  await store.write('f', Readable.from([bytes]));
  server = http.createServer((req, res) => {
    const command = String(req.headers['x-goog-upload-command'] ?? '');
    if (req.url === '/upload/v1beta/files') {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'x-goog-upload-url': `${base}/upload/session`, 'x-goog-upload-status': 'active' }).end());
      return;
    }
    if (command === 'query') {
      req.resume();
      res.writeHead(200, { 'x-goog-upload-status': 'active', 'x-goog-upload-size-received': String(received.length) }).end();
      return;
    }
    chunkRequests++;
    if (chunkRequests === 2) {
      // Refused before reading, then drained slowly: the sender may go on writing for a while.
      res
        .writeHead(503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 503, message: 'busy', status: 'UNAVAILABLE' } }));
      req.on('data', () => {
        req.pause();
        setTimeout(() => req.resume(), 5);
      });
      return;
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const offset = Number(req.headers['x-goog-upload-offset']);
      if (offset !== received.length) return void res.writeHead(400).end('{"error":{"code":400,"message":"wrong offset"}}');
      received = Buffer.concat([received, ...parts]);
      if (!command.includes('finalize')) return void res.writeHead(200, { 'x-goog-upload-status': 'active' }).end();
      res.writeHead(200, { 'x-goog-upload-status': 'final', 'content-type': 'application/json' }).end(
        JSON.stringify({
          file: {
            name: 'files/abc',
            uri: `${base}/v1beta/files/abc`,
            mimeType: 'application/octet-stream',
            sizeBytes: String(received.length),
            state: 'ACTIVE',
          },
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

test('a chunk refused before it was read is sent again whole, and the file arrives intact', async () => {
  const uploader = new GeminiUploader('k', base, CHUNK, { attempts: 5, baseMs: 1, maxMs: 5 });
  const reader = store.reader('f', Buffer.allocUnsafe(256 * 1024));
  try {
    const file = await uploader.upload({
      size: bytes.length,
      mimeType: 'application/octet-stream',
      displayName: 'f',
      source: (start, end) => reader.read({ start, end }),
      session: null,
      onProgress: async () => true,
    });
    assert.equal(file.name, 'files/abc');
    assert.equal(chunkRequests, 5, 'four chunks and the refused one');
    assert.equal(received.length, bytes.length);
    assert.ok(received.equals(bytes), 'the bytes that arrived are the file');
  } finally {
    await reader.close();
    uploader.close();
  }
});
