/**
 * One rule decides whether a file may be a document of a completion, wherever it is checked:
 * the API (a chat request), batch validation (each line) and the worker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFerry, type Ferry } from './harness.js';

const MODEL = 'gemini-2.0-flash';

describe('file usability', () => {
  let ferry: Ferry;
  let outputFileId = '';
  let inputFileId = '';
  before(async () => {
    ferry = await startFerry();
    const client = ferry.client();
    const line = JSON.stringify({
      custom_id: 'one',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: MODEL, messages: [{ role: 'user', content: 'hi' }] },
    });
    const input = await client.files.create({ file: new File([line], 'in.jsonl'), purpose: 'batch' });
    inputFileId = input.id;
    let b = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(b.status))
      b = await client.batches.retrieve(b.id, { query: { wait: 30 } });
    assert.equal(b.status, 'completed');
    outputFileId = b.output_file_id!;
  });
  after(() => ferry.close());

  const chatWith = (fileId: string) =>
    ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'read' },
              { type: 'file', file: { file_id: fileId } },
            ],
          },
        ],
      }),
    });

  test('a batch output file in a chat request is refused by the API, naming its purpose', async () => {
    const res = await chatWith(outputFileId);
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('x-ferry-job-id'), null, 'refused before a job was queued');
    const body = await res.json();
    assert.equal(body.error.param, 'messages');
    assert.match(body.error.message, /purpose "batch_output"/);
  });

  test('a batch input file is refused the same way', async () => {
    const res = await chatWith(inputFileId);
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /purpose "batch"/);
  });

  test('a batch line that names a batch output file fails validation with the same rule, naming the line', async () => {
    const client = ferry.client();
    const line = JSON.stringify({
      custom_id: 'x',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: MODEL, messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: outputFileId } }] }] },
    });
    const input = await client.files.create({ file: new File([line], 'in2.jsonl'), purpose: 'batch' });
    let b = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(b.status))
      b = await client.batches.retrieve(b.id, { query: { wait: 30 } });
    assert.equal(b.status, 'failed');
    assert.match(b.errors!.data![0].message!, /purpose "batch_output"/);
    assert.equal(b.errors!.data![0].line, 1);
  });
});
