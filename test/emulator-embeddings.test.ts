/**
 * The emulator's embeddings (embedContent, batchEmbedContents, Batch Mode's asyncBatchEmbedContent)
 * driven by the unmodified @google/genai SDK and raw HTTP, and Ferry's embedTexts against it.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, GoogleGenAI, type BatchJob } from '@google/genai';
import { startEmulator, type Emulator } from '../src/emulator/index.js';
import { UpstreamError } from '../src/core/errors.js';
import { embedTexts } from '../src/providers/gemini/embeddings.js';

const KEY = 'test-key';
const MODEL = 'gemini-embedding-001';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

interface GoogleError {
  code: number;
  message: string;
  status: string;
}

const isApiError = (status: number, message?: RegExp) => (err: unknown) =>
  err instanceof ApiError && err.status === status && (!message || message.test(err.message));

function clients(emulator: Emulator) {
  const ai = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: emulator.url } });
  const post = (path: string, body: unknown) =>
    fetch(`${emulator.url}/v1beta/${path}`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  /** embedContent of one text, raw: the reference vector of the tests. */
  const embedOne = async (text: string, extra: Record<string, unknown> = {}): Promise<number[]> => {
    const res = await post(`models/${MODEL}:embedContent`, { content: { parts: [{ text }] }, ...extra });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { embedding: { values: number[] }; usageMetadata?: unknown };
    assert.equal(body.usageMetadata, undefined, 'the Developer API answers no usageMetadata');
    return body.embedding.values;
  };
  const expectError = async (res: Response, code: number, status: string): Promise<GoogleError> => {
    assert.equal(res.status, code);
    const { error } = (await res.json()) as { error: GoogleError };
    assert.equal(error.code, code);
    assert.equal(error.status, status);
    return error;
  };
  return { ai, post, embedOne, expectError };
}

