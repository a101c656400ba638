/** Batch requests, creating batches and reading their results, for the batch tests. */
import assert from 'node:assert/strict';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';

export const MODEL = 'gemini-2.0-flash';
export const FINAL = ['completed', 'failed', 'expired', 'cancelled'];

export type Line = Record<string, unknown>;
export const request = (id: string, text = `question ${id}`): Line => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: MODEL, messages: [{ role: 'user', content: text }] },
});
export const requests = (n: number, prefix = 'r') => Array.from({ length: n }, (_, i) => request(`${prefix}-${i}`));
export const idsOf = (ls: Line[]) => ls.map((l) => l.custom_id as string);

export async function createBatch(
  client: OpenAI,
  lines: Array<Line | string>,
  window = '24h',
  metadata?: Record<string, string>,
  execution?: 'direct' | 'gemini_batch',
  endpoint: '/v1/chat/completions' | '/v1/responses' | '/v1/embeddings' = '/v1/chat/completions',
): Promise<Batch> {
  const text = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');
  const input = await client.files.create({ file: await toFile(Buffer.from(`${text}\n`), 'input.jsonl'), purpose: 'batch' });
  const body = { input_file_id: input.id, endpoint: endpoint as '/v1/chat/completions', completion_window: window as '24h', metadata };
  // `execution` is Ferry's field beside OpenAI's; the SDK sends it as it is.
  return client.batches.create((execution ? { ...body, execution } : body) as typeof body);
}

export async function waitFinal(client: OpenAI, id: string, seconds = 60): Promise<Batch> {
  const deadline = Date.now() + seconds * 1000;
  let b = await client.batches.retrieve(id);
  while (!FINAL.includes(b.status) && Date.now() < deadline) b = await client.batches.retrieve(id, { query: { wait: 5 } });
  return b;
}

export async function lines(client: OpenAI, fileId: string | null | undefined): Promise<any[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Output and error lines; asserts each custom_id appears exactly once across both. */
export async function results(client: OpenAI, b: Batch, ids: string[], object = 'chat.completion') {
  const out = await lines(client, b.output_file_id);
  const err = await lines(client, b.error_file_id);
  const seen = [...out, ...err].map((l) => l.custom_id).sort();
  assert.deepEqual(seen, [...ids].sort(), 'every custom_id exactly once across output and error files');
  assert.deepEqual(b.request_counts, { total: ids.length, completed: out.length, failed: err.length });
  for (const l of out) {
    assert.equal(l.error, null);
    assert.equal(l.response.status_code, 200);
    assert.equal(l.response.body.object, object);
  }
  for (const l of err) assert.equal(l.response, null);
  return { out, err };
}
