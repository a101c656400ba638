/**
 * Context caching: the emulator's cachedContents as Gemini's (a minimum size, cached tokens billed
 * inside the prompt, storage by the token-hour), and Ferry caching the prefix that a batch's lines
 * share on its own: a thousand questions about one 200-page document cost under a third of the input
 * without it, every line answered once and as it would be uncached, the cache deleted at the end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GoogleGenAI } from '@google/genai';
import { toFile } from 'openai';
import { startEmulator, type Emulator } from '../src/emulator/index.js';
import { eventually, startFerry, type Ferry } from './harness.js';
import { createBatch, idsOf, results, waitFinal } from './batch-helpers.js';
import { pdf, questionsAbout } from './document-questions.js';

const MODEL = 'gemini-2.5-flash';

async function billing(url: string): Promise<any> {
  return (await fetch(`${url}/_emulator/billing`)).json();
}

describe('the emulator’s context caches', () => {
  let emulator: Emulator;
  let ai: GoogleGenAI;
  let doc: string;
  before(async () => {
    emulator = await startEmulator({ quiet: true, processingDelayMs: 0 });
    ai = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: emulator.url } });
    const f = await ai.files.upload({ file: new Blob([pdf(200)], { type: 'application/pdf' }), config: { mimeType: 'application/pdf' } });
    doc = f.uri!;
  });
  after(() => emulator.close());

  test('a cache of a 200-page PDF: its tokens billed as cached, the answer the same as without it', async () => {
    const docPart = { fileData: { fileUri: doc, mimeType: 'application/pdf' } };
    const cache = await ai.caches.create({ model: MODEL, config: { contents: [{ role: 'user', parts: [docPart] }], ttl: '300s' } });
    assert.match(cache.name!, /^cachedContents\//);
    assert.equal(cache.usageMetadata?.totalTokenCount, 200 * 258);
    const question = { role: 'user', parts: [{ text: 'what is on page 7?' }] };
    const cached = await ai.models.generateContent({ model: MODEL, contents: [question], config: { cachedContent: cache.name! } });
    const whole = await ai.models.generateContent({
      model: MODEL,
      contents: [{ role: 'user', parts: [docPart, { text: 'what is on page 7?' }] }],
    });
    assert.equal(cached.text, whole.text);
    assert.equal(cached.usageMetadata?.promptTokenCount, whole.usageMetadata?.promptTokenCount);
    assert.equal(cached.usageMetadata?.cachedContentTokenCount, 200 * 258);
    assert.equal(whole.usageMetadata?.cachedContentTokenCount, undefined);
    await assert.rejects(
      ai.models.generateContent({ model: MODEL, contents: [question], config: { cachedContent: cache.name!, systemInstruction: 'no' } }),
      /system_instruction, tools or tool_config/,
    );
    const listed = [];
    for await (const c of await ai.caches.list()) listed.push(c.name);
    assert.deepEqual(listed, [cache.name]);
    const updated = await ai.caches.update({ name: cache.name!, config: { ttl: '600s' } });
    assert.ok(Date.parse(updated.expireTime!) > Date.parse(cache.expireTime!));
    await ai.caches.delete({ name: cache.name! });
    await assert.rejects(
      ai.models.generateContent({ model: MODEL, contents: [question], config: { cachedContent: cache.name! } }),
      /CachedContent not found/,
    );
    const b = await billing(emulator.url);
    assert.ok(b.cacheStorageTokenHours[`models/${MODEL}`] > 0, 'storage was billed while it lived');
    assert.equal(b.liveCaches, 0);
  });

  test('a prefix under the model’s minimum is refused as too small', async () => {
    await assert.rejects(
      ai.caches.create({ model: MODEL, config: { contents: [{ role: 'user', parts: [{ text: 'too short to cache' }] }] } }),
      /too small.*min_total_token_count=1024/,
    );
  });
});

/** A batch of `n` questions about one document, on a Ferry started with `env`: its cost in the ledger and its answers. */
async function askAboutDocument(env: Record<string, string>, n: number) {
  const ferry: Ferry = await startFerry({ env: { FERRY_BATCH_MAX_LINES: '2000', ...env } });
  try {
    const client = ferry.client();
    const file = await client.files.create({
      file: await toFile(pdf(200), 'manual.pdf', { type: 'application/pdf' }),
      purpose: 'user_data',
    });
    await eventually(async () => (await client.files.retrieve(file.id)).status === 'processed', 20_000, 'the document');
    const input = questionsAbout(file.id, n, MODEL);
    const b = await waitFinal(client, (await createBatch(client, input)).id, 100);
    assert.equal(b.status, 'completed');
    const { out } = await results(client, b, idsOf(input));
    assert.equal(out.length, n, 'every line answered once');
    const cachedInAnswers = out.reduce((s, l) => s + (l.response.body.usage.prompt_tokens_details?.cached_tokens ?? 0), 0);
    assert.equal(
      b.usage?.input_tokens_details.cached_tokens,
      cachedInAnswers,
      'the batch’s usage counts the cached tokens its answers report',
    );
    const answers = new Map(
      out.map((l) => [l.custom_id, String(l.response.body.choices[0].message.content).replace(/files\/[\w-]+/g, 'files/X')]),
    );
    const usage = await ferry.services.usage.ofBatch('tenant-a', b.id);
    const billed = await billing(ferry.emulator.url);
    await eventually(async () => (await billing(ferry.emulator.url)).liveCaches === 0, 10_000, 'the batch’s caches to be deleted');
    const costs: any = await (
      await ferry.fetch(`/v1/organization/costs?start_time=${Math.floor(Date.now() / 1000) - 3600}&group_by=line_item`)
    ).json();
    const lineItems = costs.data.flatMap((bk: any) => bk.results.map((r: any) => r.line_item));
    return { usage, billed, answers, lineItems, cachedInAnswers };
  } finally {
    await ferry.close();
  }
}

