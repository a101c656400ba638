/**
 * Models: the emulator's catalogue as Gemini answers it (an unknown model is 404), `GET /v1/models`
 * from the catalogue a worker read, narrowed by FERRY_MODELS, and every request's model checked
 * before it is queued: a typo is a 404 naming `model`, an output limit above the model's a 400.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GoogleGenAI } from '@google/genai';
import OpenAI, { APIError } from 'openai';
import { loadConfig } from '../src/core/config.js';
import { createBatch, request, waitFinal } from './batch-helpers.js';
import { eventually, startFerry, type Ferry } from './harness.js';

const ask = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user' as const, content: 'hello' }],
  ...extra,
});

describe('the emulator speaks Gemini’s model catalogue', () => {
  let ferry: Ferry;
  before(async () => (ferry = await startFerry({ workers: false })));
  after(() => ferry.close());

  test('models.list pages through every model with its limits; an unknown model is 404, also for generateContent', async () => {
    const ai = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: ferry.emulator.url } });
    const names: string[] = [];
    for await (const m of await ai.models.list({ config: { pageSize: 2 } })) names.push(m.name!);
    assert.ok(names.includes('models/gemini-2.5-flash') && names.includes('models/gemini-2.0-flash'), names.join());
    const pro = await ai.models.get({ model: 'gemini-2.5-pro' });
    assert.equal(pro.outputTokenLimit, 65_536);
    await assert.rejects(ai.models.get({ model: 'gemini-9-ultra' }), /404/);
    await assert.rejects(ai.models.generateContent({ model: 'gemini-2.0-flsh', contents: 'hi' }), /404[\s\S]*not found/);
  });
});

describe('GET /v1/models and the model of every request', () => {
  let ferry: Ferry;
  let client: OpenAI;
  before(async () => {
    ferry = await startFerry();
    client = ferry.client();
    await eventually(() => ferry.services.models.read(), 20_000, 'a worker to read the catalogue');
  });
  after(() => ferry.close());

  test('the SDK lists and retrieves the models; an unknown one is 404', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      ids.push(m.id);
    }
    // Models that generate content, and the embedding model (for /v1/embeddings).
    assert.ok(ids.includes('gemini-2.0-flash') && ids.includes('gemini-embedding-001'), ids.join());
    const pro = await client.models.retrieve('gemini-2.5-pro');
    assert.equal((pro as unknown as { output_token_limit: number }).output_token_limit, 65_536);
    await assert.rejects(client.models.retrieve('gemini-9-ultra'), (err: APIError) => {
      assert.equal(err.status, 404);
      assert.equal((err.error as { param: string }).param, 'model');
      return true;
    });
  });

  test('a typo in a model is a 404 naming model, before anything is queued', async () => {
    await assert.rejects(client.chat.completions.create(ask('gemini-2.0-flsh')), (err: APIError) => {
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      assert.match(err.message, /gemini-2\.0-flsh.*GET \/v1\/models/);
      return true;
    });
    const jobs = await ferry.services.jobs.list('tenant-a', { limit: 10, order: 'asc' });
    assert.equal(jobs.data.length, 0, 'no job was made');
  });

  test('max_tokens or max_completion_tokens above the model’s output limit is a 400 naming the field', async () => {
    for (const field of ['max_tokens', 'max_completion_tokens']) {
      await assert.rejects(client.chat.completions.create(ask('gemini-2.0-flash', { [field]: 1_000_000 })), (err: APIError) => {
        assert.equal(err.status, 400);
        assert.equal(err.param, field);
        assert.match(err.message, /8192/);
        return true;
      });
    }
    const ok = await client.chat.completions.create(ask('gemini-2.5-flash', { max_tokens: 60_000 }));
    assert.equal(ok.object, 'chat.completion');
  });

  test('a batch line naming a model Gemini does not have fails the batch’s validation, naming the line', async () => {
    const typo = { ...request('typo'), body: ask('gemini-2.0-flsh') };
    const b = await waitFinal(client, (await createBatch(client, [request('fine'), typo])).id);
    assert.equal(b.status, 'failed');
    assert.deepEqual(
      b.errors?.data?.map((e) => [e.code, e.line, e.param]),
      [['model_not_found', 2, 'body.model']],
    );
  });
});

describe('FERRY_MODELS narrows what is offered', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({ env: { FERRY_MODELS: 'gemini-2.5-flash, models/gemini-2.5-pro' } });
    await eventually(() => ferry.services.models.read(), 20_000, 'a worker to read the catalogue');
  });
  after(() => ferry.close());

  test('only the allowed models are listed and accepted', async () => {
    const client = ferry.client();
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['gemini-2.5-flash', 'gemini-2.5-pro']);
    await assert.rejects(client.chat.completions.create(ask('gemini-2.0-flash')), { status: 404 });
    assert.equal((await client.chat.completions.create(ask('gemini-2.5-pro'))).object, 'chat.completion');
  });

  test('a malformed FERRY_MODELS is refused by name', () => {
    assert.throws(() => loadConfig({ FERRY_MODELS: 'gemini 2.5' }), /FERRY_MODELS/);
  });
});
