/**
 * `/v1/responses` through the unmodified `openai` Node SDK: string and item inputs (a Ferry file, a
 * data URL file, an image, a file URL fetched by the worker), structured output, a tool call over
 * two turns, streams and their resumption, background responses (polled, long-polled, cancelled,
 * deleted), their webhook verified by the SDK's own verifier, incomplete answers, `store: false`,
 * refusals naming their field, and one tenant's responses out of another's reach.
 *
 * The emulator's reply names what reached the model ("model=… | files=… | inline=… | text=…").
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI, { APIError, toFile } from 'openai';
import { KEYS, eventually, startFerry, type Ferry } from './harness.js';

const MODEL = 'gemini-2.0-flash';
/** A 1×1 PNG. */
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const PNG = Buffer.from(PNG_1X1, 'base64');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
const TEXT = Buffer.from('The ferry sails at nine from the north pier.\n');

/** Asserts a rejected SDK call is an APIError with this status and param (and message, when given). */
async function refused(p: Promise<unknown>, status: number, param: string | RegExp | null, message?: RegExp): Promise<APIError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof APIError, `an APIError: ${String(caught)}`);
  assert.equal(caught.status, status, caught.message);
  if (param instanceof RegExp) assert.match(String(caught.param), param, caught.message);
  else assert.equal(caught.param ?? null, param, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

/** Server-sent events of a raw response, parsed. */
function parseSse(text: string): any[] {
  return text
    .split('\n\n')
    .map((block) => block.split('\n').find((l) => l.startsWith('data: ')))
    .filter((l): l is string => !!l)
    .map((l) => JSON.parse(l.slice('data: '.length)));
}

/** Event types with runs of the same type collapsed (deltas come in several). */
const collapsed = (types: string[]) => types.filter((t, i) => t !== types[i - 1]);

const assertConsecutive = (events: { sequence_number: number }[], first: number) =>
  assert.deepEqual(
    events.map((e) => e.sequence_number),
    events.map((_, i) => first + i),
  );

/** A loopback HTTP server: serves `files` by path and records each request; `/hook` records webhook bodies. */
class LocalServer {
  readonly requests: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  readonly files = new Map<string, { type: string; body: Buffer }>();
  private readonly server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      this.requests.push({ path: req.url ?? '', headers: req.headers, body });
      const f = this.files.get(req.url ?? '');
      if (f) res.writeHead(200, { 'content-type': f.type, 'content-length': f.body.length }).end(f.body);
      else res.writeHead(req.method === 'POST' ? 200 : 404).end();
    });
  });
  port = 0;
  async listen() {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
  }
  url(p: string) {
    return `http://127.0.0.1:${this.port}${p}`;
  }
  at(p: string) {
    return this.requests.filter((r) => r.path === p);
  }
  async close() {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('/v1/responses', () => {
  let ferry: Ferry;
  let client: OpenAI;
  let other: OpenAI;
  let local: LocalServer;

  before(async () => {
    local = new LocalServer();
    await local.listen();
    local.files.set('/doc.pdf', { type: 'application/pdf', body: PDF });
    local.files.set('/notes', { type: 'text/plain; charset=utf-8', body: TEXT });
    local.files.set('/pixel.png', { type: 'image/png', body: PNG });
    ferry = await startFerry({
      env: { FERRY_SYNC_WAIT_SECONDS: '20', WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1', FERRY_WEBHOOK_RETRY_SCHEDULE: '0,0.2,0.2' },
    });
    client = ferry.client();
    other = ferry.client(KEYS.b);
    // The output limit check needs the catalogue a worker reads.
    await eventually(() => ferry.services.models.read(), 20_000, 'a worker to read the catalogue');
  });
  after(async () => {
    await ferry.close();
    await local.close();
  });

  const lastGenerate = () => ferry.emulator.stats().generateRequests.at(-1) as any;

  test('a string input with instructions: completed, and the reply shows what reached the model', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'Where does the ferry go?', instructions: 'Answer briefly.' });
    assert.equal(r.object, 'response');
    assert.match(r.id, /^resp_/);
    assert.equal(r.status, 'completed');
    assert.equal(r.model, MODEL);
    assert.equal(r.output.length, 1);
    assert.equal(r.output[0].type, 'message');
    assert.equal(r.output_text, `model=${MODEL} | system=Answer briefly. | text=Where does the ferry go?`);
    assert.ok(r.usage && r.usage.input_tokens > 0 && r.usage.total_tokens === r.usage.input_tokens + r.usage.output_tokens);
    const again = await client.responses.retrieve(r.id);
    assert.equal(again.output_text, r.output_text);
    assert.equal(again.status, 'completed');
  });

  test('input items with a Ferry file id, file_data (data URL and bare base64) and an image data URL all reach the model', async () => {
    const f = await client.files.create({ file: await toFile(TEXT, 'notes.txt'), purpose: 'user_data' });
    const file = await (await ferry.fetch(`/v1/files/${f.id}?wait=30`)).json();
    assert.equal(file.status, 'processed');
    const csv = Buffer.from('month,passengers\njan,120\n');
    const r = await client.responses.create({
      model: MODEL,
      input: [
        { role: 'developer', content: 'You read documents.' },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Compare these.' },
            { type: 'input_file', file_id: file.id },
            { type: 'input_file', filename: 'doc.pdf', file_data: `data:application/pdf;base64,${PDF.toString('base64')}` },
            { type: 'input_file', filename: 'figures.csv', file_data: csv.toString('base64') },
            { type: 'input_image', image_url: `data:image/png;base64,${PNG_1X1}`, detail: 'auto' },
          ],
        },
      ],
    });
    assert.equal(r.status, 'completed');
    const text = r.output_text;
    assert.ok(text.includes(`files=${file.provider_file}(text/plain,${TEXT.length} bytes`), text);
    assert.ok(
      text.includes(`inline=application/pdf(${PDF.length} bytes), text/csv(${csv.length} bytes), image/png(${PNG.length} bytes)`),
      text,
    );
    assert.ok(text.includes('system=You read documents.'), text);
    assert.ok(text.endsWith('text=Compare these.'), text);
    const parts = lastGenerate().body.contents[0].parts;
    assert.ok(parts.some((p: any) => p.fileData?.fileUri === file.uri && p.fileData?.mimeType === 'text/plain'));
    assert.ok(parts.some((p: any) => p.inlineData?.mimeType === 'application/pdf' && p.inlineData.data === PDF.toString('base64')));
  });

  test('an http file_url is fetched by the worker through the guard and sent inline', async () => {
    const before = local.at('/doc.pdf').length;
    const pdf = await client.responses.create({
      model: MODEL,
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Read the linked file.' },
            { type: 'input_file', file_url: local.url('/doc.pdf') },
          ],
        },
      ],
    });
    assert.equal(pdf.status, 'completed');
    assert.match(pdf.output_text, new RegExp(`inline=application/pdf\\(${PDF.length} bytes\\)`));
    assert.equal(local.at('/doc.pdf').length, before + 1, 'the worker fetched it');
    const part = lastGenerate().body.contents[0].parts.find((p: any) => p.inlineData);
    assert.deepEqual(part.inlineData, { mimeType: 'application/pdf', data: PDF.toString('base64') });
    // A name that says no type: the served Content-Type says it.
    const txt = await client.responses.create({
      model: MODEL,
      input: [{ role: 'user', content: [{ type: 'input_file', file_url: local.url('/notes') }] }],
    });
    assert.match(txt.output_text, new RegExp(`inline=text/plain\\(${TEXT.length} bytes\\)`));
    // An http image URL the same way.
    const img = await client.responses.create({
      model: MODEL,
      input: [{ role: 'user', content: [{ type: 'input_image', image_url: local.url('/pixel.png'), detail: 'auto' }] }],
    });
    assert.match(img.output_text, new RegExp(`inline=image/png\\(${PNG.length} bytes\\)`));
    // A URL that answers 404 is the request's fault, named.
    await refused(
      client.responses.create({
        model: MODEL,
        input: [{ role: 'user', content: [{ type: 'input_file', file_url: local.url('/missing.pdf') }] }],
      }),
      400,
      'input',
      /missing\.pdf.*404/,
    );
  });

  test('text.format json_schema: Gemini is asked for JSON with the schema, and output_text parses', async () => {
    const schema = { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false };
    const r = await client.responses.create({
      model: MODEL,
      input: 'Answer as JSON.',
      text: { format: { type: 'json_schema', name: 'answer', schema, strict: true } },
    });
    assert.equal(r.status, 'completed');
    const parsed = JSON.parse(r.output_text);
    // The emulator answers JSON mode with the facts of the prompt as an object.
    assert.equal(parsed.text, 'Answer as JSON.');
    assert.equal(parsed.model, MODEL);
    const cfg = lastGenerate().body.generationConfig;
    assert.equal(cfg.responseMimeType, 'application/json');
    assert.deepEqual(cfg.responseJsonSchema, schema);
    assert.deepEqual(r.text?.format, { type: 'json_schema', name: 'answer', schema, strict: true });
  });

  test("a conversation sends its earlier files again: turn 2 by previous_response_id, in the background, sees turn 1's file", async () => {
    const f = await client.files.create({ file: await toFile(TEXT, 'turn-one.txt'), purpose: 'user_data' });
    const first = await client.responses.create({
      model: MODEL,
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_file', file_id: f.id },
            { type: 'input_text', text: 'Read this.' },
          ],
        },
      ],
    });
    assert.equal(first.status, 'completed');
    let second: any = await client.responses.create({ model: MODEL, input: 'And now?', previous_response_id: first.id, background: true });
    second = await (await ferry.fetch(`/v1/responses/${second.id}?wait=20`)).json();
    assert.equal(second.status, 'completed', JSON.stringify(second.error));
    assert.match(second.output[0].content[0].text, /files=files\/[^ ]+\(text\/plain/, "the first turn's file reached the model again");
    assert.match(second.output[0].content[0].text, /text=Read this\. \/ .* \/ And now\?$/);
    // A file deleted since cannot go again: the continuation is refused before anything is queued.
    await client.files.delete(f.id);
    await refused(
      client.responses.create({ model: MODEL, input: 'Once more?', previous_response_id: first.id }),
      404,
      'input',
      /No such file/,
    );
  });

  test('a tool call over two turns: function_call, then its output by previous_response_id reaches the model', async () => {
    const tools = [
      {
        type: 'function' as const,
        name: 'get_weather',
        description: 'The weather in a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        strict: false,
      },
    ];
    const first = await client.responses.create({ model: MODEL, input: 'CALL get_weather {"city":"Paris"}', tools });
    assert.equal(first.status, 'completed');
    assert.equal(first.output.length, 1);
    const call = first.output[0];
    assert.equal(call.type, 'function_call');
    if (call.type !== 'function_call') return;
    assert.equal(call.name, 'get_weather');
    assert.ok(call.call_id, 'a call_id');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    const decl = lastGenerate().body.tools[0].functionDeclarations[0];
    assert.equal(decl.name, 'get_weather');

    const second = await client.responses.create({
      model: MODEL,
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temp":21}' }],
      tools,
    });
    assert.equal(second.status, 'completed');
    assert.equal(second.previous_response_id, first.id);
    assert.match(second.output_text, /functionResponse=get_weather\{"temp":21\}/);
    assert.match(second.output_text, /text=CALL get_weather \{"city":"Paris"\}/, 'the first turn is part of the conversation');
    const contents = lastGenerate().body.contents;
    assert.deepEqual(
      contents.map((c: any) => [c.role, Object.keys(c.parts[0])[0]]),
      [
        ['user', 'text'],
        ['model', 'functionCall'],
        ['user', 'functionResponse'],
      ],
    );
  });

  test('previous_response_id of another tenant or unknown: 404 naming previous_response_id', async () => {
    const mine = await client.responses.create({ model: MODEL, input: 'mine' });
    await refused(
      other.responses.create({ model: MODEL, input: 'theirs', previous_response_id: mine.id }),
      404,
      'previous_response_id',
      new RegExp(mine.id),
    );
    await refused(
      client.responses.create({ model: MODEL, input: 'x', previous_response_id: 'resp_doesnotexist' }),
      404,
      'previous_response_id',
      /resp_doesnotexist/,
    );
  });

  test('stream: events numbered 0,1,2,… in the documented order; the final response reads as retrieved', async () => {
    const stream = client.responses.stream({ model: MODEL, input: 'stream this sentence back to me please' });
    const events: any[] = [];
    for await (const e of stream) events.push(e);
    const final = await stream.finalResponse();
    assertConsecutive(events, 0);
    assert.deepEqual(collapsed(events.map((e) => e.type)), [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    assert.ok(events.filter((e) => e.type === 'response.output_text.delta').length >= 2, 'several deltas');
    const deltas = events
      .filter((e) => e.type === 'response.output_text.delta')
      .map((e) => e.delta)
      .join('');
    assert.equal(final.status, 'completed');
    assert.equal(deltas, final.output_text);
    assert.match(final.output_text, /text=stream this sentence back to me please$/);
    const retrieved = await client.responses.retrieve(final.id);
    assert.equal(retrieved.output_text, final.output_text);
    assert.equal(events.at(-1).response.id, final.id);
    assert.equal(events[0].response.status, 'in_progress');
  });

  test('a streamed answer cut at max_output_tokens ends with response.incomplete', async () => {
    const stream = client.responses.stream({ model: MODEL, input: 'one two three four five six seven eight', max_output_tokens: 2 });
    const types: string[] = [];
    for await (const e of stream) types.push(e.type);
    assert.equal(types.at(-1), 'response.incomplete');
    const final = await stream.finalResponse();
    assert.equal(final.status, 'incomplete');
    assert.equal(final.incomplete_details?.reason, 'max_output_tokens');
  });

  test('background: queued at once, then polled to completed; ?wait long-polls', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'in the background', background: true });
    assert.equal(r.status, 'queued');
    assert.equal(r.background, true);
    assert.deepEqual(r.output, []);
    const done = await eventually(
      async () => {
        const now = await client.responses.retrieve(r.id);
        assert.ok(['queued', 'in_progress', 'completed'].includes(now.status ?? ''), now.status);
        return now.status === 'completed' ? now : null;
      },
      10_000,
      'completed',
    );
    assert.match(done.output_text, /text=in the background$/);

    ferry.emulator.setLatency({ kind: 'fixed', ms: 800 });
    try {
      const slow = await client.responses.create({ model: MODEL, input: 'long poll me', background: true });
      const started = Date.now();
      const res = await ferry.fetch(`/v1/responses/${slow.id}?wait=10`);
      const polled = await res.json();
      assert.equal(res.status, 200);
      assert.equal(polled.status, 'completed', 'one long-poll waits until the end');
      assert.ok(Date.now() - started >= 500, `it waited (${Date.now() - started} ms)`);
      assert.match(polled.output[0].content[0].text, /text=long poll me$/);
    } finally {
      ferry.emulator.setLatency({ kind: 'fixed', ms: 0 });
    }
  });

  test('cancel: a background response cancelled while it runs stays cancelled; finished or direct ones cannot be', async () => {
    ferry.emulator.setLatency({ kind: 'fixed', ms: 2000 });
    try {
      const r = await client.responses.create({ model: MODEL, input: 'cancel me', background: true });
      await eventually(async () => (await client.responses.retrieve(r.id)).status === 'in_progress', 5000, 'in_progress');
      const cancelled = await client.responses.cancel(r.id);
      assert.equal(cancelled.status, 'cancelled');
      assert.equal((await client.responses.cancel(r.id)).status, 'cancelled', 'cancelling again answers the same');
      // After the model has answered, the answer is discarded.
      await new Promise((res) => setTimeout(res, 2500));
      const after = await client.responses.retrieve(r.id);
      assert.equal(after.status, 'cancelled');
      assert.deepEqual(after.output, []);
    } finally {
      ferry.emulator.setLatency({ kind: 'fixed', ms: 0 });
    }
    const finished = await client.responses.create({ model: MODEL, input: 'done', background: true });
    await client.responses.retrieve(finished.id, {}, { query: { wait: 10 } });
    const conflict = await refused(client.responses.cancel(finished.id), 409, null);
    assert.equal(conflict.code, 'response_finished');
    const direct = await client.responses.create({ model: MODEL, input: 'direct' });
    await refused(client.responses.cancel(direct.id), 400, 'response_id');
  });

  test('delete: the response is gone afterwards (retrieve, input_items and delete are 404)', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'delete me' });
    const res = await ferry.fetch(`/v1/responses/${r.id}`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { id: r.id, object: 'response', deleted: true });
    await refused(client.responses.retrieve(r.id), 404, 'response_id');
    await refused(client.responses.inputItems.list(r.id), 404, 'response_id');
    await refused(client.responses.delete(r.id), 404, 'response_id');
  });

  test('delete while running: the response is cancelled and stays gone after the model answers', async () => {
    ferry.emulator.setLatency({ kind: 'fixed', ms: 1000 });
    try {
      const r = await client.responses.create({ model: MODEL, input: 'delete me mid-flight', background: true });
      await eventually(async () => (await client.responses.retrieve(r.id)).status === 'in_progress', 5000, 'in_progress');
      await client.responses.delete(r.id);
      await refused(client.responses.retrieve(r.id), 404, 'response_id');
      await new Promise((res) => setTimeout(res, 1500));
      await refused(client.responses.retrieve(r.id), 404, 'response_id');
      const jobs = (await (await ferry.fetch('/v1/jobs?limit=100')).json()).data;
      assert.ok(!jobs.some((j: any) => j.id === `job-${r.id.slice('resp_'.length)}`), 'no job record came back');
    } finally {
      ferry.emulator.setLatency({ kind: 'fixed', ms: 0 });
    }
  });

  test('input_items: newest first by default, paged with limit and after; order=asc', async () => {
    const r = await client.responses.create({
      model: MODEL,
      input: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'second' },
        { role: 'user', content: 'third' },
      ],
    });
    const textOf = (item: any) => item.content[0].text;
    const page = await client.responses.inputItems.list(r.id, { limit: 1 });
    assert.equal(page.data.length, 1);
    assert.equal(textOf(page.data[0]), 'third');
    assert.equal(page.has_more, true);
    const next = await client.responses.inputItems.list(r.id, { limit: 1, after: page.data[0].id });
    assert.equal(textOf(next.data[0]), 'second');
    const all: string[] = [];
    for await (const item of client.responses.inputItems.list(r.id, { limit: 1 })) all.push(textOf(item));
    assert.deepEqual(all, ['third', 'second', 'first']);
    const asc = await client.responses.inputItems.list(r.id, { order: 'asc' });
    assert.deepEqual(asc.data.map(textOf), ['first', 'second', 'third']);
    assert.equal(asc.has_more, false);
    assert.ok(asc.data.every((i: any) => i.type === 'message' && typeof i.id === 'string' && i.status === 'completed'));
    assert.deepEqual(
      asc.data.map((i: any) => i.role),
      ['user', 'assistant', 'user'],
    );
  });

  test('background + stream: resumed with starting_after, only later events arrive', async () => {
    ferry.emulator.setLatency({ kind: 'fixed', ms: 600 });
    let id: string;
    try {
      // Leave the stream after its first event, while the model is still working.
      const ac = new AbortController();
      const res = await ferry.fetch('/v1/responses', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, input: 'resume me later please', background: true, stream: true }),
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      let text = '';
      while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
      ac.abort();
      await reader.cancel().catch(() => {});
      const [created] = parseSse(text);
      assert.equal(created.type, 'response.created');
      assert.equal(created.sequence_number, 0);
      assert.equal(created.response.status, 'queued');
      id = created.response.id;
      // The rest of it, still running.
      const rest = parseSse(await (await ferry.fetch(`/v1/responses/${id}?stream=true&starting_after=0`)).text());
      assertConsecutive(rest, 1);
      assert.equal(rest[0].type, 'response.in_progress');
      assert.equal(rest.at(-1).type, 'response.completed');
    } finally {
      ferry.emulator.setLatency({ kind: 'fixed', ms: 0 });
    }
    // After the end: from 4 on, raw and through the SDK's helper.
    const later = parseSse(await (await ferry.fetch(`/v1/responses/${id}?stream=true&starting_after=4`)).text());
    assert.equal(later[0].sequence_number, 5);
    assertConsecutive(later, 5);
    assert.equal(later.at(-1).type, 'response.completed');
    const resumed: number[] = [];
    for await (const e of await client.responses.retrieve(id, { stream: true, starting_after: 4 })) resumed.push(e.sequence_number);
    assert.deepEqual(
      resumed,
      later.map((e) => e.sequence_number),
    );
    const sdk = client.responses.stream({ response_id: id, starting_after: 4 });
    const seen: number[] = [];
    for await (const e of sdk) seen.push(e.sequence_number);
    assert.ok(seen.length > 0 && seen.every((n) => n > 4), seen.join());
    const final = await sdk.finalResponse();
    assert.equal(final.output_text, (await client.responses.retrieve(id)).output_text);
    assert.match(final.output_text, /text=resume me later please$/);
    // A response that was not streamed has no events to resume.
    const plain = await client.responses.create({ model: MODEL, input: 'not streamed' });
    assert.equal((await ferry.fetch(`/v1/responses/${plain.id}?stream=true`)).status, 400);
  });

  test('response.completed webhook: a background response announces itself; the SDK verifies the event', async () => {
    const res = await ferry.fetch('/v1/webhook_endpoints', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: local.url('/hook'), events: ['response.completed'] }),
    });
    assert.equal(res.status, 201);
    const { secret } = await res.json();
    const direct = await client.responses.create({ model: MODEL, input: 'answered directly' });
    const bg = await client.responses.create({ model: MODEL, input: 'tell my webhook', background: true });
    const got = await eventually(async () => local.at('/hook').find((r) => r.body.includes(bg.id)), 10_000, 'the webhook');
    const event: any = await client.webhooks.unwrap(got.body, got.headers as Record<string, string>, secret);
    assert.deepEqual(Object.keys(event).sort(), ['created_at', 'data', 'id', 'object', 'type']);
    assert.equal(event.object, 'event');
    assert.equal(event.type, 'response.completed');
    assert.deepEqual(event.data, { id: bg.id });
    assert.match(event.id, /^evt_/);
    assert.equal(got.headers['webhook-id'], event.id);
    assert.ok(Math.abs(event.created_at - Date.now() / 1000) < 60);
    await assert.rejects(client.webhooks.unwrap(got.body, got.headers as Record<string, string>, 'whsec_' + 'AAAA'.repeat(8)));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(local.at('/hook').filter((r) => r.body.includes(direct.id)).length, 0, 'a direct response sends no webhook');
    assert.equal(local.at('/hook').filter((r) => r.body.includes(bg.id)).length, 1, 'delivered once');
  });

  test('incomplete: a small max_output_tokens, and a safety stop', async () => {
    const cut = await client.responses.create({
      model: MODEL,
      input: 'one two three four five six seven eight nine ten',
      max_output_tokens: 2,
    });
    assert.equal(cut.status, 'incomplete');
    assert.deepEqual(cut.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(cut.max_output_tokens, 2);
    assert.equal(cut.output_text.split(/\s+/).length, 2);
    assert.equal(lastGenerate().body.generationConfig.maxOutputTokens, 2);
    const blocked = await client.responses.create({ model: MODEL, input: 'FINISH:SAFETY tell me' });
    assert.equal(blocked.status, 'incomplete');
    assert.deepEqual(blocked.incomplete_details, { reason: 'content_filter' });
    assert.equal(blocked.output_text, '');
  });

  test('store: false is answered but not kept; in the background it is a 400 naming store', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'forget me', store: false });
    assert.equal(r.status, 'completed');
    assert.equal((r as unknown as { store: boolean }).store, false);
    assert.match(r.output_text, /text=forget me$/);
    await refused(client.responses.retrieve(r.id), 404, 'response_id');
    await refused(client.responses.inputItems.list(r.id), 404, 'response_id');
    await refused(client.responses.create({ model: MODEL, input: 'x', store: false, background: true }), 400, 'store');
  });

  test('fields Ferry cannot honour are a 400 naming them; an unknown model is a 404; nothing is queued', async () => {
    const before = (await (await ferry.fetch('/v1/jobs?limit=100')).json()).data.length;
    const base = { model: MODEL, input: 'hello' };
    await refused(client.responses.create({ ...base, foo: 1 } as any), 400, 'foo', /foo/);
    await refused(client.responses.create({ ...base, tools: [{ type: 'web_search' }] } as any), 400, 'tools[0].type', /web_search/);
    await refused(client.responses.create({ ...base, include: ['x'] } as any), 400, 'include[0]');
    await refused(client.responses.create({ ...base, reasoning: { summary: 'auto' } }), 400, 'reasoning.summary');
    await refused(client.responses.create({ ...base, truncation: 'auto' }), 400, 'truncation');
    await refused(client.responses.create({ ...base, max_output_tokens: 100_000 }), 400, 'max_output_tokens', /8192/);
    const typo = await refused(client.responses.create({ ...base, model: 'gemini-2.0-flsh' }), 404, 'model', /gemini-2\.0-flsh/);
    assert.equal(typo.code, 'model_not_found');
    // Not a Gemini name at all: refused before the catalogue is consulted.
    await refused(client.responses.create({ ...base, model: 'gpt-4o' }), 400, 'model', /gpt-4o/);
    await refused(client.responses.create({ model: MODEL } as any), 400, 'input');
    const after = (await (await ferry.fetch('/v1/jobs?limit=100')).json()).data.length;
    assert.equal(after, before, 'no job was made');
  });

  test('/v1/jobs lists a response as a job of type response', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'list my job', metadata: { ticket: 'R-1' } });
    const jobId = `job-${r.id.slice('resp_'.length)}`;
    const list = await (await ferry.fetch('/v1/jobs?limit=100')).json();
    const job = list.data.find((j: any) => j.id === jobId);
    assert.ok(job, `job ${jobId} is listed`);
    assert.equal(job.type, 'response');
    assert.equal(job.status, 'succeeded');
    assert.deepEqual(job.metadata, { ticket: 'R-1' });
    assert.deepEqual(r.metadata, { ticket: 'R-1' });
    const one = await (await ferry.fetch(`/v1/jobs/${jobId}`)).json();
    assert.equal(one.type, 'response');
  });

  test("another tenant's response is 404 on retrieve, cancel, delete and input_items; a chat job is not a response", async () => {
    const r = await client.responses.create({ model: MODEL, input: 'private', background: true });
    await refused(other.responses.retrieve(r.id), 404, 'response_id');
    await refused(other.responses.cancel(r.id), 404, 'response_id');
    await refused(other.responses.delete(r.id), 404, 'response_id');
    await refused(other.responses.inputItems.list(r.id), 404, 'response_id');
    assert.equal((await ferry.fetch(`/v1/responses/${r.id}?stream=true`, { key: KEYS.b })).status, 404);
    const still = await client.responses.retrieve(r.id, {}, { query: { wait: 10 } });
    assert.equal(still.status, 'completed', 'untouched by the other tenant');
    const chat = await ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'a chat' }] }),
    });
    const job = await chat.json();
    await refused(client.responses.retrieve(`resp_${job.id.slice('job-'.length)}`), 404, 'response_id');
    await refused(client.responses.retrieve('not-a-response-id'), 404, 'response_id');
  });

  test('reasoning.effort is a thinking budget; thought tokens count as reasoning tokens, thoughts are not output', async () => {
    const r = await client.responses.create({ model: 'gemini-2.5-flash', input: 'think about it', reasoning: { effort: 'low' } });
    assert.equal(r.status, 'completed');
    assert.equal(lastGenerate().body.generationConfig.thinkingConfig.thinkingBudget, 1024);
    assert.equal(r.reasoning?.effort, 'low');
    const u = r.usage!;
    assert.ok(u.output_tokens_details.reasoning_tokens > 0, JSON.stringify(u));
    assert.ok(u.output_tokens > u.output_tokens_details.reasoning_tokens, 'output tokens include the reasoning tokens');
    assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
    assert.deepEqual(
      r.output.map((o) => o.type),
      ['message'],
    );
    assert.match(r.output_text, /^model=gemini-2\.5-flash \| text=think about it$/);
    // A model that always thinks takes its least budget for "none".
    await client.responses.create({ model: 'gemini-2.5-pro', input: 'no thinking', reasoning: { effort: 'none' } });
    assert.equal(lastGenerate().body.generationConfig.thinkingConfig.thinkingBudget, 128);
  });

  test('tool_choice, temperature and top_p map to Gemini and are echoed', async () => {
    const tools = [{ type: 'function' as const, name: 'lookup', parameters: { type: 'object', properties: {} }, strict: false }];
    const r = await client.responses.create({
      model: MODEL,
      input: 'no call here',
      tools,
      tool_choice: { type: 'function', name: 'lookup' },
      temperature: 0.3,
      top_p: 0.8,
    });
    const body = lastGenerate().body;
    assert.deepEqual(body.toolConfig, { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['lookup'] } });
    assert.equal(body.generationConfig.temperature, 0.3);
    assert.equal(body.generationConfig.topP, 0.8);
    assert.deepEqual(r.tool_choice, { type: 'function', name: 'lookup' });
    assert.equal(r.temperature, 0.3);
    assert.equal(r.top_p, 0.8);
    await client.responses.create({ model: MODEL, input: 'none', tools, tool_choice: 'none' });
    assert.equal(lastGenerate().body.toolConfig.functionCallingConfig.mode, 'NONE');
  });

  test('a conversation kept by the client: the previous output items sent back as input', async () => {
    const tools = [{ type: 'function' as const, name: 'get_weather', parameters: { type: 'object' }, strict: false }];
    const input: any[] = [{ role: 'user', content: 'CALL get_weather {"city":"Oslo"}' }];
    const first = await client.responses.create({ model: MODEL, input, tools });
    const call = first.output[0] as any;
    assert.equal(call.type, 'function_call');
    input.push(...first.output, { type: 'function_call_output', call_id: call.call_id, output: 'cold' });
    const second = await client.responses.create({ model: MODEL, input, tools });
    assert.equal(second.status, 'completed');
    assert.match(second.output_text, /functionResponse=get_weather\{"output":"cold"\}/);
    // Then a third turn with the assistant's message among the items.
    input.push(...second.output, { role: 'user', content: 'thanks' });
    const third = await client.responses.create({ model: MODEL, input, tools });
    assert.ok(third.output_text.includes('functionResponse=get_weather{"output":"cold"}'), third.output_text);
    assert.ok(third.output_text.endsWith(`text=CALL get_weather {"city":"Oslo"} / ${second.output_text} / thanks`), third.output_text);
    assert.deepEqual(
      lastGenerate().body.contents.map((c: any) => c.role),
      ['user', 'model', 'user', 'model', 'user'],
    );
  });

  test('a function_call_output whose call_id matches no function call is a 400 naming it', async () => {
    const err = await refused(
      client.responses.create({
        model: MODEL,
        input: [
          { role: 'user', content: 'hello' },
          { type: 'function_call_output', call_id: 'call_nowhere', output: '{}' },
        ],
      }),
      400,
      /^input/,
    );
    assert.match(err.message, /call_nowhere/);
  });

  test('a streamed tool call: its item and argument events, and the SDK assembles it', async () => {
    const stream = client.responses.stream({
      model: MODEL,
      input: 'CALL get_weather {"city":"Rome"}',
      tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object' }, strict: false }],
    });
    const events: any[] = [];
    for await (const e of stream) events.push(e);
    assertConsecutive(events, 0);
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.function_call_arguments.delta',
        'response.function_call_arguments.done',
        'response.output_item.done',
        'response.completed',
      ],
    );
    const final = await stream.finalResponse();
    const call = final.output[0] as any;
    assert.equal(call.type, 'function_call');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Rome' });
    const retrieved = (await client.responses.retrieve(final.id)).output[0] as any;
    assert.equal(retrieved.call_id, call.call_id);
    assert.equal(retrieved.arguments, call.arguments);
  });

  test('Gemini refusing the request: a direct response is the 400, a streamed one ends with response.failed', async () => {
    ferry.emulator.setFaults([{ route: 'generate', kind: '400', count: 1 }]);
    await refused(client.responses.create({ model: MODEL, input: 'refuse me' }), 400, null);
    ferry.emulator.setFaults([{ route: 'stream', kind: '400', count: 1 }]);
    try {
      const res = await ferry.fetch('/v1/responses', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, input: 'refuse my stream', stream: true }),
      });
      const events = parseSse(await res.text());
      assertConsecutive(events, 0);
      assert.equal(events[0].type, 'response.created');
      const last = events.at(-1);
      assert.equal(last.type, 'response.failed');
      assert.equal(last.response.status, 'failed');
      assert.ok(last.response.error?.message, JSON.stringify(last.response.error));
      const id = events[0].response.id;
      const failed = await client.responses.retrieve(id);
      assert.equal(failed.status, 'failed');
    } finally {
      ferry.emulator.setFaults([]);
    }
  });

  test('a response that outlasts the synchronous wait is answered as it stands, and finishes', async () => {
    const quick = await startFerry({ env: { FERRY_SYNC_WAIT_SECONDS: '1' } });
    try {
      quick.emulator.setLatency({ kind: 'fixed', ms: 2000 });
      const c = quick.client();
      const r = await c.responses.create({ model: MODEL, input: 'take your time' });
      assert.ok(['queued', 'in_progress'].includes(r.status ?? ''), r.status);
      assert.deepEqual(r.output, []);
      // A conversation cannot continue from it yet.
      await refused(c.responses.create({ model: MODEL, input: 'next', previous_response_id: r.id }), 400, 'previous_response_id');
      const done = await c.responses.retrieve(r.id, {}, { query: { wait: 10 } });
      assert.equal(done.status, 'completed');
      assert.match(done.output_text, /text=take your time$/);
    } finally {
      await quick.close();
    }
  });

  test('a file still uploading is waited for (queued), then reaches the model', async () => {
    ferry.emulator.setFaults([{ route: 'upload.chunk', kind: 'latency', latencyMs: 1200, count: 1 }]);
    try {
      const f = await client.files.create({ file: await toFile(PDF, 'late.pdf'), purpose: 'user_data' });
      const r = await client.responses.create({
        model: MODEL,
        input: [{ role: 'user', content: [{ type: 'input_file', file_id: f.id }] }],
        background: true,
      });
      await new Promise((res) => setTimeout(res, 300));
      assert.equal((await client.responses.retrieve(r.id)).status, 'queued', 'waiting for its file');
      const done = await client.responses.retrieve(r.id, {}, { query: { wait: 15 } });
      assert.equal(done.status, 'completed');
      assert.match(done.output_text, /files=files\/\S+\(application\/pdf/);
    } finally {
      ferry.emulator.setFaults([]);
    }
  });

  test('another tenant’s file, or an unknown one, is a 404 naming input and the file', async () => {
    const f = await client.files.create({ file: await toFile(TEXT, 'mine.txt'), purpose: 'user_data' });
    const withFile = (id: string) => ({
      model: MODEL,
      input: [{ role: 'user' as const, content: [{ type: 'input_file' as const, file_id: id }] }],
    });
    await refused(other.responses.create(withFile(f.id)), 404, /^input/, new RegExp(f.id));
    await refused(client.responses.create(withFile('file-nope')), 404, /^input/, /file-nope/);
  });

  test('Idempotency-Key: the same request twice is one response', async () => {
    const body = { model: MODEL, input: 'once only', background: true };
    const a = await client.responses.create(body, { headers: { 'Idempotency-Key': 'resp-once' } });
    const b = await client.responses.create(body, { headers: { 'Idempotency-Key': 'resp-once' } });
    assert.equal(a.id, b.id);
    const c = await ferry.fetch('/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'resp-once' },
      body: JSON.stringify({ ...body, input: 'something else' }),
    });
    assert.equal(c.status, 422);
  });
});

