/** The fetch the Gemini SDK calls through (src/providers/gemini/fetch.ts), driven by the real SDK against the emulator. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startEmulator, type Emulator } from '../src/emulator/index.js';
import { createGenAI } from '../src/providers/gemini/client.js';
import { toGeminiError } from '../src/providers/gemini/errors.js';

let emulator: Emulator;
let client: ReturnType<typeof createGenAI>;

before(async () => {
  emulator = await startEmulator({ quiet: true, apiKey: 'k' });
  client = createGenAI({ apiKey: 'k', baseUrl: emulator.url });
});
after(async () => {
  await client.close();
  await emulator.close();
});

test('unary and streamed answers arrive whole', async () => {
  const one = await client.ai.models.generateContent({ model: 'gemini-2.0-flash', contents: 'ping through the lean fetch' });
  assert.match(one.text ?? '', /ping through the lean fetch/);
  assert.ok((one.usageMetadata?.totalTokenCount ?? 0) > 0);
  let streamed = '';
  for await (const chunk of await client.ai.models.generateContentStream({
    model: 'gemini-2.0-flash',
    contents: 'streamed words arrive',
  })) {
    streamed += chunk.text ?? '';
  }
  assert.match(streamed, /streamed words arrive/);
});

test('an error answer keeps its status and Google error body; a cut connection is a retryable network error', async () => {
  const wrongKey = createGenAI({ apiKey: 'wrong', baseUrl: emulator.url });
  try {
    const err = toGeminiError(
      await wrongKey.ai.models.generateContent({ model: 'gemini-2.0-flash', contents: 'x' }).catch((e: unknown) => e),
    );
    assert.ok(err.upstreamStatus !== null && err.upstreamStatus >= 400 && err.upstreamStatus < 500);
    assert.equal(err.retryable, false);
    assert.match(err.message, /API key/i);
  } finally {
    await wrongKey.close();
  }
  emulator.setFaults([{ route: 'generate', kind: 'reset', count: 1 }]);
  const cut = toGeminiError(await client.ai.models.generateContent({ model: 'gemini-2.0-flash', contents: 'x' }).catch((e: unknown) => e));
  assert.equal(cut.upstreamStatus, null);
  assert.equal(cut.retryable, true);
  const again = await client.ai.models.generateContent({ model: 'gemini-2.0-flash', contents: 'after the reset' });
  assert.match(again.text ?? '', /after the reset/);
});

test('the SDK refusing a request before sending it fails at once; a network failure is tried again', () => {
  const refused = toGeminiError(new Error('contents are required'));
  assert.equal(refused.retryable, false);
  assert.equal(refused.upstreamStatus, 400);
  assert.match(refused.message, /contents are required/);
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  assert.equal(toGeminiError(reset).retryable, true);
  assert.equal(toGeminiError(new TypeError('fetch failed', { cause: reset })).retryable, true);
});
