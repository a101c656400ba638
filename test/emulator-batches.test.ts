import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, GoogleGenAI, type BatchJob, type File as GeminiFile } from '@google/genai';
import { emulatorOptionsFromEnv, startEmulator, type Emulator, type EmulatorStats } from '../src/emulator/index.js';

const MODEL = 'gemini-2.0-flash';
const KEY = 'test-key';
const auth = { 'x-goog-api-key': KEY };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface GoogleError {
  code: number;
  message: string;
  status: string;
}

interface Operation {
  name: string;
  metadata: {
    '@type': string;
    name: string;
    model: string;
    displayName?: string;
    state: string;
    createTime: string;
    updateTime: string;
    endTime?: string;
    batchStats: Record<string, string>;
    output?: { responsesFile?: string; inlinedResponses?: { inlinedResponses: unknown[] } };
  };
  done?: boolean;
  response?: Record<string, unknown>;
  error?: { code: number; message: string };
}

interface OutputLine {
  key?: string;
  response?: { candidates: { content: { parts: { text: string }[] } }[]; usageMetadata: unknown };
  error?: GoogleError;
}

async function expectGoogleError(res: Response, code: number, status: string): Promise<GoogleError> {
  assert.equal(res.status, code);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const { error } = (await res.json()) as { error: GoogleError };
  assert.equal(error.code, code);
  assert.equal(error.status, status);
  return error;
}

const isApiError = (status: number, message?: RegExp) => (err: unknown) =>
  err instanceof ApiError && err.status === status && (!message || message.test(err.message));

const jsonl = (lines: unknown[]) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
const textRequest = (text: string) => ({ contents: [{ role: 'user', parts: [{ text }] }] });
const textOf = (line: OutputLine) => line.response?.candidates[0].content.parts[0].text;