describe('automatic context caching of a batch’s shared document', () => {
  test(
    '1,000 questions about one 200-page PDF: input cost with caching ≤ 0.3 of without, answers unchanged',
    { timeout: 180_000 },
    async (t) => {
      const without = await askAboutDocument({ FERRY_CONTEXT_CACHING: 'off' }, 1000);
      const withCache = await askAboutDocument({}, 1000);
      const inputCost = (u: typeof without.usage) => u.cost_input + u.cost_cached;
      assert.equal(without.usage.cached, 0);
      assert.equal(without.usage.cost_storage, 0);
      assert.ok(
        withCache.usage.cached >= 900 * 200 * 258,
        `most lines read the document from the cache (${withCache.usage.cached} tokens)`,
      );
      assert.equal(withCache.usage.input, without.usage.input, 'the same prompts, token for token');
      const ratio = (inputCost(withCache.usage) + withCache.usage.cost_storage) / inputCost(without.usage);
      t.diagnostic(`input cost with caching (storage included) / without: ${ratio.toFixed(3)}`);
      assert.ok(ratio <= 0.3, `with caching, storage included, the input costs ${ratio.toFixed(3)} of without`);
      assert.ok(withCache.usage.cost_storage > 0, 'the cache’s storage is in the ledger');
      assert.ok(withCache.lineItems.includes(`${MODEL}, cache storage`), withCache.lineItems.join('; '));
      assert.equal(withCache.billed.totals.cachedTokens, withCache.usage.cached, 'the ledger’s cached tokens are the ones Gemini billed');
      assert.equal(withCache.cachedInAnswers, withCache.usage.cached, 'each answer says how much of its prompt was cached');
      assert.deepEqual([...withCache.answers].sort(), [...without.answers].sort(), 'each answer as it is without a cache');
    },
  );

  test('a prefix shared by only two calls is not cached (the first two of any pay in full)', { timeout: 60_000 }, async () => {
    const few = await askAboutDocument({}, 2);
    assert.equal(few.usage.cached, 0);
    assert.equal(few.billed.cacheStorageTokenHours[`models/${MODEL}`] ?? 0, 0, 'no cache was made');
  });
});