describe('/v1/responses without private networks (the default)', () => {
  let ferry: Ferry;
  let local: LocalServer;
  before(async () => {
    local = new LocalServer();
    await local.listen();
    local.files.set('/doc.pdf', { type: 'application/pdf', body: PDF });
    local.files.set('/pixel.png', { type: 'image/png', body: PNG });
    ferry = await startFerry({ env: { FERRY_SYNC_WAIT_SECONDS: '20' } });
  });
  after(async () => {
    await ferry.close();
    await local.close();
  });

  test('a loopback file_url fails with a clear error naming the URL, directly and in the background', async () => {
    const client = ferry.client();
    const url = local.url('/doc.pdf');
    const input = [{ role: 'user' as const, content: [{ type: 'input_file' as const, file_url: url }] }];
    const err = await refused(client.responses.create({ model: MODEL, input }), 400, 'input');
    assert.ok(err.message.includes(url), err.message);
    assert.equal(err.code, 'url_not_allowed');
    assert.match(err.message, /WEBHOOK_ALLOW_PRIVATE_NETWORKS/);
    const bg = await client.responses.create({ model: MODEL, input, background: true });
    const failed = await client.responses.retrieve(bg.id, {}, { query: { wait: 10 } });
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'url_not_allowed');
    assert.ok(failed.error?.message.includes(url), failed.error?.message);
    assert.equal(local.requests.length, 0, 'the guard refused before connecting');
  });

  test('a loopback image_url is refused the same way, naming input (the field of a Responses request)', async () => {
    const url = local.url('/pixel.png');
    const input = [{ role: 'user' as const, content: [{ type: 'input_image' as const, image_url: url, detail: 'auto' as const }] }];
    const err = await refused(ferry.client().responses.create({ model: MODEL, input }), 400, /^input/);
    assert.ok(err.message.includes(url), err.message);
    assert.equal(err.code, 'url_not_allowed');
  });
});