describe('embedContent and batchEmbedContents', () => {
  let emulator: Emulator;
  let c: ReturnType<typeof clients>;

  before(async () => {
    emulator = await startEmulator({ apiKey: KEY, quiet: true });
    c = clients(emulator);
  });
  after(() => emulator.close());

  test('a text gets the same unit-length 3072-value vector every time; another text another vector', async () => {
    const a = await c.embedOne('the quick brown fox');
    assert.equal(a.length, 3072);
    assert.ok(Math.abs(norm(a) - 1) < 1e-6, `norm ${norm(a)}`);
    assert.deepEqual(await c.embedOne('the quick brown fox'), a);
    const b = await c.embedOne('the quick brown dog');
    assert.notDeepEqual(b, a);
    assert.ok(a.every((x) => x >= -1 && x <= 1));
  });

  test('outputDimensionality gives the prefix of the full vector, not normalized again (as Gemini documents)', async () => {
    const full = await c.embedOne('matryoshka');
    const small = await c.embedOne('matryoshka', { outputDimensionality: 768, taskType: 'RETRIEVAL_DOCUMENT' });
    assert.equal(small.length, 768);
    assert.deepEqual(small, full.slice(0, 768));
    assert.ok(norm(small) < 1);
    assert.equal((await c.embedOne('matryoshka', { outputDimensionality: 1 })).length, 1);
    assert.equal((await c.embedOne('matryoshka', { outputDimensionality: 3072 })).length, 3072);
  });

  test('a bad outputDimensionality, task type or content is 400 INVALID_ARGUMENT', async () => {
    const path = `models/${MODEL}:embedContent`;
    const content = { parts: [{ text: 'x' }] };
    for (const outputDimensionality of [0, 3073, 1.5, '8']) {
      const err = await c.expectError(await c.post(path, { content, outputDimensionality }), 400, 'INVALID_ARGUMENT');
      assert.match(err.message, /output_dimensionality/);
    }
    await c.expectError(await c.post(path, { content, taskType: 'SUMMARISE' }), 400, 'INVALID_ARGUMENT');
    await c.expectError(await c.post(path, { content: { parts: [{ text: '  ' }] } }), 400, 'INVALID_ARGUMENT');
    await c.expectError(await c.post(path, {}), 400, 'INVALID_ARGUMENT');
  });

  test('the SDK’s models.embedContent (batchEmbedContents) embeds each content in order', async () => {
    const texts = ['one', 'two words', 'three words here'];
    const res = await c.ai.models.embedContent({ model: MODEL, contents: texts, config: { outputDimensionality: 16 } });
    assert.equal(res.embeddings?.length, 3);
    for (const [i, text] of texts.entries()) {
      assert.deepEqual(res.embeddings?.[i].values, (await c.embedOne(text)).slice(0, 16), text);
    }
    assert.equal(emulator.stats().requests['embed.batch'], 1);
    assert.equal(res.metadata, undefined);
  });

  test('batchEmbedContents takes at most 100 requests, each naming the model of the call', async () => {
    const request = (text: string) => ({ model: `models/${MODEL}`, content: { parts: [{ text }] } });
    const path = `models/${MODEL}:batchEmbedContents`;
    const hundred = Array.from({ length: 100 }, (_, i) => request(`text ${i}`));
    const ok = await c.post(path, { requests: hundred });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { embeddings: unknown[] }).embeddings.length, 100);
    const err = await c.expectError(await c.post(path, { requests: [...hundred, request('one more')] }), 400, 'INVALID_ARGUMENT');
    assert.match(err.message, /at most 100 requests can be in one batch/);
    await assert.rejects(
      c.ai.models.embedContent({ model: MODEL, contents: Array.from({ length: 101 }, (_, i) => `t${i}`) }),
      isApiError(400, /at most 100 requests/),
    );
    await c.expectError(await c.post(path, { requests: [{ content: { parts: [{ text: 'no model' }] } }] }), 400, 'INVALID_ARGUMENT');
    const other = { model: 'models/gemini-2.0-flash', content: { parts: [{ text: 'x' }] } };
    await c.expectError(await c.post(path, { requests: [other] }), 400, 'INVALID_ARGUMENT');
    await c.expectError(await c.post(path, { requests: [] }), 400, 'INVALID_ARGUMENT');
  });

  test('only a model that offers embedContent embeds; the embedding model does not generate (404 as Gemini answers)', async () => {
    await assert.rejects(
      c.ai.models.embedContent({ model: 'gemini-2.5-flash', contents: ['x'] }),
      isApiError(404, /models\/gemini-2\.5-flash is not found for API version v1beta, or is not supported for embedContent/),
    );
    const single = await c.post('models/gemini-2.0-flash:embedContent', { content: { parts: [{ text: 'x' }] } });
    assert.match((await c.expectError(single, 404, 'NOT_FOUND')).message, /not supported for embedContent/);
    await assert.rejects(
      c.ai.models.generateContent({ model: MODEL, contents: 'hello' }),
      isApiError(404, /gemini-embedding-001 is not found .* or is not supported for generateContent/),
    );
    await assert.rejects(c.ai.models.embedContent({ model: 'gemini-embedding-999', contents: ['x'] }), isApiError(404, /not found/));
    const listed = await c.ai.models.get({ model: MODEL });
    assert.ok(listed.supportedActions?.includes('embedContent'));
  });
});

describe('embed calls share the quota, latency and faults of generate calls', () => {
  let emulator: Emulator;
  let c: ReturnType<typeof clients>;

  before(async () => {
    emulator = await startEmulator({ apiKey: KEY, quiet: true });
    c = clients(emulator);
  });
  after(() => emulator.close());

  test('rpm counts a call; tpm counts the words embedded; a refusal is Gemini’s quota 429', async () => {
    emulator.setQuota({ perModel: { [MODEL]: { rpm: 1 } } });
    await c.ai.models.embedContent({ model: MODEL, contents: ['a', 'b', 'c'] });
    await assert.rejects(c.ai.models.embedContent({ model: MODEL, contents: ['d'] }), isApiError(429, /Quota exceeded for metric/));
    assert.equal(emulator.stats().generateByModel[MODEL].refusedForQuota, 1);
    assert.equal(emulator.stats().generateByModel[MODEL].answered2xx, 1);

    // 600 tokens a minute hold 10 at once: 4 words pass, 20 more do not fit what is left.
    emulator.setQuota({ perModel: { [MODEL]: { tpm: 600 } } });
    await c.embedOne('one two three four');
    const res = await c.post(`models/${MODEL}:embedContent`, { content: { parts: [{ text: 'w '.repeat(20) }] } });
    const err = await c.expectError(res, 429, 'RESOURCE_EXHAUSTED');
    assert.match(err.message, /input_token_count, limit: 600, model: gemini-embedding-001/);
    // Other models keep their own allowance.
    emulator.setQuota({ perModel: { 'gemini-2.0-flash': { rpm: 1 } } });
    await c.embedOne('free');
    await c.embedOne('again');
    emulator.setQuota({});
  });

  test('faults apply to the embed routes by name and by "*"', async () => {
    emulator.setFaults([{ route: 'embed.batch', kind: '503', count: 1 }]);
    await assert.rejects(c.ai.models.embedContent({ model: MODEL, contents: ['x'] }), isApiError(503));
    await c.ai.models.embedContent({ model: MODEL, contents: ['x'] });
    emulator.setFaults([{ route: '*', kind: '500', count: 1 }]);
    await c.expectError(await c.post(`models/${MODEL}:embedContent`, { content: { parts: [{ text: 'x' }] } }), 500, 'INTERNAL');
    assert.equal(emulator.stats().faultsInjected.embed, 1);
    assert.equal(emulator.stats().faultsInjected['embed.batch'], 1);
    emulator.setFaults([]);
  });

  test('the modelled service time delays embed calls', async () => {
    emulator.setLatency({ kind: 'fixed', ms: 150 });
    const started = Date.now();
    await c.ai.models.embedContent({ model: MODEL, contents: ['slow'] });
    assert.ok(Date.now() - started >= 140, `${Date.now() - started} ms`);
    emulator.setLatency({ kind: 'fixed', ms: 0 });
  });
});

