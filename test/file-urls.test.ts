/**
 * Files named by URL in a response, through the process users run (`ferry all`, as `npm start`
 * runs it, at the default log level). Gemini fetches public and signed https URLs itself, and
 * whether it will fetch a given URL varies (hosts it cannot reach, sizes it will not take), so both
 * sides are tested: an https URL Gemini fetches (the emulator trusts the test's certificate
 * authority), and one it refuses (an emulator that does not), which the worker then fetches itself
 * through the SSRF guard and sends inline.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { Redis } from 'ioredis';
import { startEmulator, type Emulator } from '../src/emulator/index.js';
import { eventually, freePort, spawnFerry } from './harness.js';
import { deleteByPrefix } from './redis-keys.js';

const KEY = 'sk-file-urls';
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(3000)]);

/** A self-signed certificate for 127.0.0.1, made with the openssl CLI. */
function makeCertificate(dir: string): { key: string; cert: string } {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key, cert };
}

/** Ferry (`ferry all`) against `emulator`, trusting the test's certificate authority for the worker's own fetches. */
async function startFerryProcess(
  emulator: Emulator,
  ca: string,
  prefix: string,
): Promise<{ child: ChildProcess; client: OpenAI; stderr: () => string; stagingDir: string }> {
  const port = await freePort();
  const child = spawnFerry('all', {
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    FERRY_REDIS_PREFIX: prefix,
    FERRY_API_KEYS: `${KEY}:file-urls`,
    GEMINI_API_KEY: 'emulator-key',
    GEMINI_BASE_URL: emulator.url,
    HOST: '127.0.0.1',
    PORT: String(port),
    FERRY_METRICS_PORT: '0',
    FERRY_DATA_DIR: path.join(os.tmpdir(), `${prefix}-data`),
    FERRY_STAGING_DIR: path.join(os.tmpdir(), `${prefix}-staging`),
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1',
    NODE_EXTRA_CA_CERTS: ca,
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const base = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${base}/readyz`).catch(() => null))?.ok, 60_000, 'ferry to be ready');
  return {
    child,
    client: new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0, timeout: 60_000 }),
    stderr: () => stderr,
    stagingDir: path.join(os.tmpdir(), `${prefix}-staging`),
  };
}

describe('files by URL in responses, on `ferry all`', () => {
  let tmp: string;
  let server: https.Server;
  let base: string;
  const served: string[] = [];
  const ferries: Array<{ child: ChildProcess; prefix: string }> = [];
  const emulators: Emulator[] = [];

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-file-urls-'));
    const { key, cert } = makeCertificate(tmp);
    server = https.createServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
      served.push(String(req.url));
      if (req.url?.startsWith('/missing')) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': PDF.length }).end(PDF);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    for (const f of ferries) {
      assert.equal(f.child.exitCode, null, 'ferry is still running after the tests');
      // Stopped before its keys go: a process still shutting down writes some back.
      const exited = new Promise((r) => f.child.once('exit', r));
      f.child.kill('SIGTERM');
      await exited;
      await deleteByPrefix(redis, f.prefix);
    }
    redis.disconnect();
    for (const e of emulators) await e.close();
    server.close();
    await rm(tmp, { recursive: true, force: true });
  });

  async function ferryWith(trusted: boolean) {
    const emulator = await startEmulator({
      quiet: true,
      processingDelayMs: 0,
      ...(trusted ? { fileUriTls: { ca: await readFile(path.join(tmp, 'cert.pem')) } } : {}),
    });
    emulators.push(emulator);
    const prefix = `ferry-test-${randomBytes(5).toString('hex')}`;
    const f = await startFerryProcess(emulator, path.join(tmp, 'cert.pem'), prefix);
    ferries.push({ child: f.child, prefix });
    return f;
  }

  /** A response about one file, named by URL (`file_url`) or by id (`file_id`). */
  const ask = (client: OpenAI, file: string) =>
    client.responses.create({
      model: 'gemini-2.5-flash',
      input: [
        {
          role: 'user',
          content: [
            file.startsWith('file-') ? { type: 'input_file', file_id: file } : { type: 'input_file', file_url: file },
            { type: 'input_text', text: 'What is in it?' },
          ],
        },
      ],
    });

  test('an https URL whose name says its type goes to Gemini as it is, and Gemini fetches it', async () => {
    const { client } = await ferryWith(true);
    served.length = 0;
    const r = await ask(client, `${base}/reports/q3.pdf`);
    assert.equal(r.status, 'completed');
    assert.match(r.output_text, new RegExp(`files=${base.replace(/[.]/g, '\\.')}/reports/q3\\.pdf\\(application/pdf,${PDF.length} bytes`));
    assert.deepEqual(served, ['/reports/q3.pdf'], 'fetched once, by Gemini');
  });

  test('a URL Gemini will not fetch is fetched by the worker and sent inline', async () => {
    const { client, stderr } = await ferryWith(false);
    served.length = 0;
    const r = await ask(client, `${base}/reports/q4.pdf`);
    assert.equal(r.status, 'completed', JSON.stringify(r.error));
    assert.match(r.output_text, new RegExp(`inline=application/pdf\\(${PDF.length} bytes\\)`));
    assert.deepEqual(served, ['/reports/q4.pdf'], 'Gemini could not connect; the worker fetched it once');
    // A name that says no type is fetched by the worker from the start.
    const noType = await ask(client, `${base}/download?id=7`);
    assert.match(noType.output_text, new RegExp(`inline=application/pdf\\(${PDF.length} bytes\\)`));
    assert.doesNotMatch(stderr(), /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace written');
  });

  /** `url` instead of a file, as JSON (the SDK's generic post) or as a form without a file part (files.create). */
  const nameByUrl = (client: OpenAI, url: string, asForm = false) =>
    asForm
      ? client.files.create({ purpose: 'user_data', url } as unknown as OpenAI.FileCreateParams)
      : client.post<OpenAI.FileObject>('/files', { body: { purpose: 'user_data', url } });

  const processed = async (client: OpenAI, id: string) => {
    for (;;) {
      const f = (await client.files.retrieve(id, { query: { wait: 30 } })) as OpenAI.FileObject & Record<string, unknown>;
      if (f.status !== 'uploaded') return f;
    }
  };

  test('a file named by an https URL that Gemini fetches is registered as it is: no byte passes through Ferry', async () => {
    const { client, stagingDir } = await ferryWith(true);
    served.length = 0;
    const url = `${base}/contracts/lease.pdf`;
    const created = (await nameByUrl(client, url)) as OpenAI.FileObject & Record<string, unknown>;
    assert.equal(created.source_url, url);
    assert.equal(created.filename, 'lease.pdf');
    const f = await processed(client, created.id);
    assert.equal(f.status, 'processed', String(f.status_details));
    assert.equal(f.uri, url, 'Gemini reads it at its URL');
    assert.equal(f.provider_file, null, 'no Gemini Files API copy');
    assert.equal(f.bytes, PDF.length);
    assert.equal(f.mime_type, 'application/pdf');
    assert.deepEqual(await readdir(stagingDir).catch(() => []), [], 'nothing staged');
    const r = await ask(client, created.id);
    assert.match(r.output_text, new RegExp(`files=${url.replace(/[.]/g, '\\.')}\\(application/pdf,${PDF.length} bytes`));
    // Ferry read the headers, Gemini fetched it to count it and again to answer.
    assert.ok(served.every((u) => u === '/contracts/lease.pdf'));
    const content = await client.files.content(created.id).catch((e: unknown) => e);
    assert.ok(content instanceof OpenAI.BadRequestError && /named by URL/.test(content.message), String(content));
  });

  test('a file named by a URL Gemini will not fetch is fetched through the guard, staged and uploaded', async () => {
    const { client } = await ferryWith(false);
    const url = `${base}/contracts/deed.pdf`;
    const created = await nameByUrl(client, url, true);
    const f = await processed(client, created.id);
    assert.equal(f.status, 'processed', String(f.status_details));
    assert.match(String(f.provider_file), /^files\//, 'uploaded to the Gemini Files API');
    assert.equal(f.bytes, PDF.length);
    assert.equal(f.sha256, createHash('sha256').update(PDF).digest('hex'));
    const body = Buffer.from(await (await client.files.content(created.id)).arrayBuffer());
    assert.ok(body.equals(PDF), 'the fetched bytes are the file');
    const r = await ask(client, created.id);
    assert.match(r.output_text, new RegExp(`\\(application/pdf,${PDF.length} bytes`));
  });

  test('a URL that cannot be a file is a 400 naming "url"; one that answers 404 ends the file in error saying so', async () => {
    const { client, child } = await ferryWith(true);
    for (const [body, why] of [
      [{ purpose: 'user_data', url: 'ftp://example.com/a.pdf' }, /https or http URL, or gs:\/\/bucket\/object/],
      [{ purpose: 'batch', url: `${base}/a.jsonl` }, /Batch input is sent as a file/],
      [{ purpose: 'user_data', url: `${base}/a.pdf`, bogus: 1 }, /Unknown field "bogus"/],
    ] as const) {
      const err = await client.post('/files', { body }).catch((e: unknown) => e);
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.match(err.message, why);
    }
    const zip = await client.post('/files', { body: { purpose: 'user_data', url: `${base}/bundle.zip` } }).catch((e: unknown) => e);
    assert.ok(zip instanceof OpenAI.APIError && zip.status === 415 && /application\/zip/.test(zip.message), String(zip));
    const both = await client.files
      .create({ file: await toFile(PDF, 'a.pdf'), purpose: 'user_data', url: `${base}/a.pdf` } as unknown as OpenAI.FileCreateParams)
      .catch((e: unknown) => e);
    assert.ok(both instanceof OpenAI.BadRequestError && both.param === 'url' && /not both/.test(both.message), String(both));
    const missing = await nameByUrl(client, `${base}/missing/report.pdf`);
    const f = await processed(client, missing.id);
    assert.equal(f.status, 'error');
    assert.match(String(f.status_details), /missing\/report\.pdf answered 404/);
    assert.equal(child.exitCode, null);
  });
});
