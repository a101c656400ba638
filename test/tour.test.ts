/**
 * A tour of the process users run: `npm start` as a child process at the default log level,
 * with an admin key, visited on every route the README documents — as a tenant, as the admin
 * and without a key — including the Bull Board dashboard, its assets and JSON API. Nothing a
 * user can reach may answer 5xx, write a stack trace or take the process down.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import type { BatchCreateParams } from 'openai/resources/batches';
import { cleanUpSpawned, freePort } from './harness.js';

const root = path.resolve(import.meta.dirname, '..');
const MODEL = 'gemini-2.0-flash';
const KEY_A = 'sk-tour-a';
const KEY_B = 'sk-tour-b';
const ADMIN = 'sk-tour-admin';
/** A line of a JavaScript stack trace. */
const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

describe('a tour of `npm start`', () => {
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let base: string;
  let tmp: string;
  let prefix: string;
  let stdout = '';
  let stderr = '';
  const visited: Array<{ what: string; status: number }> = [];

  /** One request; every answer is recorded, and a 5xx fails the tour at the end. */
  async function call(
    what: string,
    method: string,
    pathname: string,
    opts: { key?: string | null; basic?: string; json?: unknown; body?: BodyInit; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers = new Headers(opts.headers);
    const key = opts.key === undefined ? KEY_A : opts.key;
    if (key) headers.set('authorization', `Bearer ${key}`);
    if (opts.basic) headers.set('authorization', `Basic ${Buffer.from(`admin:${opts.basic}`).toString('base64')}`);
    let body = opts.body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    }
    const res = await fetch(`${base}${pathname}`, { method, headers, body, redirect: 'manual' });
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON (a page, an asset, metrics)
    }
    visited.push({ what: `${what}: ${method} ${pathname}`, status: res.status });
    if (res.status >= 400 && pathname.startsWith('/v1')) {
      assert.deepEqual(Object.keys(json?.error ?? {}).sort(), ['code', 'message', 'param', 'type'], `${what}: OpenAI's error shape`);
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  const sdk = (key = KEY_A) => new OpenAI({ apiKey: key, baseURL: `${base}/v1`, maxRetries: 0, timeout: 60_000 });

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-tour-'));
    prefix = `ferry-tour-${randomBytes(4).toString('hex')}`;
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = { ...process.env };
    // The defaults a user gets: log level info, the embedded emulator, no private networks.
    for (const k of ['FERRY_LOG_LEVEL', 'GEMINI_API_KEY', 'GEMINI_BASE_URL', 'WEBHOOK_ALLOW_PRIVATE_NETWORKS', 'NODE_ENV', 'HOST'])
      delete env[k];
    Object.assign(env, {
      PORT: String(port),
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      FERRY_REDIS_PREFIX: prefix,
      FERRY_API_KEYS: `${KEY_A}:tour-a,${KEY_B}:tour-b`,
      FERRY_ADMIN_KEY: ADMIN,
      FERRY_DATA_DIR: path.join(tmp, 'data'),
      FERRY_STAGING_DIR: path.join(tmp, 'staging'),
      FERRY_EMULATOR_PROCESSING_MS: '50',
      FERRY_METRICS_PORT: '0',
    });
    child = spawn('npm', ['start'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 90_000;
    for (;;) {
      assert.equal(child.exitCode, null, `npm start exited early:\n${stdout}\n${stderr}`);
      const ok = await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      assert.ok(Date.now() < deadline, `npm start did not become ready:\n${stdout}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  after(() => cleanUpSpawned({ child, prefix, dirs: [tmp] }));

  test('the banner says how to reach it, the bind address, the admin dashboard and the private-URL setting', () => {
    assert.match(stderr, /API: +http:\/\/127\.0\.0\.1:\d+/);
    assert.match(stderr, /Listens: 127\.0\.0\.1 only/);
    assert.match(stderr, /dashboard at http:\/\/127\.0\.0\.1:\d+\/admin\/queues/);
    assert.match(stderr, /WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 allows/);
  });

  test('npx ferry runs the built command, as the README says', () => {
    const run = spawnSync('npx', ['ferry', 'submit'], { cwd: root, encoding: 'utf8' });
    assert.equal(run.status, 2, `npx ferry: ${run.stderr}`);
    assert.match(run.stderr, /usage: npx ferry submit/);
  });

  test('without a key: operations answer, everything else is 401 or 404', async () => {
    assert.equal((await call('liveness', 'GET', '/healthz', { key: null })).status, 200);
    assert.equal((await call('readiness', 'GET', '/readyz', { key: null })).status, 200);
    assert.match((await call('metrics', 'GET', '/metrics', { key: null })).text, /ferry_http_requests_total/);
    for (const [method, p] of [
      ['GET', '/v1/files'],
      ['POST', '/v1/chat/completions'],
      ['POST', '/v1/responses'],
      ['GET', '/v1/responses/resp_nope'],
      ['POST', '/v1/embeddings'],
      ['GET', '/v1/models'],
      ['GET', '/v1/jobs'],
      ['GET', '/v1/batches'],
      ['GET', '/v1/webhook_endpoints'],
      ['GET', '/v1/webhook_deliveries'],
      ['GET', '/v1/no-such-thing'],
    ]) {
      assert.equal((await call('no key', method, p, { key: null })).status, 401);
    }
    const board = await call('no key', 'GET', '/admin/queues', { key: null });
    assert.equal(board.status, 401);
    assert.match(board.headers.get('www-authenticate') ?? '', /Basic/);
    assert.equal((await call('tenant on the dashboard', 'GET', '/admin/queues', { key: KEY_A })).status, 401);
    assert.equal((await call('unknown route', 'GET', '/no/such/route', { key: null })).status, 404);
  });

  let fileId = '';
  let jobId = '';
  test('files as a tenant: upload, wait, list, content, refusals', async () => {
    const src = path.join(tmp, 'notes.txt');
    await writeFile(src, 'Ferry tour notes.\n'.repeat(100));
    const f = await sdk().files.create({ file: createReadStream(src), purpose: 'user_data' });
    fileId = f.id;
    const done = await call('file wait', 'GET', `/v1/files/${fileId}?wait=20`);
    assert.equal(done.json.status, 'processed');
    assert.equal((await call('file list', 'GET', '/v1/files?limit=5&order=asc')).json.object, 'list');
    assert.equal((await call('file content', 'GET', `/v1/files/${fileId}/content`)).text, 'Ferry tour notes.\n'.repeat(100));
    // A download read halfway and dropped, as a closed tab does: a warning, not an error line.
    const big = await sdk().files.create({ file: await toFile(Buffer.alloc(16 * 1024 * 1024, 'a'), 'big.txt'), purpose: 'user_data' });
    const dropped = new AbortController();
    const download = await fetch(`${base}/v1/files/${big.id}/content`, {
      headers: { authorization: `Bearer ${KEY_A}` },
      signal: dropped.signal,
    });
    await download.body!.getReader().read();
    dropped.abort();
    await new Promise((r) => setTimeout(r, 200));
    // A wrong key on an upload streamed from disk: the client is still sending when the 401 comes.
    const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${base}/v1`, maxRetries: 0 });
    const refusals = await Promise.all(
      Array.from({ length: 10 }, () =>
        wrong.files.create({ file: createReadStream(src), purpose: 'user_data' }).then(
          () => 'accepted',
          (err: InstanceType<typeof OpenAI.APIError>) =>
            err.status ? String(err.status) : `${err.message} ${(err.cause as Error)?.message}`,
        ),
      ),
    );
    assert.deepEqual([...new Set(refusals)], ['401'], 'a 401, not a connection reset');
    assert.equal((await call('file as JSON', 'POST', '/v1/files', { json: { purpose: 'user_data' } })).status, 400);
    assert.equal((await call('bad list limit', 'GET', '/v1/files?limit=0')).status, 400);
    assert.equal((await call('unknown file', 'GET', '/v1/files/file-nope')).status, 404);
  });

  test('chat completions: synchronous with a file, streamed, asynchronous and polled, refusals', async () => {
    const answer = await sdk().chat.completions.create({
      model: MODEL,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Summarise.' },
            { type: 'file', file: { file_id: fileId } },
          ],
        },
      ],
    });
    assert.equal(answer.object, 'chat.completion');
    let streamed = '';
    const stream = await sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'Hello tour' }] });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    assert.ok(streamed.length > 0);
    const accepted = await call('async completion', 'POST', '/v1/chat/completions', {
      json: { model: MODEL, messages: [{ role: 'user', content: 'later' }] },
      headers: { prefer: 'respond-async', 'idempotency-key': 'tour-1' },
    });
    assert.equal(accepted.status, 202);
    jobId = accepted.json.id;
    assert.equal(accepted.headers.get('location'), `/v1/jobs/${jobId}`);
    assert.equal((await call('job wait', 'GET', `/v1/jobs/${jobId}?wait=20`)).json.status, 'succeeded');
    assert.equal((await call('job list', 'GET', '/v1/jobs?status=succeeded&limit=10')).json.object, 'list');
    assert.equal((await call('cancel a finished job', 'POST', `/v1/jobs/${jobId}/cancel`)).status, 409);
    const noType = await call('JSON without its Content-Type', 'POST', '/v1/chat/completions', {
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(noType.status, 415);
    assert.match(noType.json.error.message, /Content-Type: application\/json/);
    assert.equal(
      (await call('bad JSON', 'POST', '/v1/chat/completions', { body: '{', headers: { 'content-type': 'application/json' } })).status,
      400,
    );
    assert.equal((await call('unknown model', 'POST', '/v1/chat/completions', { json: { model: 'gpt-4o', messages: [] } })).status, 400);
    assert.equal((await call('wrong method', 'DELETE', '/v1/chat/completions')).status, 404);
  });

  test('responses: direct, streamed, in the background, and what follows; embeddings; models', async () => {
    const input = [
      {
        role: 'user',
        content: [
          { type: 'input_file', file_id: fileId },
          { type: 'input_text', text: 'Summarise.' },
        ],
      },
    ];
    const direct = await call('response', 'POST', '/v1/responses', { json: { model: 'gemini-2.5-flash', input } });
    assert.equal(direct.json.status, 'completed', JSON.stringify(direct.json.error));
    const streamed = await call('streamed response', 'POST', '/v1/responses', {
      json: { model: 'gemini-2.5-flash', input: 'Hi.', stream: true },
    });
    assert.match(streamed.text, /event: response\.completed/);
    const bg = await call('background response', 'POST', '/v1/responses', {
      json: { model: 'gemini-2.5-flash', input: 'Later.', background: true, previous_response_id: direct.json.id },
    });
    assert.equal(bg.json.status, 'queued');
    assert.equal((await call('response wait', 'GET', `/v1/responses/${bg.json.id}?wait=20`)).json.status, 'completed');
    assert.equal((await call('input items', 'GET', `/v1/responses/${bg.json.id}/input_items?limit=5`)).json.object, 'list');
    assert.equal((await call('cancel a finished response', 'POST', `/v1/responses/${bg.json.id}/cancel`)).status, 409);
    assert.equal((await call('stream of a direct response', 'GET', `/v1/responses/${direct.json.id}?stream=true`)).status, 400);
    assert.equal((await call('other tenant response', 'GET', `/v1/responses/${direct.json.id}`, { key: KEY_B })).status, 404);
    assert.equal((await call('admin response', 'GET', `/v1/responses/${direct.json.id}`, { key: ADMIN })).status, 200);
    assert.equal((await call('response delete', 'DELETE', `/v1/responses/${bg.json.id}`)).json.deleted, true);
    assert.equal(
      (
        await call('hosted tool', 'POST', '/v1/responses', {
          json: { model: 'gemini-2.5-flash', input: 'x', tools: [{ type: 'web_search' }] },
        })
      ).status,
      400,
    );
    assert.equal(
      (await call('bad response JSON', 'POST', '/v1/responses', { body: '{', headers: { 'content-type': 'application/json' } })).status,
      400,
    );
    const emb = await call('embeddings', 'POST', '/v1/embeddings', {
      json: { model: 'gemini-embedding-001', input: ['a', 'b'], dimensions: 8 },
    });
    assert.equal(emb.json.data.length, 2);
    assert.equal(
      (await call('embeddings with a chat model', 'POST', '/v1/embeddings', { json: { model: 'gemini-2.5-flash', input: 'a' } })).status,
      400,
    );
    assert.ok((await call('models', 'GET', '/v1/models')).json.data.length > 0);
    assert.equal((await call('unknown model id', 'GET', '/v1/models/gemini-9')).status, 404);
  });

  test('batches: create, wait, read the output, list, cancel an ended one', async () => {
    const lines = ['a', 'b', 'c'].map((id) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: MODEL, messages: [{ role: 'user', content: `line ${id}` }] },
      }),
    );
    const src = path.join(tmp, 'requests.jsonl');
    await writeFile(src, lines.join('\n'));
    const input = await sdk().files.create({ file: createReadStream(src), purpose: 'batch' });
    const batch = await sdk().batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const done = await call('batch wait', 'GET', `/v1/batches/${batch.id}?wait=30`);
    assert.equal(done.json.status, 'completed');
    const out = await call('batch output', 'GET', `/v1/files/${done.json.output_file_id}/content`);
    assert.equal(out.text.trim().split('\n').length, 3);
    assert.equal((await call('batch list', 'GET', '/v1/batches?limit=5')).json.object, 'list');
    assert.equal((await call('cancel an ended batch', 'POST', `/v1/batches/${batch.id}/cancel`)).status, 409);
    assert.equal((await call('batch without input', 'POST', '/v1/batches', { json: { endpoint: '/v1/chat/completions' } })).status, 400);
  });

  test('a Gemini Batch Mode batch whose file was uploaded just before, as ferry submit sends them', async () => {
    const doc = await sdk().files.create({ file: await toFile(Buffer.from('a contract'), 'contract.txt'), purpose: 'user_data' });
    const line = (id: string, content: unknown) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: MODEL, messages: [{ role: 'user', content }] },
      });
    const jsonl = [line('doc', [{ type: 'file', file: { file_id: doc.id } }]), line('text', 'a haiku')].join('\n');
    const input = await sdk().files.create({ file: await toFile(Buffer.from(jsonl), 'requests.jsonl'), purpose: 'batch' });
    const batch = await sdk().batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      execution: 'gemini_batch',
    } as BatchCreateParams);
    let done = await call('gemini batch wait', 'GET', `/v1/batches/${batch.id}?wait=30`);
    for (let polls = 1; !['completed', 'failed', 'expired', 'cancelled'].includes(done.json.status) && polls < 10; polls++) {
      done = await call('gemini batch wait', 'GET', `/v1/batches/${batch.id}?wait=30`);
    }
    assert.equal(done.json.status, 'completed');
    assert.equal(done.json.execution, 'gemini_batch');
    const out = await call('gemini batch output', 'GET', `/v1/files/${done.json.output_file_id}/content`);
    assert.deepEqual(
      out.text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).custom_id)
        .sort(),
      ['doc', 'text'],
    );
  });

  test('webhook endpoints and deliveries', async () => {
    const loopback = await call('loopback webhook', 'POST', '/v1/webhook_endpoints', { json: { url: 'http://127.0.0.1:9/hook' } });
    assert.equal(loopback.status, 400);
    assert.match(loopback.json.error.message, /WEBHOOK_ALLOW_PRIVATE_NETWORKS=1/);
    // A public address that no event in this tour is sent to.
    const made = await call('webhook endpoint', 'POST', '/v1/webhook_endpoints', {
      json: { url: 'https://8.8.8.8/hook', events: ['batch.expired'] },
    });
    assert.ok(made.status === 200 || made.status === 201, made.text);
    const id = made.json.id;
    assert.match(made.json.secret, /^whsec_/);
    assert.equal((await call('endpoint list', 'GET', '/v1/webhook_endpoints')).json.object, 'list');
    assert.equal((await call('endpoint', 'GET', `/v1/webhook_endpoints/${id}`)).json.id, id);
    assert.equal((await call('endpoint patch', 'PATCH', `/v1/webhook_endpoints/${id}`, { json: { enabled: false } })).json.enabled, false);
    assert.equal((await call('endpoint rotate', 'POST', `/v1/webhook_endpoints/${id}/rotate_secret`)).status, 200);
    assert.equal((await call('deliveries', 'GET', '/v1/webhook_deliveries?status=failed')).json.object, 'list');
    assert.equal((await call('unknown delivery', 'GET', '/v1/webhook_deliveries/whd-nope')).status, 404);
    assert.equal((await call('retry unknown delivery', 'POST', '/v1/webhook_deliveries/whd-nope/retry')).status, 404);
    assert.equal((await call('endpoint delete', 'DELETE', `/v1/webhook_endpoints/${id}`)).status, 200);
  });

  test('another tenant sees 404; the admin reads any tenant by id', async () => {
    assert.equal((await call('other tenant file', 'GET', `/v1/files/${fileId}`, { key: KEY_B })).status, 404);
    assert.equal((await call('other tenant job', 'GET', `/v1/jobs/${jobId}`, { key: KEY_B })).status, 404);
    assert.equal((await call('admin file', 'GET', `/v1/files/${fileId}`, { key: ADMIN })).status, 200);
    assert.equal((await call('admin job', 'GET', `/v1/jobs/${jobId}`, { key: ADMIN })).status, 200);
    assert.equal((await call('admin lists', 'GET', '/v1/files', { key: ADMIN })).status, 200);
  });

  test('the dashboard: page, assets and JSON API with Bearer and with Basic auth', async () => {
    for (const auth of [{ key: ADMIN }, { key: null, basic: ADMIN }]) {
      const page = await call('dashboard', 'GET', '/admin/queues', auth);
      assert.equal(page.status, 200);
      assert.match(page.text, /<html/i);
      const assets = [...page.text.matchAll(/(?:href|src)="(static\/[^"]+)"/g)].map((m) => m[1]);
      assert.ok(assets.length >= 2, 'the page names its assets');
      for (const a of assets) assert.equal((await call('dashboard asset', 'GET', `/admin/queues/${a}`, auth)).status, 200, a);
      assert.equal((await call('missing asset', 'GET', '/admin/queues/static/js/missing.js', auth)).status, 404);
      assert.equal((await call('dashboard queue page', 'GET', '/admin/queues/queue/generate', auth)).status, 200);
      const queues = await call(
        'dashboard api',
        'GET',
        '/admin/queues/api/queues?activeQueue=generate&status=completed&page=1&jobsPerPage=10',
        auth,
      );
      assert.equal(queues.status, 200);
      assert.ok(queues.json.queues.some((q: { name: string }) => q.name === 'generate'));
      for (const p of [
        '/admin/queues/api/redis/stats',
        '/admin/queues/api/queues/generate/workers',
        '/admin/queues/api/queues/generate/metrics',
        '/admin/queues/api/queues/generate/default-job-options',
      ]) {
        assert.equal((await call('dashboard api', 'GET', p, auth)).status, 200, p);
      }
      const job = await call('dashboard job', 'GET', `/admin/queues/api/queues/generate/${jobId}`, auth);
      assert.ok(job.status === 200 || job.status === 404, `${job.status}`);
      assert.ok((await call('dashboard unknown queue', 'GET', '/admin/queues/api/queues/nope/1', auth)).status < 500);
    }
    assert.equal((await call('dashboard pause', 'PUT', '/admin/queues/api/queues/maintenance/pause', { key: ADMIN })).status, 200);
    assert.equal((await call('dashboard resume', 'PUT', '/admin/queues/api/queues/maintenance/resume', { key: ADMIN })).status, 200);
  });

  test('afterwards: no 5xx anywhere, still alive and healthy, no stack trace or error line in its output', async () => {
    await new Promise((r) => setTimeout(r, 500));
    const fives = visited.filter((v) => v.status >= 500);
    assert.deepEqual(fives, []);
    assert.ok(visited.length >= 60, `visited ${visited.length} routes`);
    assert.equal(child.exitCode, null, 'the process is still running');
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.doesNotMatch(stderr, STACK_LINE);
    assert.doesNotMatch(stdout, STACK_LINE);
    const logLines = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    assert.ok(
      logLines.some((l) => l.msg === 'request completed' && l.level === 30),
      'it logs requests at info',
    );
    assert.deepEqual(
      logLines.filter((l) => l.level >= 50),
      [],
    );
  });

  test('SIGTERM to npm reaches the service: callers waiting get their job ids, then it stops cleanly and exits 0', async () => {
    // The embedded emulator answers after 3 s: a synchronous and a streamed completion are waiting when the signal comes.
    const emulator = /"url":"(http:\/\/127\.0\.0\.1:\d+)","msg":"no GEMINI_API_KEY/.exec(stdout)?.[1];
    assert.ok(emulator, 'the emulator address is in the log');
    const latency = await fetch(`${emulator}/_emulator/latency`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'fixed', ms: 3000 }),
    });
    assert.equal(latency.status, 200);
    const ask = (stream: boolean) =>
      fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, stream, messages: [{ role: 'user', content: 'slow' }] }),
      });
    const sync = ask(false);
    const streamed = await ask(true);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGTERM');
    const waited = await sync;
    assert.equal(waited.status, 202);
    const job = (await waited.json()) as { id: string; status: string };
    assert.match(job.id, /^job-/);
    assert.equal(waited.headers.get('location'), `/v1/jobs/${job.id}`);
    const events = await streamed.text();
    assert.match(events, /"code":"server_stopping"/);
    assert.match(events, new RegExp(`GET /v1/jobs/${streamed.headers.get('x-ferry-job-id')}`));
    assert.equal(await exited, 0);
    assert.equal(
      await fetch(`${base}/healthz`).then(
        () => 'answered',
        () => 'gone',
      ),
      'gone',
    );
    assert.match(stdout, /"msg":"stopped"/);
  });
});
