/**
 * Retention the client sets: `expires_after` on an upload and `output_expires_after` on a batch
 * set when the files are deleted everywhere; an upload's unknown form field is a 400 naming it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { eventually, processedFile, startFerry, type Ferry } from './harness.js';
import { sweepExpiredFiles } from '../src/worker/maintenance.js';

const now = () => Math.floor(Date.now() / 1000);

describe('retention the client sets', () => {
  let ferry: Ferry;
  let client: OpenAI;
  before(async () => {
    ferry = await startFerry();
    client = ferry.client();
  });
  after(() => ferry.close());

  async function upload(form: Record<string, string>, body = 'hello\n'): Promise<Response> {
    const fd = new FormData();
    for (const [k, v] of Object.entries(form)) fd.append(k, v);
    fd.append('file', new Blob([body]), 'note.txt');
    return ferry.fetch('/v1/files', { method: 'POST', body: fd });
  }

  test('an unknown upload field is a 400 naming it, as everywhere else', async () => {
    const res = await upload({ purpose: 'user_data', bogus_field: '1' });
    assert.equal(res.status, 400);
    const { error } = await res.json();
    assert.equal(error.param, 'bogus_field');
    assert.match(error.message, /Unknown field "bogus_field"/);
  });

  test('expires_after out of bounds, or with another anchor, is a 400 naming the part to change', async () => {
    for (const [form, param] of [
      [{ 'expires_after[anchor]': 'created_at', 'expires_after[seconds]': '60' }, 'expires_after.seconds'],
      [{ 'expires_after[anchor]': 'created_at', 'expires_after[seconds]': String(31 * 86400) }, 'expires_after.seconds'],
      [{ 'expires_after[anchor]': 'last_active_at', 'expires_after[seconds]': '3600' }, 'expires_after.anchor'],
      [{ expires_after: '3600' }, 'expires_after'],
    ] as const) {
      const res = await upload({ purpose: 'user_data', ...form });
      assert.equal(res.status, 400, JSON.stringify(form));
      const { error } = await res.json();
      assert.equal(error.param, param);
      assert.match(error.message, /3600 to 2592000/);
    }
  });

  test('files.create with expires_after: expires_at says when; at that time the file is deleted everywhere', async () => {
    const created = await client.files.create({
      file: await toFile(Buffer.from('expiring document\n'), 'expiring.txt'),
      purpose: 'user_data',
      expires_after: { anchor: 'created_at', seconds: 3600 },
    });
    assert.equal(created.expires_at, created.created_at + 3600);
    assert.ok((created as any).content_expires_at <= created.created_at + 3600, 'the bytes go no later than the file');
    const done = await processedFile(client, created.id);
    const geminiFile = `${ferry.emulator.url}/v1beta/${done.provider_file}?key=emulator-key`;
    assert.equal((await fetch(geminiFile)).status, 200);

    // Not yet due: nothing happens.
    assert.equal((await sweepExpiredFiles(ferry.services, now() + 60)).expired, 0);
    assert.equal((await client.files.retrieve(created.id)).id, created.id);

    // Due: the record, the staged bytes and the Gemini copy go.
    assert.equal((await sweepExpiredFiles(ferry.services, now() + 3601)).expired, 1);
    await assert.rejects(client.files.retrieve(created.id), (e: any) => e.status === 404);
    await eventually(async () => (await fetch(geminiFile)).status === 404, 10_000, 'the Gemini copy deleted');
    await eventually(async () => (await ferry.services.staging.size(created.id)) === null, 10_000, 'the staged bytes deleted');
    // A second pass (one cut short, say) finds nothing more to do.
    assert.equal((await sweepExpiredFiles(ferry.services, now() + 3601)).expired, 0);
  });

  test('a file without expires_after keeps the default retention', async () => {
    const created = await client.files.create({ file: await toFile(Buffer.from('x\n'), 'x.txt'), purpose: 'user_data' });
    assert.equal(created.expires_at, created.created_at + ferry.config.fileRetentionSeconds);
    assert.equal((await sweepExpiredFiles(ferry.services, now() + 3601)).expired, 0);
  });

  test('batches.create with output_expires_after: the output file expires then', async () => {
    const line = JSON.stringify({
      custom_id: 'a',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gemini-2.0-flash', messages: [{ role: 'user', content: 'hi' }] },
    });
    const input = await client.files.create({ file: await toFile(Buffer.from(line + '\n'), 'in.jsonl'), purpose: 'batch' });
    const created = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      output_expires_after: { anchor: 'created_at', seconds: 7200 },
    });
    assert.deepEqual((created as any).output_expires_after, { anchor: 'created_at', seconds: 7200 });
    let batch = created;
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status))
      batch = await client.batches.retrieve(created.id, { query: { wait: 10 } } as any);
    assert.equal(batch.status, 'completed');
    const output = await client.files.retrieve(batch.output_file_id!);
    assert.equal(output.expires_at, output.created_at + 7200);

    const bad = await ferry.fetch('/v1/batches', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        input_file_id: input.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        output_expires_after: { anchor: 'created_at', seconds: 5 },
      }),
    });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.param, 'output_expires_after.seconds');
  });
});
