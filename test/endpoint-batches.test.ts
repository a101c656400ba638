/**
 * Batches of the newer endpoints, on both executions: `/v1/responses` lines answered as response
 * objects, `/v1/embeddings` lines as embedding lists (each text of a line its own line of Gemini's
 * embeddings batch), every custom_id exactly once; and embeddings asked directly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { startFerry, type Ferry } from './harness.js';
import { createBatch, idsOf, results, waitFinal, type Line } from './batch-helpers.js';

const EMBEDDER = 'gemini-embedding-001';

const responseLine = (i: number): Line => ({
  custom_id: `resp-${i}`,
  method: 'POST',
  url: '/v1/responses',
  body: {
    model: 'gemini-2.5-flash',
    instructions: 'Answer briefly.',
    input: [{ role: 'user', content: [{ type: 'input_text', text: `question ${i}` }] }],
  },
});

/** 100 lines of 10 texts: 1,000 strings, the texts of line i being `text i.k`. */
const embeddingLines = (): Line[] =>
  Array.from({ length: 100 }, (_, i) => ({
    custom_id: `emb-${i}`,
    method: 'POST',
    url: '/v1/embeddings',
    body: { model: EMBEDDER, input: Array.from({ length: 10 }, (_, k) => `text ${i}.${k}`), dimensions: 16, encoding_format: 'float' },
  }));

describe('batches of responses and embeddings', () => {
  let ferry: Ferry;
  let client: OpenAI;

  before(async () => {
    ferry = await startFerry({ emulator: { batches: { pendingMs: 100, runningMs: 300 } } });
    client = ferry.client();
  });
  after(() => ferry.close());

  for (const execution of ['direct', 'gemini_batch'] as const) {
    test(`a 500-line /v1/responses batch (${execution}): each line a response object, every custom_id once`, async () => {
      const lines = Array.from({ length: 500 }, (_, i) => responseLine(i));
      const created = await createBatch(client, lines, '24h', undefined, execution, '/v1/responses');
      assert.equal(created.endpoint, '/v1/responses');
      const b = await waitFinal(client, created.id, 120);
      assert.equal(b.status, 'completed', JSON.stringify(b.errors));
      const { out, err } = await results(client, b, idsOf(lines), 'response');
      assert.equal(err.length, 0);
      for (const l of out) {
        const body = l.response.body;
        const i = Number(String(l.custom_id).slice('resp-'.length));
        assert.equal(body.status, 'completed');
        assert.match(body.id, /^resp_/);
        assert.match(body.output[0].content[0].text, new RegExp(`system=Answer briefly\\. \\| text=question ${i}$`));
        assert.ok(body.usage.input_tokens > 0 && body.usage.output_tokens > 0);
      }
      assert.ok(b.usage && b.usage.input_tokens > 0 && b.usage.output_tokens > 0, 'the batch adds up its lines’ usage');
    });

    test(`1,000 strings embedded as a /v1/embeddings batch (${execution}) match those embedded directly`, async () => {
      const lines = embeddingLines();
      const b = await waitFinal(client, (await createBatch(client, lines, '24h', undefined, execution, '/v1/embeddings')).id, 120);
      assert.equal(b.status, 'completed', JSON.stringify(b.errors));
      const { out } = await results(client, b, idsOf(lines), 'list');
      assert.equal(out.length, 100);
      const direct = await client.embeddings.create({ model: EMBEDDER, input: ['text 7.0', 'text 7.9'], dimensions: 16 });
      const seven = out.find((l) => l.custom_id === 'emb-7').response.body;
      assert.equal(seven.data.length, 10);
      assert.deepEqual(
        seven.data.map((d: { index: number }) => d.index),
        [...Array(10).keys()],
      );
      for (const d of seven.data) assert.equal(d.embedding.length, 16);
      // Gemini's shortened vectors are a prefix of the full one; Ferry answers them at unit length, as OpenAI does.
      assert.ok(Math.abs(Math.hypot(...seven.data[0].embedding) - 1) < 1e-5);
      assert.deepEqual(seven.data[0].embedding, direct.data[0].embedding, 'the same text gets the same vector both ways');
      assert.deepEqual(seven.data[9].embedding, direct.data[1].embedding);
      assert.notDeepEqual(seven.data[0].embedding, seven.data[1].embedding);
    });
  }

  test('1,000 strings embedded in one request, base64 (the SDK default) and float agree', async () => {
    const input = Array.from({ length: 1000 }, (_, i) => `document ${i}`);
    const b64 = await client.embeddings.create({ model: EMBEDDER, input });
    assert.equal(b64.data.length, 1000);
    assert.equal(b64.data[0].embedding.length, 3072, "gemini-embedding-001's full size");
    assert.deepEqual(b64.data.map((d) => d.index).slice(0, 3), [0, 1, 2]);
    assert.ok(b64.usage.prompt_tokens > 0 && b64.usage.total_tokens === b64.usage.prompt_tokens);
    const floats = await client.embeddings.create({ model: EMBEDDER, input: [input[0], input[999]], encoding_format: 'float' });
    // float32 on the wire for base64: the same values to float32 precision.
    for (const [k, i] of [
      [0, 0],
      [1, 999],
    ]) {
      floats.data[k].embedding.forEach((v, j) => assert.ok(Math.abs(v - b64.data[i].embedding[j]) < 1e-6));
    }
    const norm = Math.hypot(...floats.data[0].embedding);
    assert.ok(Math.abs(norm - 1) < 1e-3, `a full vector has unit length (${norm})`);
  });

  test('embeddings refuse what Gemini cannot embed, naming the field', async () => {
    const refused = async (body: Record<string, unknown>, status: number, param: string) => {
      const res = await ferry.fetch('/v1/embeddings', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const e = (await res.json()) as { error: { param: string; message: string } };
      assert.equal(res.status, status, e.error.message);
      assert.equal(e.error.param, param);
      return e.error.message;
    };
    assert.match(await refused({ model: EMBEDDER, input: [[1, 2, 3]] }, 400, 'input[0]'), /token arrays/);
    assert.match(await refused({ model: EMBEDDER, input: [] }, 400, 'input'), /non-empty/);
    assert.match(await refused({ model: 'gemini-2.5-flash', input: 'x' }, 400, 'model'), /does not embed/);
    assert.match(await refused({ model: 'gemini-embedding-009', input: 'x' }, 404, 'model'), /does not exist/);
    assert.match(await refused({ model: EMBEDDER, input: 'x', encoding_format: 'int8' }, 400, 'encoding_format'), /float/);
    assert.match(await refused({ model: EMBEDDER, input: 'x', task: 'y' }, 400, 'task'), /Unsupported parameter/);
    // An embedding model cannot chat either.
    await assert.rejects(
      client.chat.completions.create({ model: EMBEDDER, messages: [{ role: 'user', content: 'hi' }] }),
      (err: Error & { status?: number }) => err.status === 400 && /does not generate content/.test(err.message),
    );
  });
});