describe('embedTexts (src/providers/gemini/embeddings.ts) against the emulator', () => {
  let emulator: Emulator;
  let c: ReturnType<typeof clients>;

  before(async () => {
    emulator = await startEmulator({ apiKey: KEY, quiet: true });
    c = clients(emulator);
  });
  after(() => emulator.close());

  test('250 texts go in 3 calls of at most 100 and come back in order', async () => {
    const texts = Array.from({ length: 250 }, (_, i) => `text number ${i}`);
    const vectors = await embedTexts(c.ai, { model: MODEL, texts, dimensions: 32 });
    assert.equal(emulator.stats().requests['embed.batch'], 3);
    assert.equal(vectors.length, 250);
    for (const i of [0, 99, 100, 101, 199, 200, 249]) {
      assert.deepEqual(vectors[i], (await c.embedOne(texts[i])).slice(0, 32), `text ${i}`);
    }
  });

  test('no texts, no call; without dimensions the full vectors', async () => {
    emulator.reset();
    assert.deepEqual(await embedTexts(c.ai, { model: MODEL, texts: [] }), []);
    assert.equal(emulator.stats().requests['embed.batch'], 0);
    const [v] = await embedTexts(c.ai, { model: MODEL, texts: ['whole'] });
    assert.equal(v.length, 3072);
  });

  test('a refusal becomes an UpstreamError with Gemini’s status', async () => {
    await assert.rejects(embedTexts(c.ai, { model: 'gemini-2.0-flash', texts: ['x'] }), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.upstreamStatus, 404);
      assert.equal(err.retryable, false);
      return true;
    });
    await assert.rejects(embedTexts(c.ai, { model: MODEL, texts: ['x'], dimensions: 5000 }), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.upstreamStatus, 400);
      return true;
    });
  });
});