/** The SDK's client and raw HTTP helpers against one emulator. */
function clients(emulator: Emulator) {
  const ai = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: emulator.url } });
  const raw = (path: string, init: RequestInit = {}) =>
    fetch(`${emulator.url}${path}`, { ...init, headers: { ...auth, 'content-type': 'application/json', ...init.headers } });
  const operation = async (name: string): Promise<Operation> => {
    const res = await raw(`/v1beta/${name}`);
    assert.equal(res.status, 200);
    return (await res.json()) as Operation;
  };
  const control = (path: string, body?: unknown, method = 'POST') =>
    fetch(`${emulator.url}/_emulator/${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  const uploadJsonl = (lines: unknown[], displayName?: string) =>
    ai.files.upload({ file: new Blob([jsonl(lines)]), config: { mimeType: 'application/jsonl', displayName } });
  /** Polls until the batch reaches `state`; answers the states seen on the way. */
  const waitFor = async (name: string, state: string, timeoutMs = 5000): Promise<{ job: BatchJob; seen: string[] }> => {
    const seen: string[] = [];
    for (const started = Date.now(); Date.now() - started < timeoutMs; await sleep(15)) {
      const job = await ai.batches.get({ name });
      if (seen.at(-1) !== job.state) seen.push(job.state as string);
      if (job.state === state) return { job, seen };
    }
    throw new Error(`${name} did not reach ${state}; seen ${seen.join(' → ')}`);
  };
  const download = async (fileName: string): Promise<OutputLine[]> => {
    const res = await raw(`/download/v1beta/${fileName}:download?alt=media`);
    assert.equal(res.status, 200);
    return (await res.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as OutputLine);
  };
  return { ai, raw, operation, control, uploadJsonl, waitFor, download };
}

describe('Batch Mode with the unmodified @google/genai SDK', () => {
  let emulator: Emulator;
  let c: ReturnType<typeof clients>;
  let dir: string;

  before(async () => {
    emulator = await startEmulator({ apiKey: KEY, quiet: true, batches: { pendingMs: 100, runningMs: 300 } });
    c = clients(emulator);
    dir = await mkdtemp(join(tmpdir(), 'gemini-emulator-batches-'));
  });
  after(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('file input: PENDING → RUNNING → SUCCEEDED; the responses file keeps input order, bad lines become error lines', async () => {
    const doc = await c.ai.files.upload({ file: new Blob(['a small document']), config: { mimeType: 'text/plain' } });
    const input = await c.uploadJsonl([
      { key: 'with-file', request: { contents: [{ role: 'user', parts: [{ fileData: { fileUri: doc.uri } }, { text: 'Summarise' }] }] } },
      { key: 'no-contents', request: { contents: [] } },
      { key: 'unknown-file', request: { contents: [{ parts: [{ fileData: { fileUri: `${emulator.url}/v1beta/files/nosuchfile` } }] }] } },
      { key: 'plain', request: { ...textRequest('hello batch'), generationConfig: { maxOutputTokens: 3 } } },
    ]);

    const created = await c.ai.batches.create({ model: MODEL, src: input.name as string, config: { displayName: 'file batch' } });
    assert.match(created.name ?? '', /^batches\/[a-z0-9]{32}$/);
    assert.equal(created.state, 'JOB_STATE_PENDING');
    assert.equal(created.displayName, 'file batch');
    assert.equal(created.model, `models/${MODEL}`);
    assert.ok(created.createTime);
    assert.equal(created.dest, undefined);

    const { job, seen } = await c.waitFor(created.name as string, 'JOB_STATE_SUCCEEDED');
    assert.deepEqual(seen, ['JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_SUCCEEDED']);
    assert.ok(Date.parse(job.endTime ?? '') >= Date.parse(job.createTime ?? '') + 400, `${job.createTime} → ${job.endTime}`);
    const responsesFile = job.dest?.fileName ?? '';
    assert.match(responsesFile, /^files\/batch-[a-z0-9]{32}$/);

    const op = await c.operation(created.name as string);
    assert.equal(op.done, true);
    assert.equal(op.metadata['@type'], 'type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch');
    assert.equal(op.metadata.state, 'BATCH_STATE_SUCCEEDED');
    // proto3 JSON: int64 as strings, zero counts left out.
    assert.deepEqual(op.metadata.batchStats, { requestCount: '4', successfulRequestCount: '2', failedRequestCount: '2' });
    assert.deepEqual(op.response, {
      '@type': 'type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput',
      responsesFile,
    });

    const lines = await c.download(responsesFile);
    assert.deepEqual(
      lines.map((l) => l.key),
      ['with-file', 'no-contents', 'unknown-file', 'plain'],
    );
    assert.ok(textOf(lines[0])?.includes(`${doc.name}(text/plain,16 bytes,`), textOf(lines[0]));
    assert.equal(lines[1].error?.code, 400);
    assert.equal(lines[1].error?.status, 'INVALID_ARGUMENT');
    assert.match(lines[2].error?.message ?? '', /nosuchfile does not exist/);
    assert.equal(textOf(lines[3]), `model=${MODEL} | text=hello`);
    assert.equal(lines[1].response, undefined);

    // Lines are not generate calls: nothing reaches the generate stats.
    const stats = emulator.stats();
    assert.equal(stats.requests.generate, 0);
    assert.equal(stats.requests.stream, 0);
    assert.deepEqual(stats.generateRequests, []);
    assert.deepEqual(stats.generateByModel, {});
    assert.deepEqual(stats.batches, { created: 1, linesAnswered: 4, linesFailed: 2 });
    assert.equal(stats.requests['batches.create'], 1);
    assert.ok(stats.requests['batches.get'] >= 3);
  });

  test('the responses file is a generated file: files.get, ai.files.download, a plain download URL, files.delete', async () => {
    const input = await c.uploadJsonl([{ key: 'only', request: textRequest('one line') }]);
    const created = await c.ai.batches.create({ model: MODEL, src: input.name as string });
    const { job } = await c.waitFor(created.name as string, 'JOB_STATE_SUCCEEDED');
    const name = job.dest?.fileName as string;

    const file: GeminiFile = await c.ai.files.get({ name });
    assert.equal(file.source, 'GENERATED');
    assert.equal(file.state, 'ACTIVE');
    assert.equal(file.mimeType, 'application/jsonl');
    assert.equal(file.downloadUri, `${emulator.url}/download/v1beta/${name}:download?alt=media`);

    const downloadPath = join(dir, 'responses.jsonl');
    await c.ai.files.download({ file: name, downloadPath });
    const bytes = await readFile(downloadPath);
    assert.equal(String(bytes.length), file.sizeBytes);
    assert.equal(file.sha256Hash, Buffer.from(createHash('sha256').update(bytes).digest('hex')).toString('base64'));
    const viaRest = await c.raw(`/download/v1beta/${name}:download?alt=media`);
    assert.equal(viaRest.headers.get('content-type'), 'application/jsonl');
    assert.ok(Buffer.from(await viaRest.arrayBuffer()).equals(bytes));
    const line = JSON.parse(bytes.toString('utf8').trim()) as OutputLine;
    assert.equal(line.key, 'only');
    assert.equal(textOf(line), `model=${MODEL} | text=one line`);

    // Like Gemini, an uploaded file cannot be downloaded; and alt=media is required.
    await expectGoogleError(await c.raw(`/v1beta/${input.name}:download?alt=media`), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await c.raw(`/v1beta/${name}:download`), 400, 'INVALID_ARGUMENT');
    await c.ai.files.delete({ name });
    await expectGoogleError(await c.raw(`/v1beta/${name}:download?alt=media`), 404, 'NOT_FOUND');
  });

  test('inline input: inlined responses in input order with their metadata; failKeys makes the line Gemini rejects', async () => {
    emulator.setBatchSetting({ failKeys: ['rejected'] });
    try {
      const created = await c.ai.batches.create({
        model: MODEL,
        src: [
          { contents: 'first question', metadata: { key: 'a' } },
          { contents: 'as json please', config: { responseMimeType: 'application/json' }, metadata: { key: 'b' } },
          { contents: 'anything', metadata: { key: 'rejected' } },
        ],
        config: { displayName: 'inline batch' },
      });
      assert.equal(created.state, 'JOB_STATE_PENDING');
      const { job } = await c.waitFor(created.name as string, 'JOB_STATE_SUCCEEDED');
      const answers = job.dest?.inlinedResponses ?? [];
      assert.deepEqual(
        answers.map((a) => a.metadata?.key),
        ['a', 'b', 'rejected'],
      );
      assert.equal(answers[0].response?.candidates?.[0].content?.parts?.[0].text, `model=${MODEL} | text=first question`);
      const json = JSON.parse(answers[1].response?.candidates?.[0].content?.parts?.[0].text ?? '') as { text: string };
      assert.equal(json.text, 'as json please');
      assert.equal(answers[2].response, undefined);
      assert.deepEqual(answers[2].error, { code: 400, message: 'Request contains an invalid argument.', status: 'INVALID_ARGUMENT' });

      const op = await c.operation(created.name as string);
      assert.equal(op.metadata.output?.inlinedResponses?.inlinedResponses.length, 3);
      assert.deepEqual(op.metadata.batchStats, { requestCount: '3', successfulRequestCount: '2', failedRequestCount: '1' });
    } finally {
      emulator.setBatchSetting({ failKeys: [] });
    }
  });

  test('create is not idempotent, and list pages newest first with the SDK pager', async () => {
    emulator.reset();
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await c.ai.batches.create({ model: MODEL, src: [{ contents: 'same body' }], config: { displayName: 'same' } });
      names.push(job.name as string);
    }
    assert.equal(new Set(names).size, 3);
    const pager = await c.ai.batches.list({ config: { pageSize: 2 } });
    assert.equal(pager.page.length, 2);
    const listed: string[] = [];
    for await (const job of pager) {
      listed.push(job.name as string);
      assert.equal(job.displayName, 'same');
      assert.ok(job.state?.startsWith('JOB_STATE_'), job.state);
    }
    assert.deepEqual(listed, [...names].reverse());
    assert.equal(emulator.stats().requests['batches.list'], 2);
    assert.equal(emulator.stats().batches.created, 3);
    emulator.reset();
    assert.deepEqual(await (await c.raw('/v1beta/batches')).json(), {});
  });

  test('cancel: a running batch ends CANCELLED with the lines answered so far; the rest stay unanswered', async () => {
    emulator.setBatchSetting({ pendingMs: 0, runningMs: 1200 });
    try {
      const keys = Array.from({ length: 20 }, (_, i) => `line-${i}`);
      const input = await c.uploadJsonl(keys.map((key) => ({ key, request: textRequest(key) })));
      const created = await c.ai.batches.create({ model: MODEL, src: input.name as string });
      await sleep(250);
      const running = await c.operation(created.name as string);
      assert.equal(running.metadata.state, 'BATCH_STATE_RUNNING');
      assert.equal(running.done, undefined);
      const progress = Number(running.metadata.batchStats.successfulRequestCount ?? 0);
      assert.ok(progress > 0 && progress < 20, `progress ${progress}`);
      assert.equal(Number(running.metadata.batchStats.pendingRequestCount), 20 - progress);

      await c.ai.batches.cancel({ name: created.name as string });
      const cancelled = await c.ai.batches.get({ name: created.name as string });
      assert.equal(cancelled.state, 'JOB_STATE_CANCELLED');
      const op = await c.operation(created.name as string);
      assert.equal(op.done, true);
      const answered = Number(op.metadata.batchStats.successfulRequestCount);
      assert.ok(answered >= progress && answered < 20, `answered ${answered}`);
      assert.equal(Number(op.metadata.batchStats.pendingRequestCount), 20 - answered);
      const lines = await c.download(cancelled.dest?.fileName as string);
      assert.deepEqual(
        lines.map((l) => l.key),
        keys.slice(0, answered),
      );

      // It stays cancelled past its schedule, and a second cancel is refused.
      await sleep(1000);
      assert.equal((await c.ai.batches.get({ name: created.name as string })).state, 'JOB_STATE_CANCELLED');
      await assert.rejects(c.ai.batches.cancel({ name: created.name as string }), isApiError(400, /FAILED_PRECONDITION/));
    } finally {
      emulator.setBatchSetting({ pendingMs: 100, runningMs: 300 });
    }
  });

  test('cancel of a pending batch: CANCELLED with no output; over HTTP the answer is {}', async () => {
    emulator.setBatchSetting({ pendingMs: 60_000 });
    try {
      const created = await c.ai.batches.create({ model: MODEL, src: [{ contents: 'never runs' }] });
      const res = await c.raw(`/v1beta/${created.name}:cancel`, { method: 'POST', body: '{}' });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {});
      const job = await c.ai.batches.get({ name: created.name as string });
      assert.equal(job.state, 'JOB_STATE_CANCELLED');
      assert.equal(job.dest, undefined);
      const op = await c.operation(created.name as string);
      assert.deepEqual(op.metadata.batchStats, { requestCount: '1', pendingRequestCount: '1' });
      assert.equal(op.metadata.output, undefined);
    } finally {
      emulator.setBatchSetting({ pendingMs: 100 });
    }
  });

  test('delete: the batch is gone (404) and the answer is JSON {}', async () => {
    const created = await c.ai.batches.create({ model: MODEL, src: [{ contents: 'short lived' }] });
    await c.ai.batches.delete({ name: created.name as string });
    await assert.rejects(c.ai.batches.get({ name: created.name as string }), isApiError(404));
    const res = await c.raw(`/v1beta/${created.name}`, { method: 'DELETE' });
    await expectGoogleError(res, 404, 'NOT_FOUND');

    const other = await c.ai.batches.create({ model: MODEL, src: [{ contents: 'deleted over HTTP' }] });
    const deleted = await c.raw(`/v1alpha/${other.name}`, { method: 'DELETE' });
    assert.equal(deleted.status, 200);
    assert.match(deleted.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(await deleted.json(), {});
    assert.equal(emulator.stats().requests['batches.delete'], 3);
  });
});

describe('Batch Mode: forced states, settings, faults and bad input', () => {
  let emulator: Emulator;
  let c: ReturnType<typeof clients>;

  before(async () => {
    emulator = await startEmulator({ apiKey: KEY, quiet: true, batches: { pendingMs: 50, runningMs: 100 } });
    c = clients(emulator);
  });
  after(() => emulator.close());

  test('expire through the control route: EXPIRED with no output, and a second expire is refused', async () => {
    await c.control('batches', { pendingMs: 60_000 }, 'PUT');
    const created = await c.ai.batches.create({ model: MODEL, src: [{ contents: 'waits' }, { contents: 'forever' }] });
    const id = (created.name as string).slice('batches/'.length);
    assert.equal((await c.control(`batches/${id}/expire`)).status, 200);
    const job = await c.ai.batches.get({ name: created.name as string });
    assert.equal(job.state, 'JOB_STATE_EXPIRED');
    assert.ok(job.endTime);
    assert.equal(job.dest, undefined);
    const op = await c.operation(created.name as string);
    assert.equal(op.done, true);
    assert.deepEqual(op.metadata.batchStats, { requestCount: '2', pendingRequestCount: '2' });
    await expectGoogleError(await c.control(`batches/${id}/expire`), 400, 'FAILED_PRECONDITION');
    await expectGoogleError(await c.control('batches/nosuchbatch/expire'), 404, 'NOT_FOUND');
  });

  test('fail through the control route, and endState FAILED / EXPIRED in the setting', async () => {
    await c.control('batches', { pendingMs: 60_000 }, 'PUT');
    const forced = await c.ai.batches.create({ model: MODEL, src: [{ contents: 'doomed' }] });
    await emulator.failBatch(forced.name as string);
    const failed = await c.operation(forced.name as string);
    assert.equal(failed.metadata.state, 'BATCH_STATE_FAILED');
    assert.equal(failed.done, true);
    assert.equal(failed.response, undefined);
    assert.equal(typeof failed.error?.code, 'number');

    await c.control('batches', { pendingMs: 30, runningMs: 200, endState: 'FAILED' }, 'PUT');
    const doomed = await c.ai.batches.create({ model: MODEL, src: [{ contents: 'runs then fails' }] });
    const run = await c.waitFor(doomed.name as string, 'JOB_STATE_FAILED');
    assert.deepEqual(run.seen.slice(-2), ['JOB_STATE_RUNNING', 'JOB_STATE_FAILED']);

    await c.control('batches', { endState: 'EXPIRED' }, 'PUT');
    const stale = await c.ai.batches.create({ model: MODEL, src: [{ contents: 'never picked up' }] });
    const expiry = await c.waitFor(stale.name as string, 'JOB_STATE_EXPIRED');
    assert.deepEqual(expiry.seen, ['JOB_STATE_PENDING', 'JOB_STATE_EXPIRED']);
    assert.equal(emulator.stats().batches.linesAnswered, 0);
    await c.control('batches', { pendingMs: 50, runningMs: 100, endState: 'SUCCEEDED' }, 'PUT');
  });

  test('GET/PUT /_emulator/batches; reset keeps the schedule and forgets batches, failKeys and endState', async () => {
    const put = await c.control('batches', { runningMs: 70, failKeys: ['k'], endState: 'EXPIRED' }, 'PUT');
    assert.deepEqual(await put.json(), { pendingMs: 50, runningMs: 70, failKeys: ['k'], endState: 'EXPIRED' });
    await expectGoogleError(await c.control('batches', { bogus: 1 }, 'PUT'), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await c.control('batches', { pendingMs: -1 }, 'PUT'), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await c.control('batches', { endState: 'CANCELLED' }, 'PUT'), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await c.control('batches', { failKeys: [1] }, 'PUT'), 400, 'INVALID_ARGUMENT');

    const created = await c.ai.batches.create({ model: MODEL, src: [{ contents: 'forgotten' }] });
    assert.equal((await c.control('reset')).status, 200);
    await assert.rejects(c.ai.batches.get({ name: created.name as string }), isApiError(404));
    const setting = await (await c.control('batches', undefined, 'GET')).json();
    assert.deepEqual(setting, { pendingMs: 50, runningMs: 70, failKeys: [], endState: 'SUCCEEDED' });
    const stats = (await (await c.control('stats', undefined, 'GET')).json()) as EmulatorStats;
    assert.deepEqual(stats.batches, { created: 0, linesAnswered: 0, linesFailed: 0 });
  });

  test('the schedule from the environment', () => {
    assert.deepEqual(emulatorOptionsFromEnv({ FERRY_EMULATOR_BATCH_PENDING_MS: '10', FERRY_EMULATOR_BATCH_RUNNING_MS: '2500' }), {
      batches: { pendingMs: 10, runningMs: 2500 },
    });
    assert.deepEqual(emulatorOptionsFromEnv({ FERRY_EMULATOR_BATCH_RUNNING_MS: '0' }), { batches: { runningMs: 0 } });
    assert.deepEqual(emulatorOptionsFromEnv({}), {});
    assert.throws(() => emulatorOptionsFromEnv({ FERRY_EMULATOR_BATCH_PENDING_MS: 'soon' }), /FERRY_EMULATOR_BATCH_PENDING_MS/);
    assert.throws(() => emulatorOptionsFromEnv({ FERRY_EMULATOR_BATCH_RUNNING_MS: '-5' }), /FERRY_EMULATOR_BATCH_RUNNING_MS/);
  });

  test('a fault rule on batches.create: the 429 makes no batch; the SDK retry after a 503 makes exactly one', async () => {
    emulator.setFaults([{ route: 'batches.create', kind: '429', count: 1, retryAfterSeconds: 2 }]);
    await assert.rejects(c.ai.batches.create({ model: MODEL, src: [{ contents: 'limited' }] }), isApiError(429));
    assert.equal(emulator.stats().batches.created, 0);
    assert.equal(emulator.stats().faultsInjected['batches.create'], 1);

    emulator.setFaults([{ route: 'batches.create', kind: '503', count: 1 }]);
    const retrying = new GoogleGenAI({
      apiKey: KEY,
      httpOptions: { baseUrl: emulator.url, retryOptions: { attempts: 2, initialDelay: 0.01, maxDelay: 0.02 } },
    });
    const job = await retrying.batches.create({ model: MODEL, src: [{ contents: 'retried' }] });
    assert.equal(job.state, 'JOB_STATE_PENDING');
    const stats = emulator.stats();
    assert.equal(stats.batches.created, 1);
    assert.equal(stats.requests['batches.create'], 3);
    assert.equal(stats.faultsInjected['batches.create'], 2);

    emulator.setFaults([{ route: 'batches.get', kind: '500', count: 1 }]);
    await assert.rejects(c.ai.batches.get({ name: job.name as string }), isApiError(500));
    assert.equal((await c.ai.batches.get({ name: job.name as string })).name, job.name);
    emulator.setFaults([]);
  });

  test('create refuses a missing or malformed input with Google-shaped errors', async () => {
    emulator.reset();
    const create = (batch: unknown) =>
      c.raw(`/v1beta/models/${MODEL}:batchGenerateContent`, { method: 'POST', body: JSON.stringify({ batch }) });
    const unknown = await create({ displayName: 'x', inputConfig: { fileName: 'files/nosuchfile' } });
    assert.match((await expectGoogleError(unknown, 400, 'INVALID_ARGUMENT')).message, /does not exist/);
    const bad = await c.uploadJsonl([{ key: 'ok', request: textRequest('fine') }]);
    const broken = await c.ai.files.upload({
      file: new Blob([`${JSON.stringify({ key: 'ok', request: textRequest('fine') })}\n{"key":"cut",\n`]),
      config: { mimeType: 'application/jsonl' },
    });
    const malformed = await create({ inputConfig: { fileName: broken.name } });
    assert.match((await expectGoogleError(malformed, 400, 'INVALID_ARGUMENT')).message, /Line 2 of/);
    const noRequest = await c.uploadJsonl([{ key: 'bare', contents: [] }]);
    await expectGoogleError(await create({ inputConfig: { fileName: noRequest.name } }), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await create({ inputConfig: { requests: { requests: [] } } }), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await create({ inputConfig: { fileName: bad.name, requests: { requests: [] } } }), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await create(undefined), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(
      await create({ inputConfig: { requests: { requests: [{ metadata: { key: 'x' } }] } } }),
      400,
      'INVALID_ARGUMENT',
    );

    // An inline batch over 20 MiB is refused whole.
    const big = { request: textRequest('x'.repeat(1024 * 1024)) };
    const tooLarge = await create({ inputConfig: { requests: { requests: Array.from({ length: 21 }, () => big) } } });
    assert.match((await expectGoogleError(tooLarge, 400, 'INVALID_ARGUMENT')).message, /exceeds the limit/);
    assert.equal(emulator.stats().batches.created, 0);
    // Still serving, and v1alpha is accepted like v1beta.
    const ok = await c.raw(`/v1alpha/models/${MODEL}:batchGenerateContent`, {
      method: 'POST',
      body: JSON.stringify({ batch: { inputConfig: { fileName: bad.name } } }),
    });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as Operation).metadata.state, 'BATCH_STATE_PENDING');
  });
});

describe('Batch Mode: input files the emulator did not keep, and a 10,000-line batch', () => {
  test('a PROCESSING input file and one over maxKeptFileBytes are refused with FAILED_PRECONDITION', async () => {
    const emulator = await startEmulator({ quiet: true, processingDelayMs: 60_000, maxKeptFileBytes: 100 });
    try {
      const c = clients(emulator);
      const processing = await c.uploadJsonl([{ key: 'a', request: textRequest('short') }]);
      const create = (fileName: string) =>
        c.raw(`/v1beta/models/${MODEL}:batchGenerateContent`, {
          method: 'POST',
          body: JSON.stringify({ batch: { inputConfig: { fileName } } }),
        });
      assert.match((await expectGoogleError(await create(processing.name as string), 400, 'FAILED_PRECONDITION')).message, /ACTIVE/);
    } finally {
      await emulator.close();
    }
    const small = await startEmulator({ quiet: true, maxKeptFileBytes: 100 });
    try {
      const c = clients(small);
      const large = await c.uploadJsonl([{ key: 'a', request: textRequest('y'.repeat(200)) }]);
      const res = await c.raw(`/v1beta/models/${MODEL}:batchGenerateContent`, {
        method: 'POST',
        body: JSON.stringify({ batch: { inputConfig: { fileName: large.name } } }),
      });
      assert.match((await expectGoogleError(res, 400, 'FAILED_PRECONDITION')).message, /maxKeptFileBytes/);
    } finally {
      await small.close();
    }
  });

  test('10,000 lines: answered once each, streamed back in input order', async () => {
    const emulator = await startEmulator({ apiKey: KEY, quiet: true, batches: { pendingMs: 50, runningMs: 0 } });
    try {
      const c = clients(emulator);
      const n = 10_000;
      const input = await c.uploadJsonl(Array.from({ length: n }, (_, i) => ({ key: `k${i}`, request: textRequest(`line ${i}`) })));
      const created = await c.ai.batches.create({ model: MODEL, src: input.name as string });
      assert.equal(created.state, 'JOB_STATE_PENDING');
      await sleep(60);
      // Two looks at once: the lines are still answered exactly once.
      const [a, b] = await Promise.all([
        c.ai.batches.get({ name: created.name as string }),
        c.ai.batches.get({ name: created.name as string }),
      ]);
      assert.equal(a.state, 'JOB_STATE_SUCCEEDED');
      assert.equal(b.dest?.fileName, a.dest?.fileName);
      const lines = await c.download(a.dest?.fileName as string);
      assert.equal(lines.length, n);
      assert.ok(lines.every((l, i) => l.key === `k${i}` && textOf(l) === `model=${MODEL} | text=line ${i}`));
      assert.deepEqual(emulator.stats().batches, { created: 1, linesAnswered: n, linesFailed: 0 });
      assert.equal(emulator.stats().requests.generate, 0);
    } finally {
      await emulator.close();
    }
  });
});
