/**
 * Cloud Storage objects named by `url` (gs://bucket/object), through the process users run (`ferry
 * all`, as `npm start` runs it, at the default log level). Registering one with Gemini takes OAuth
 * credentials besides the API key: the service gets them from GOOGLE_APPLICATION_CREDENTIALS through
 * google-auth-library, here an external-account file whose token exchange the emulator answers, so
 * the library's real token path runs. A directory stands in for the bucket.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { Redis } from 'ioredis';
import { startEmulator, type Emulator } from '../src/emulator/index.js';
import { eventually, freePort, spawnFerry } from './harness.js';
import { deleteByPrefix } from './redis-keys.js';

const KEY = 'sk-cloud-storage';
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(5000)]);

describe('files named by gs:// URL, registered with Gemini', () => {
  let tmp: string;
  let emulator: Emulator;
  let child: ChildProcess;
  let client: OpenAI;
  let stagingDir: string;
  const prefix = `ferry-test-${randomBytes(5).toString('hex')}`;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-gcs-'));
    await mkdir(path.join(tmp, 'bucket', 'ferry-docs', 'contracts'), { recursive: true });
    await writeFile(path.join(tmp, 'bucket', 'ferry-docs', 'contracts', 'lease.pdf'), PDF);
    emulator = await startEmulator({ quiet: true, processingDelayMs: 0, gcsDir: path.join(tmp, 'bucket') });
    await writeFile(path.join(tmp, 'subject-token'), 'a-workload-identity-token');
    const credentials = path.join(tmp, 'credentials.json');
    await writeFile(
      credentials,
      JSON.stringify({
        type: 'external_account',
        audience: '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ferry/providers/test',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${emulator.url}/token`,
        credential_source: { file: path.join(tmp, 'subject-token') },
      }),
    );
    const port = await freePort();
    stagingDir = path.join(tmp, 'staging');
    child = spawnFerry('all', {
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      FERRY_REDIS_PREFIX: prefix,
      FERRY_API_KEYS: `${KEY}:gcs`,
      GEMINI_API_KEY: 'emulator-key',
      GEMINI_BASE_URL: emulator.url,
      GOOGLE_APPLICATION_CREDENTIALS: credentials,
      HOST: '127.0.0.1',
      PORT: String(port),
      FERRY_METRICS_PORT: '0',
      FERRY_DATA_DIR: path.join(tmp, 'data'),
      FERRY_STAGING_DIR: stagingDir,
      FERRY_UPSTREAM_ATTEMPTS: '2',
    });
    const base = `http://127.0.0.1:${port}`;
    await eventually(async () => (await fetch(`${base}/readyz`).catch(() => null))?.ok, 60_000, 'ferry to be ready');
    client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0, timeout: 60_000 });
  });

  after(async () => {
    assert.equal(child.exitCode, null, 'ferry is still running after the tests');
    // Stopped before its keys go: a process still shutting down writes some back.
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    await deleteByPrefix(redis, prefix);
    redis.disconnect();
    await emulator.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const settled = async (id: string) => {
    for (;;) {
      const f = (await client.files.retrieve(id, { query: { wait: 30 } })) as OpenAI.FileObject & Record<string, unknown>;
      if (f.status !== 'uploaded') return f;
    }
  };

  test('an object Gemini may read is registered: a Gemini file with no byte uploaded, usable in a response', async () => {
    const url = 'gs://ferry-docs/contracts/lease.pdf';
    const created = await client.post<OpenAI.FileObject>('/files', { body: { purpose: 'user_data', url } });
    const f = await settled(created.id);
    assert.equal(f.status, 'processed', String(f.status_details));
    assert.match(String(f.provider_file), /^files\//);
    assert.equal(f.bytes, PDF.length);
    assert.equal(f.mime_type, 'application/pdf');
    assert.deepEqual(await readdir(stagingDir).catch(() => []), [], 'nothing staged');
    const registered = emulator.stats().requests['files.register'];
    assert.equal(registered, 1);
    assert.equal(emulator.stats().requests['upload.start'], 0, 'no upload to Gemini');
    const r = await client.responses.create({
      model: 'gemini-2.5-flash',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_file', file_id: f.id },
            { type: 'input_text', text: 'Summarize.' },
          ],
        },
      ],
    });
    assert.match(r.output_text, new RegExp(`${String(f.provider_file)}\\(application/pdf,${PDF.length} bytes`));
  });

  test('an object Gemini may not read is fetched from its public address instead, and fails naming it when that cannot be reached', async () => {
    const created = await client.post<OpenAI.FileObject>('/files', {
      body: { purpose: 'user_data', url: 'gs://ferry-docs/private/x.pdf' },
    });
    const f = await settled(created.id);
    assert.equal(f.status, 'error');
    assert.match(String(f.status_details), /storage\.googleapis\.com\/ferry-docs\/private\/x\.pdf/);
  });
});