describe('Batch Mode embeddings (batches.createEmbeddings)', () => {
  let emulator: Emulator;
  let c: ReturnType<typeof clients>;
  let dir: string;

  const waitFor = async (name: string, state: string, timeoutMs = 5000): Promise<BatchJob> => {
    for (const started = Date.now(); Date.now() - started < timeoutMs; await sleep(15)) {
      const job = await c.ai.batches.get({ name });
      if (job.state === state) return job;
    }
    throw new Error(`${name} did not reach ${state}`);
  };

  before(async () => {
    emulator = await startEmulator({ apiKey: KEY, quiet: true, batches: { pendingMs: 50, runningMs: 150 } });
    c = clients(emulator);
    dir = await mkdtemp(join(tmpdir(), 'gemini-emulator-embed-batch-'));
  });
  after(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('file input: created, run, and its responses file downloaded with one line per input, in order', async () => {
    const lines = [
      { key: 'a', request: { content: { parts: [{ text: 'alpha' }] } } },
      { key: 'b', request: { content: { parts: [{ text: 'beta' }] }, outputDimensionality: 8 } },
      { key: 'bad', request: { content: { parts: [{ text: '' }] } } },
      { key: 'c', request: { content: { parts: [{ text: 'gamma' }] }, taskType: 'CLUSTERING' } },
    ];
    const input = await c.ai.files.upload({
      file: new Blob([lines.map((l) => JSON.stringify(l)).join('\n')]),
      config: { mimeType: 'application/jsonl' },
    });
    const created = await c.ai.batches.createEmbeddings({
      model: MODEL,
      src: { fileName: input.name as string },
      config: { displayName: 'vectors' },
    });
    assert.match(created.name ?? '', /^batches\/[a-z0-9]+$/);
    assert.equal(created.displayName, 'vectors');
    assert.equal(created.model, `models/${MODEL}`);
    assert.equal(created.state, 'JOB_STATE_PENDING');

    const job = await waitFor(created.name as string, 'JOB_STATE_SUCCEEDED');
    const outputName = job.dest?.fileName as string;
    assert.match(outputName, /^files\//);
    const downloadPath = join(dir, 'out.jsonl');
    await c.ai.files.download({ file: outputName, downloadPath });
    const out = (await readFile(downloadPath, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { key: string; response?: { embedding: { values: number[] } }; error?: GoogleError });
    assert.deepEqual(
      out.map((l) => l.key),
      ['a', 'b', 'bad', 'c'],
    );
    assert.deepEqual(out[0].response?.embedding.values, await c.embedOne('alpha'));
    assert.deepEqual(out[1].response?.embedding.values, (await c.embedOne('beta')).slice(0, 8));
    assert.equal(out[2].error?.code, 400);
    assert.equal(out[2].error?.status, 'INVALID_ARGUMENT');
    assert.equal(out[3].response?.embedding.values.length, 3072);
    const stats = emulator.stats().batches;
    assert.deepEqual(stats, { created: 1, linesAnswered: 4, linesFailed: 1 });
  });

  test('inline input: the responses come back as inlinedEmbedContentResponses with their token counts', async () => {
    const created = await c.ai.batches.createEmbeddings({
      model: MODEL,
      src: { inlinedRequests: { contents: ['one', 'two words'], config: { outputDimensionality: 4 } } },
    });
    const job = await waitFor(created.name as string, 'JOB_STATE_SUCCEEDED');
    const responses = job.dest?.inlinedEmbedContentResponses ?? [];
    assert.equal(responses.length, 2);
    assert.deepEqual(responses[0].response?.embedding?.values, (await c.embedOne('one')).slice(0, 4));
    assert.deepEqual(responses[1].response?.embedding?.values, (await c.embedOne('two words')).slice(0, 4));
    assert.equal(responses[1].response?.tokenCount, '2');

    const raw = await fetch(`${emulator.url}/v1beta/${created.name}`, { headers: { 'x-goog-api-key': KEY } });
    const op = (await raw.json()) as { metadata: { '@type': string }; response: { '@type': string } };
    assert.match(op.metadata['@type'], /\.EmbedContentBatch$/);
    assert.match(op.response['@type'], /\.EmbedContentBatchOutput$/);
  });

  test('list, cancel and delete treat embeddings batches like generate batches', async () => {
    emulator.setBatchSetting({ pendingMs: 5000 });
    const created = await c.ai.batches.createEmbeddings({ model: MODEL, src: { inlinedRequests: { contents: ['later'] } } });
    const listed: string[] = [];
    for await (const job of await c.ai.batches.list({ config: { pageSize: 10 } })) listed.push(job.name as string);
    assert.ok(listed.includes(created.name as string));
    await c.ai.batches.cancel({ name: created.name as string });
    assert.equal((await c.ai.batches.get({ name: created.name as string })).state, 'JOB_STATE_CANCELLED');
    await c.ai.batches.delete({ name: created.name as string });
    await assert.rejects(c.ai.batches.get({ name: created.name as string }), isApiError(404));
    emulator.setBatchSetting({ pendingMs: 50 });
  });

  test('only an embedding model takes an embeddings batch, and it does not take a generate batch', async () => {
    await assert.rejects(
      c.ai.batches.createEmbeddings({ model: 'gemini-2.0-flash', src: { inlinedRequests: { contents: ['x'] } } }),
      isApiError(404, /not supported for asyncBatchEmbedContent/),
    );
    await assert.rejects(
      c.ai.batches.create({ model: MODEL, src: [{ contents: [{ role: 'user', parts: [{ text: 'x' }] }] }] }),
      isApiError(404, /not supported for batchGenerateContent/),
    );
  });
});
