/**
 * The OpenAPI document (`GET /openapi.json`) against the service that serves it:
 * - it is a valid OpenAPI 3.1 document, and every schema in it compiles as JSON Schema 2020-12;
 * - the routes the Express app registers are exactly the documented paths and methods;
 * - every documented operation is called (valid requests, and invalid ones), and each real answer's
 *   status is documented for that operation and its body matches the schema documented for it
 *   (Server-Sent Events event by event; the webhook events Ferry sent, against `webhooks`).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formatsPlugin from 'ajv-formats';
import { KEYS, eventually, startFerry, type Ferry } from './harness.js';

const MODEL = 'gemini-2.0-flash';
const RESPONSE_MODEL = 'gemini-2.5-flash';
const DOC_ID = 'ferry-openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** Paths under which a third-party app serves its own pages and API: documented as one page each. */
const MOUNTED_APPS = ['/admin/queues', '/console'];

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

interface Call {
  /** The documented path, e.g. `/v1/files/{file_id}`. */
  path: string;
  params?: Record<string, string>;
  query?: Record<string, string | number | string[]>;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  key?: string | null;
  /** A request the document describes as valid: its JSON body must match the documented request schema. */
  valid?: boolean;
}

/** A tiny HTTP server on loopback: webhook receiver and the origin of a file named by URL. */
class Origin {
  readonly events: string[] = [];
  readonly server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/hook') {
        this.events.push(body);
        return void res.writeHead(200).end();
      }
      if (req.method === 'POST' && req.url === '/gone') return void res.writeHead(410).end();
      if (req.url === '/doc.txt') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('A document named by URL.\n');
      res.writeHead(404).end();
    });
  });
  url = (p: string) => `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${p}`;
  listen = () => new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
  close = () => {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(r));
  };
}

/** JSON Pointer escaping of one reference token. */
const token = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');
/** A documented path or an Express route, with its parameter names left out: `/v1/files/{}`. */
const shape = (p: string) =>
  p
    .replace(/\{[^}]+\}|:\w+/g, '{}')
    .replace(/\/+/g, '/')
    .replace(/(.)\/$/, '$1');
const mediaType = (header: string | null) => (header ?? '').split(';')[0].trim().toLowerCase();

/** The events of a Server-Sent Events body: the `data` of each (comments and `event:` lines aside). */
function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .map((block) =>
      block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n'),
    )
    .filter(Boolean);
}

/**
 * Every route the Express app registers, as `METHOD /path`; a mounted app (MOUNTED_APPS) as one GET,
 * and any other middleware mounted at a path as `USE /path`, which no document describes.
 */
function appRoutes(app: any): string[] {
  const routes = new Set<string>();
  const walk = (stack: any[], prefix: string) => {
    for (const layer of stack) {
      const at = layer.route ? layer.route.path : layer.rawPath;
      assert.equal(typeof at, 'string', `a layer under "${prefix}" is mounted at ${String(at)}: only string paths can be compared`);
      const full = shape(`${prefix}/${at}`);
      if (layer.route) {
        for (const m of Object.keys(layer.route.methods)) routes.add(`${m.toUpperCase()} ${full}`);
      } else if (MOUNTED_APPS.includes(full)) routes.add(`GET ${full}`);
      else if (Array.isArray(layer.handle?.stack)) walk(layer.handle.stack, full);
      else if (at !== '/') routes.add(`USE ${full}`);
    }
  };
  walk(app.router.stack, '');
  return [...routes].sort();
}

describe('the OpenAPI document', () => {
  let ferry: Ferry;
  let origin: Origin;
  let doc: any;
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  formatsPlugin.default(ajv);
  // OpenAPI's own formats, beside JSON Schema's.
  for (const f of ['binary', 'int32', 'int64', 'float', 'double', 'password']) ajv.addFormat(f, true);
  // The document is added whole, so that schemas are compiled where they are and their $refs resolve:
  // the OpenAPI Object's fields are known (and not validated) at its root.
  ajv.addVocabulary([
    'openapi',
    'info',
    'jsonSchemaDialect',
    'servers',
    'paths',
    'webhooks',
    'components',
    'security',
    'tags',
    'externalDocs',
  ]);
  const validators = new Map<string, ValidateFunction>();
  /** Each documented operation, `METHOD /path`: the statuses it answered. */
  const answered = new Map<string, number[]>();
  let checkedBodies = 0;

  /** The validator of the schema at `pointer` in the document (a JSON Pointer, `#/…`). */
  function validatorAt(pointer: string): ValidateFunction {
    let v = validators.get(pointer);
    if (!v) validators.set(pointer, (v = ajv.compile({ $ref: `${DOC_ID}${pointer}` })));
    return v;
  }

  function assertMatches(pointer: string, value: unknown, what: string) {
    const v = validatorAt(pointer);
    assert.ok(v(value), `${what} does not match ${pointer}: ${ajv.errorsText(v.errors)}\n${JSON.stringify(value).slice(0, 1500)}`);
    checkedBodies++;
  }

  /** The object a `$ref` names in the document (one level), or the object itself. */
  function deref(o: any): { value: any; pointer: string | null } {
    if (!o?.$ref) return { value: o, pointer: null };
    const pointer = o.$ref as string;
    const value = pointer
      .slice(2)
      .split('/')
      .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'))
      .reduce((node: any, t) => node?.[t], doc);
    assert.ok(value, `${pointer} is in the document`);
    return { value, pointer };
  }

  /** One request to a documented operation; its answer is held to the document. */
  async function call(method: string, c: Call): Promise<Answer> {
    const operation = doc.paths[c.path]?.[method.toLowerCase()];
    assert.ok(operation, `${method} ${c.path} is documented`);
    const opPointer = `#/paths/${token(c.path)}/${method.toLowerCase()}`;
    const headers: Record<string, string> = { ...c.headers };
    let body = c.body;
    if (c.json !== undefined) {
      body = JSON.stringify(c.json);
      headers['content-type'] ??= 'application/json';
      if (c.valid !== false)
        assertMatches(`${opPointer}/requestBody/content/application~1json/schema`, c.json, `the request to ${method} ${c.path}`);
    }
    let url = c.path.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(c.params?.[name] ?? assert.fail(`no value for {${name}}`)));
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(c.query ?? {})) for (const one of [v].flat()) q.append(k, String(one));
    if (q.size) url += `?${q}`;
    const res = await ferry.fetch(url, { method, headers, body, key: c.key === undefined ? KEYS.a : c.key });
    const text = await res.text();
    const answer: Answer = { status: res.status, headers: res.headers, text, json: null };
    const key = `${method} ${c.path}`;
    answered.set(key, [...(answered.get(key) ?? []), res.status]);
    checkAnswer(method, c.path, opPointer, operation, answer);
    return answer;
  }

  /** The answer's status is documented for the operation, and its body and headers are as documented. */
  function checkAnswer(method: string, path: string, opPointer: string, operation: any, a: Answer) {
    const what = `${method} ${path} → ${a.status}`;
    const documented = operation.responses[String(a.status)];
    assert.ok(documented, `${what} is not documented (${Object.keys(operation.responses).join(', ')}): ${a.text.slice(0, 500)}`);
    const { value: response, pointer } = deref(documented);
    const responsePointer = pointer ?? `${opPointer}/responses/${a.status}`;
    assert.ok(a.headers.get('x-request-id'), `${what} carries X-Request-Id`);
    for (const [name, h] of Object.entries<any>(response.headers ?? {})) {
      const given = a.headers.get(name);
      if (given !== null && deref(h).value.schema.type === 'integer') assert.match(given, /^\d+$/, `${what}: header ${name}`);
    }
    if (!response.content) return assert.equal(a.text, '', `${what} has no body`);
    const type = mediaType(a.headers.get('content-type'));
    const media = Object.keys(response.content).find(
      (m) => m === type || m === '*/*' || (m.endsWith('/*') && type.startsWith(m.slice(0, -1))),
    );
    assert.ok(media, `${what}: Content-Type ${type} is not documented (${Object.keys(response.content).join(', ')})`);
    const mediaPointer = `${responsePointer}/content/${token(media)}`;
    if (media === 'application/json') {
      a.json = JSON.parse(a.text);
      assertMatches(`${mediaPointer}/schema`, a.json, what);
    } else if (media === 'text/event-stream') {
      const eventSchema = response.content[media]['x-ferry-event-data'];
      assert.ok(eventSchema, `${what}: the stream names the schema of its events`);
      const events = sseData(a.text).filter((d) => d !== '[DONE]');
      assert.ok(events.length > 0, `${what}: events`);
      for (const data of events) assertMatches(eventSchema.$ref, JSON.parse(data), `${what}: an event`);
    }
  }

  const get = (c: Call) => call('GET', c);
  const post = (c: Call) => call('POST', c);
  const slowGenerate = (ms: number) => ferry.emulator.setFaults([{ route: 'generate', kind: 'latency', latencyMs: ms }]);

  before(async () => {
    origin = new Origin();
    await origin.listen();
    ferry = await startFerry({
      env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1', FERRY_SYNC_WAIT_SECONDS: '20', FERRY_WEBHOOK_RETRY_SCHEDULE: '0,0.2' },
    });
    const res = await fetch(`${ferry.url}/openapi.json`);
    assert.equal(res.status, 200);
    doc = await res.json();
    ajv.addSchema(doc, DOC_ID);
  });
  after(async () => {
    await ferry?.close();
    await origin?.close();
  });

  test('is served without a key and is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
    assert.equal(validator.version, '3.1');
    assert.equal(doc.info.version, JSON.parse(readFileSync('package.json', 'utf8')).version);
    await get({ path: '/openapi.json', key: null });
  });

  test('every schema in it compiles as JSON Schema 2020-12 (strict)', () => {
    let compiled = 0;
    const visit = (node: any, pointer: string) => {
      if (!node || typeof node !== 'object') return;
      for (const [k, v] of Object.entries<any>(node)) {
        const here = `${pointer}/${token(k)}`;
        if ((k === 'schema' && v && typeof v === 'object') || pointer === '#/components/schemas') {
          validatorAt(here);
          compiled++;
        } else visit(v, here);
      }
    };
    visit({ paths: doc.paths, webhooks: doc.webhooks, components: doc.components }, '#');
    assert.ok(compiled > 100, `${compiled} schemas compiled`);
  });

  test("the app's routes are exactly the documented paths and methods", () => {
    const app = ferry.api.server.listeners('request').find((l: any) => l.router?.stack);
    assert.ok(app, 'the Express app answers the server');
    const documented = Object.entries<any>(doc.paths)
      .flatMap(([p, item]) =>
        Object.keys(item)
          .filter((m) => METHODS.includes(m))
          .map((m) => `${m.toUpperCase()} ${shape(p)}`),
      )
      .sort();
    const served = appRoutes(app);
    assert.deepEqual(
      served.filter((r) => !documented.includes(r)),
      [],
      'routes the app serves that the document does not describe: add them to src/openai/openapi.ts (a page app under one path: also to MOUNTED_APPS here)',
    );
    assert.deepEqual(
      documented.filter((r) => !served.includes(r)),
      [],
      'documented operations the app does not serve',
    );
  });

  test('operations: liveness, readiness, metrics, the dashboard', async () => {
    await get({ path: '/healthz', key: null });
    await eventually(async () => (await get({ path: '/readyz', key: null })).status === 200, 20_000, 'ready');
    assert.match((await get({ path: '/metrics', key: null })).text, /ferry_http_requests_total/);
    assert.equal((await get({ path: '/admin/queues', key: KEYS.admin })).status, 200);
    assert.equal((await get({ path: '/admin/queues', key: null })).status, 401);
    assert.equal((await get({ path: '/console', key: null })).status, 200);
    assert.equal((await get({ path: '/v1/models', key: null })).status, 401);
    assert.equal((await get({ path: '/v1/files', key: 'sk-wrong' })).status, 401);
  });

  let endpointId = '';
  let goneId = '';
  test('webhook endpoints (registered first: the events of every test after go to it)', async () => {
    const made = await post({ path: '/v1/webhook_endpoints', json: { url: origin.url('/hook'), description: 'openapi test' } });
    assert.equal(made.status, 201);
    endpointId = made.json.id;
    const params = { endpoint_id: endpointId };
    assert.equal((await get({ path: '/v1/webhook_endpoints', query: { limit: 10 } })).json.data[0].id, endpointId);
    assert.equal((await get({ path: '/v1/webhook_endpoints/{endpoint_id}', params })).json.enabled, true);
    await call('PATCH', { path: '/v1/webhook_endpoints/{endpoint_id}', params, json: { description: 'changed', events: null } });
    assert.equal((await post({ path: '/v1/webhook_endpoints/{endpoint_id}/rotate_secret', params })).status, 200);
    // An endpoint that answers 410 Gone: disabled at its first delivery, which the first endpoint hears of.
    const gone = await post({ path: '/v1/webhook_endpoints', json: { url: origin.url('/gone'), events: ['job.succeeded'] } });
    goneId = gone.json.id;
    const bad = await post({ path: '/v1/webhook_endpoints', json: { url: origin.url('/hook'), events: ['nope'] }, valid: false });
    assert.equal(bad.json.error.param, 'events');
    assert.equal((await get({ path: '/v1/webhook_endpoints/{endpoint_id}', params: { endpoint_id: 'we-nope' } })).status, 404);
    const noType = await call('PATCH', {
      path: '/v1/webhook_endpoints/{endpoint_id}',
      params,
      body: '{}',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(noType.status, 415);
  });

  let fileId = '';
  test('files: multipart and by URL, long-polled, listed, read, deleted; refusals', async () => {
    const form = new FormData();
    form.append('purpose', 'user_data');
    form.append('target_model_names[]', MODEL);
    form.append('expires_after[anchor]', 'created_at');
    form.append('expires_after[seconds]', '7200');
    form.append('file', new Blob(['Ferry notes.\n'.repeat(50)], { type: 'text/plain' }), 'notes.txt');
    const made = await post({ path: '/v1/files', body: form, headers: { 'idempotency-key': 'openapi-file-1' } });
    assert.equal(made.status, 200);
    fileId = made.json.id;
    const done = await get({ path: '/v1/files/{file_id}', params: { file_id: fileId }, query: { wait: 20 } });
    assert.equal(done.json.status, 'processed');
    const byUrl = await post({ path: '/v1/files', json: { purpose: 'user_data', url: origin.url('/doc.txt') } });
    assert.equal(byUrl.json.source_url, origin.url('/doc.txt'));
    await get({ path: '/v1/files/{file_id}', params: { file_id: byUrl.json.id }, query: { wait: 20 } });
    assert.equal((await get({ path: '/v1/files', query: { limit: 5, order: 'asc', purpose: 'user_data' } })).json.object, 'list');
    const content = await get({ path: '/v1/files/{file_id}/content', params: { file_id: fileId } });
    assert.equal(content.text, 'Ferry notes.\n'.repeat(50));
    assert.equal((await call('DELETE', { path: '/v1/files/{file_id}', params: { file_id: byUrl.json.id } })).json.deleted, true);

    const unknownField = new FormData();
    unknownField.append('purpose', 'user_data');
    unknownField.append('colour', 'blue');
    unknownField.append('file', new Blob(['x']), 'x.txt');
    assert.equal((await post({ path: '/v1/files', body: unknownField })).json.error.param, 'colour');
    assert.equal((await post({ path: '/v1/files', json: { purpose: 'user_data' }, valid: false })).status, 400);
    assert.equal((await get({ path: '/v1/files', query: { limit: 0 } })).status, 400);
    assert.equal((await get({ path: '/v1/files/{file_id}', params: { file_id: fileId }, query: { wait: -1 } })).status, 400);
    assert.equal((await get({ path: '/v1/files/{file_id}', params: { file_id: 'file-nope' } })).status, 404);
    assert.equal((await get({ path: '/v1/files/{file_id}/content', params: { file_id: 'file-nope' } })).status, 404);
  });

  test('uploads: parts, completed with their md5; cancelled', async () => {
    const parts = [Buffer.from('first part, '), Buffer.from('second part.\n')];
    const whole = Buffer.concat(parts);
    const made = await post({
      path: '/v1/uploads',
      json: { filename: 'parts.txt', purpose: 'user_data', bytes: whole.length, mime_type: 'text/plain', target_storage: 'gemini' },
    });
    const params = { upload_id: made.json.id };
    const ids: string[] = [];
    for (const p of parts) {
      const form = new FormData();
      form.append('data', new Blob([p]), 'part');
      ids.push((await post({ path: '/v1/uploads/{upload_id}/parts', params, body: form })).json.id);
    }
    const md5 = createHash('md5').update(whole).digest('hex');
    const done = await post({ path: '/v1/uploads/{upload_id}/complete', params, json: { part_ids: ids, md5 } });
    assert.equal(done.json.status, 'completed');
    assert.equal(done.json.file.bytes, whole.length);

    const other = await post({
      path: '/v1/uploads',
      json: { filename: 'x.txt', purpose: 'user_data', bytes: 10, mime_type: 'text/plain' },
    });
    const otherParams = { upload_id: other.json.id };
    const tenBytes = new FormData();
    tenBytes.append('data', new Blob(['0123456789']), 'part');
    const part = (await post({ path: '/v1/uploads/{upload_id}/parts', params: otherParams, body: tenBytes })).json.id;
    const wrongMd5 = { part_ids: [part], md5: '0'.repeat(32) };
    const mismatch = await post({ path: '/v1/uploads/{upload_id}/complete', params: otherParams, json: wrongMd5 });
    assert.equal(mismatch.json.error.code, 'md5_mismatch');
    assert.equal((await post({ path: '/v1/uploads/{upload_id}/cancel', params: otherParams })).json.status, 'cancelled');
    // Cancelling again answers the same; a completed upload cannot be cancelled.
    assert.equal((await post({ path: '/v1/uploads/{upload_id}/cancel', params: otherParams })).json.status, 'cancelled');
    assert.equal((await post({ path: '/v1/uploads/{upload_id}/cancel', params })).json.error.code, 'upload_completed');
    assert.equal((await post({ path: '/v1/uploads', json: { filename: 'x.txt' }, valid: false })).status, 400);
    const noPart = new FormData();
    noPart.append('data', new Blob(['x']), 'part');
    assert.equal((await post({ path: '/v1/uploads/{upload_id}/parts', params: { upload_id: 'upload_nope' }, body: noPart })).status, 404);
  });

  let asyncJobId = '';
  test('chat completions: synchronous with a file, streamed, asynchronous (202 + Location), idempotent; refusals', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Summarise.' },
          { type: 'file', file: { file_id: fileId } },
        ],
      },
    ];
    const sync = await post({ path: '/v1/chat/completions', json: { model: MODEL, messages, metadata: { run: 'openapi' } } });
    assert.equal(sync.json.object, 'chat.completion');
    const streamed = await post({
      path: '/v1/chat/completions',
      json: { model: MODEL, messages: [{ role: 'user', content: 'Hello' }], stream: true, stream_options: { include_usage: true } },
    });
    assert.match(streamed.text, /data: \[DONE\]/);
    const streamedJob = await get({
      path: '/v1/jobs/{job_id}',
      params: { job_id: streamed.headers.get('x-ferry-job-id')! },
      query: { wait: 20 },
    });
    assert.equal(streamedJob.json.result.streamed, true);

    const later = { model: MODEL, messages: [{ role: 'user', content: 'Later.' }] };
    const headers = { prefer: 'respond-async', 'idempotency-key': 'openapi-chat-1' };
    const accepted = await post({ path: '/v1/chat/completions', json: later, headers });
    assert.equal(accepted.status, 202);
    asyncJobId = accepted.json.id;
    assert.equal(accepted.headers.get('location'), `/v1/jobs/${asyncJobId}`);
    assert.equal((await post({ path: '/v1/chat/completions', json: later, headers })).json.id, asyncJobId);
    const changed = { ...later, messages: [{ role: 'user', content: 'Other.' }] };
    assert.equal((await post({ path: '/v1/chat/completions', json: changed, headers })).status, 422);

    assert.equal((await post({ path: '/v1/chat/completions', json: { model: 'gpt-4o', messages }, valid: false })).status, 400);
    const unknownModel = await post({ path: '/v1/chat/completions', json: { model: 'gemini-9-nope', messages } });
    assert.equal(unknownModel.status, 404);
    assert.equal(unknownModel.json.error.code, 'model_not_found');
    const form = { body: JSON.stringify(later), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    assert.equal((await post({ path: '/v1/chat/completions', ...form })).status, 415);
    const badJson = await post({ path: '/v1/chat/completions', body: '{', headers: { 'content-type': 'application/json' } });
    assert.equal(badJson.json.error.code, 'invalid_json');
  });

  test('jobs: long-polled, listed, cancelled (and a finished one refused)', async () => {
    const done = await get({ path: '/v1/jobs/{job_id}', params: { job_id: asyncJobId }, query: { wait: 20 } });
    assert.equal(done.json.status, 'succeeded');
    assert.equal(done.json.result.object, 'chat.completion');
    assert.equal((await get({ path: '/v1/jobs', query: { status: 'succeeded', limit: 10 } })).json.object, 'list');
    assert.equal((await post({ path: '/v1/jobs/{job_id}/cancel', params: { job_id: asyncJobId } })).status, 409);
    slowGenerate(3000);
    try {
      const slow = await post({
        path: '/v1/chat/completions',
        json: { model: MODEL, messages: [{ role: 'user', content: 'Slowly.' }] },
        headers: { prefer: 'respond-async' },
      });
      const cancelled = await post({ path: '/v1/jobs/{job_id}/cancel', params: { job_id: slow.json.id } });
      assert.equal(cancelled.json.status, 'cancelled');
    } finally {
      ferry.emulator.setFaults([]);
    }
    assert.equal((await get({ path: '/v1/jobs', query: { status: 'nope' } })).status, 400);
    assert.equal((await get({ path: '/v1/jobs/{job_id}', params: { job_id: 'job-nope' } })).status, 404);
  });

  test('responses: direct, streamed and replayed, in the background, input items, cancel, delete; refusals', async () => {
    const input = [
      {
        role: 'user',
        content: [
          { type: 'input_file', file_id: fileId },
          { type: 'input_text', text: 'Summarise.' },
        ],
      },
    ];
    const direct = await post({ path: '/v1/responses', json: { model: RESPONSE_MODEL, input, instructions: 'Be brief.' } });
    assert.equal(direct.json.status, 'completed');
    const streamed = await post({ path: '/v1/responses', json: { model: RESPONSE_MODEL, input: 'Hi.', stream: true } });
    assert.match(streamed.text, /event: response\.completed/);
    const streamedId = JSON.parse(sseData(streamed.text)[0]).response.id;
    const replay = await get({
      path: '/v1/responses/{response_id}',
      params: { response_id: streamedId },
      query: { stream: 'true', starting_after: 1 },
    });
    assert.ok(!replay.text.includes('response.created'));

    const bg = await post({
      path: '/v1/responses',
      json: { model: RESPONSE_MODEL, input: 'Later.', background: true, previous_response_id: direct.json.id },
    });
    assert.equal(bg.json.status, 'queued');
    const params = { response_id: bg.json.id };
    assert.equal((await get({ path: '/v1/responses/{response_id}', params, query: { wait: 20 } })).json.status, 'completed');
    assert.equal(
      (await get({ path: '/v1/responses/{response_id}/input_items', params, query: { limit: 5, order: 'asc' } })).json.object,
      'list',
    );
    assert.equal((await post({ path: '/v1/responses/{response_id}/cancel', params })).status, 409);
    assert.equal((await post({ path: '/v1/responses/{response_id}/cancel', params: { response_id: direct.json.id } })).status, 400);
    slowGenerate(3000);
    try {
      const slow = await post({ path: '/v1/responses', json: { model: RESPONSE_MODEL, input: 'Slowly.', background: true } });
      const cancelled = await post({ path: '/v1/responses/{response_id}/cancel', params: { response_id: slow.json.id } });
      assert.equal(cancelled.json.status, 'cancelled');
    } finally {
      ferry.emulator.setFaults([]);
    }
    assert.equal((await call('DELETE', { path: '/v1/responses/{response_id}', params })).json.deleted, true);
    assert.equal((await get({ path: '/v1/responses/{response_id}', params })).status, 404);
    const hosted = { model: RESPONSE_MODEL, input: 'x', tools: [{ type: 'web_search' }] };
    assert.equal((await post({ path: '/v1/responses', json: hosted, valid: false })).json.error.param, 'tools[0].type');
    const notStreamed = await get({
      path: '/v1/responses/{response_id}',
      params: { response_id: direct.json.id },
      query: { stream: 'true' },
    });
    assert.equal(notStreamed.status, 400);
  });

  test('embeddings: floats and base64; a chat model refused', async () => {
    const floats = await post({ path: '/v1/embeddings', json: { model: 'gemini-embedding-001', input: ['ferry', 'boat'], dimensions: 8 } });
    assert.equal(floats.json.data[1].embedding.length, 8);
    const b64 = await post({ path: '/v1/embeddings', json: { model: 'gemini-embedding-001', input: 'ferry', encoding_format: 'base64' } });
    assert.equal(typeof b64.json.data[0].embedding, 'string');
    assert.equal((await post({ path: '/v1/embeddings', json: { model: RESPONSE_MODEL, input: 'a' } })).status, 400);
    assert.equal(
      (await post({ path: '/v1/embeddings', json: { model: 'gemini-embedding-001', input: [1, 2] }, valid: false })).status,
      400,
    );
  });

  test('batches: created (idempotent), long-polled to completed, listed, its output read, cancelled; refusals', async () => {
    const lines = ['a', 'b'].map((id) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: MODEL, messages: [{ role: 'user', content: id }] },
      }),
    );
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([lines.join('\n')]), 'requests.jsonl');
    const input = (await post({ path: '/v1/files', body: form })).json;
    const create = {
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { run: 'openapi' },
      execution: 'direct',
      output_expires_after: { anchor: 'created_at', seconds: 7200 },
    };
    const batch = await post({ path: '/v1/batches', json: create, headers: { 'idempotency-key': 'openapi-batch-1' } });
    assert.equal(batch.status, 200);
    const params = { batch_id: batch.json.id };
    const done = await eventually(async () => {
      const b = await get({ path: '/v1/batches/{batch_id}', params, query: { wait: 20 } });
      return ['completed', 'failed', 'expired', 'cancelled'].includes(b.json.status) && b;
    }, 60_000);
    assert.equal(done.json.status, 'completed');
    const out = await get({ path: '/v1/files/{file_id}/content', params: { file_id: done.json.output_file_id } });
    assert.equal(out.text.trim().split('\n').length, 2);
    assert.equal((await get({ path: '/v1/batches', query: { limit: 5 } })).json.object, 'list');
    assert.equal((await post({ path: '/v1/batches/{batch_id}/cancel', params })).status, 409);

    slowGenerate(3000);
    try {
      const other = await post({ path: '/v1/batches', json: { ...create, metadata: { run: 'cancelled' } } });
      const cancelled = await post({ path: '/v1/batches/{batch_id}/cancel', params: { batch_id: other.json.id } });
      assert.ok(['cancelling', 'cancelled'].includes(cancelled.json.status), cancelled.json.status);
      await get({ path: '/v1/batches/{batch_id}', params: { batch_id: other.json.id }, query: { wait: 20 } });
    } finally {
      ferry.emulator.setFaults([]);
    }
    assert.equal((await post({ path: '/v1/batches', json: { endpoint: '/v1/chat/completions' }, valid: false })).status, 400);
    assert.equal((await post({ path: '/v1/batches', json: { ...create, input_file_id: 'file-nope' } })).status, 404);
    assert.equal((await get({ path: '/v1/batches/{batch_id}', params: { batch_id: 'batch_nope' } })).status, 404);
  });

  test('the rarer shapes: tool calls and their answers, a length stop, a blocked prompt, a failed job, a batch that fails validation', async () => {
    const weather = {
      type: 'function',
      function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
    };
    const ask = { role: 'user', content: 'CALL get_weather {"city": "Oslo"}' };
    const called = await post({
      path: '/v1/chat/completions',
      json: { model: MODEL, messages: [ask], tools: [weather], tool_choice: 'auto' },
    });
    const toolCall = called.json.choices[0].message.tool_calls[0];
    assert.equal(called.json.choices[0].finish_reason, 'tool_calls');
    const answered = [ask, called.json.choices[0].message, { role: 'tool', tool_call_id: toolCall.id, content: '{"temp": 3}' }];
    await post({ path: '/v1/chat/completions', json: { model: MODEL, messages: answered, tools: [weather], n: 2, max_tokens: 50 } });
    const blocked = await post({
      path: '/v1/chat/completions',
      json: { model: MODEL, messages: [{ role: 'user', content: 'BLOCK:SAFETY' }] },
    });
    assert.equal(blocked.json.choices[0].finish_reason, 'content_filter');

    const tool = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } };
    const fn = await post({
      path: '/v1/responses',
      json: { model: RESPONSE_MODEL, input: ask.content, tools: [tool], reasoning: { effort: 'low' } },
    });
    const call = fn.json.output.find((o: { type: string }) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(fn.json.output));
    const output = { type: 'function_call_output', call_id: call.call_id, output: '{"temp": 3}' };
    const followed = await post({
      path: '/v1/responses',
      json: { model: RESPONSE_MODEL, previous_response_id: fn.json.id, input: [output], tools: [tool] },
    });
    assert.equal(followed.json.status, 'completed');
    const stopped = await post({
      path: '/v1/responses',
      json: { model: RESPONSE_MODEL, input: [{ role: 'user', content: 'FINISH:MAX_TOKENS' }], text: { format: { type: 'json_object' } } },
    });
    assert.equal(stopped.json.incomplete_details.reason, 'max_output_tokens');

    ferry.emulator.setFaults([{ route: 'generate', kind: '400', count: 1 }]);
    const failed = await post({ path: '/v1/chat/completions', json: { model: MODEL, messages: [{ role: 'user', content: 'Refused.' }] } });
    ferry.emulator.setFaults([]);
    assert.ok(failed.status >= 400, `${failed.status}`);
    const failedJob = await get({ path: '/v1/jobs', query: { status: 'failed', limit: 1 } });
    assert.equal(failedJob.json.data[0].status, 'failed');

    const form = new FormData();
    form.append('purpose', 'batch');
    form.append(
      'file',
      new Blob(['{"custom_id": "x", "method": "GET", "url": "/v1/chat/completions", "body": {}}\nnot json']),
      'bad.jsonl',
    );
    const input = (await post({ path: '/v1/files', body: form })).json;
    const batch = await post({
      path: '/v1/batches',
      json: { input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '1h' },
    });
    const ended = await get({ path: '/v1/batches/{batch_id}', params: { batch_id: batch.json.id }, query: { wait: 20 } });
    assert.equal(ended.json.status, 'failed');
    assert.ok(ended.json.errors.data.length >= 2);
  });

  test('models', async () => {
    const list = await eventually(async () => {
      const l = await get({ path: '/v1/models' });
      return l.json.data.length > 0 && l;
    });
    assert.ok(list.json.data.some((m: { id: string }) => m.id === MODEL));
    assert.equal((await get({ path: '/v1/models/{model}', params: { model: MODEL } })).json.id, MODEL);
    assert.equal((await get({ path: '/v1/models/{model}', params: { model: 'gemini-9' } })).status, 404);
  });

  test('usage and costs reports, as a tenant and as the admin', async () => {
    const start_time = Math.floor(Date.now() / 1000) - 3600;
    const usage = await get({
      path: '/v1/organization/usage/completions',
      query: { start_time, bucket_width: '1h', group_by: ['model', 'service_tier'] },
    });
    assert.ok(usage.json.data.some((b: { results: unknown[] }) => b.results.length > 0));
    await get({ path: '/v1/organization/usage/embeddings', query: { start_time, group_by: ['project_id', 'model'] }, key: KEYS.admin });
    await get({ path: '/v1/organization/costs', query: { start_time, group_by: ['line_item'], limit: 2 } });
    assert.equal((await get({ path: '/v1/organization/costs', query: {} })).json.error.param, 'start_time');
    assert.equal((await get({ path: '/v1/organization/usage/completions', query: { start_time, bucket_width: '1w' } })).status, 400);
  });

  test("the console's: who a key is, the activity, the admin's tenant filter and conditional long-polls (304)", async () => {
    assert.equal((await get({ path: '/v1/me' })).json.tenant, 'tenant-a');
    assert.equal((await get({ path: '/v1/me', key: KEYS.admin })).json.admin, true);
    const activity = await get({ path: '/v1/activity', query: { seconds: 600 } });
    assert.equal(activity.json.buckets.length, 60);
    await get({ path: '/v1/activity', query: { tenant: 'tenant-b' }, key: KEYS.admin });
    assert.equal((await get({ path: '/v1/activity', query: { seconds: 5 } })).status, 400);
    assert.equal((await get({ path: '/v1/activity', query: { tenant: 'tenant-b' } })).status, 404);
    for (const path of ['/v1/files', '/v1/jobs', '/v1/batches', '/v1/webhook_deliveries', '/v1/webhook_endpoints']) {
      assert.equal((await get({ path, query: { tenant: 'tenant-a' }, key: KEYS.admin })).status, 200, path);
      assert.equal((await get({ path, query: { tenant: 'nobody' }, key: KEYS.admin })).status, 404, path);
    }
    const batches = await get({ path: '/v1/batches', query: { limit: 1 } });
    const tag = batches.headers.get('etag')!;
    assert.ok(tag, 'an ETag');
    assert.equal((await get({ path: '/v1/batches', query: { limit: 1 }, headers: { 'if-none-match': tag } })).status, 304);
    const batchId = batches.json.data[0].id;
    const batch = await get({ path: '/v1/batches/{batch_id}', params: { batch_id: batchId } });
    const unchanged = { 'if-none-match': batch.headers.get('etag')! };
    assert.equal(
      (await get({ path: '/v1/batches/{batch_id}', params: { batch_id: batchId }, query: { wait: 1 }, headers: unchanged })).status,
      304,
    );
    const job = (await get({ path: '/v1/jobs', query: { limit: 1 } })).json.data[0];
    const jobTag = (await get({ path: '/v1/jobs/{job_id}', params: { job_id: job.id } })).headers.get('etag')!;
    assert.equal((await get({ path: '/v1/jobs/{job_id}', params: { job_id: job.id }, headers: { 'if-none-match': jobTag } })).status, 304);
    const files = await get({ path: '/v1/files' });
    assert.equal((await get({ path: '/v1/files', headers: { 'if-none-match': files.headers.get('etag')! } })).status, 304);
  });

  test('webhook deliveries: the events sent match the documented webhook, listed, read, sent again; the endpoint deleted', async () => {
    const delivered = await eventually(async () => {
      const page = await get({ path: '/v1/webhook_deliveries', query: { status: 'succeeded', endpoint_id: endpointId, limit: 1000 } });
      return page.json.data.length >= 5 && page.json.data;
    });
    const event = doc.webhooks.event.post.requestBody.content['application/json'].schema.$ref;
    for (const body of origin.events) assertMatches(event, JSON.parse(body), 'a webhook event');
    const types = new Set(origin.events.map((b) => JSON.parse(b).type));
    const expected = [
      'file.processed',
      'job.succeeded',
      'job.cancelled',
      'batch.completed',
      'response.completed',
      'webhook_endpoint.disabled',
    ];
    for (const t of expected) assert.ok(types.has(t), t);
    const disabled = await get({ path: '/v1/webhook_endpoints/{endpoint_id}', params: { endpoint_id: goneId } });
    assert.equal(disabled.json.status, 'disabled');
    const failedOnes = await get({ path: '/v1/webhook_deliveries', query: { status: 'failed', endpoint_id: goneId } });
    assert.ok(failedOnes.json.data.length > 0);
    const params = { delivery_id: delivered[0].id };
    assert.equal((await get({ path: '/v1/webhook_deliveries/{delivery_id}', params })).json.status, 'succeeded');
    assert.equal((await post({ path: '/v1/webhook_deliveries/{delivery_id}/retry', params })).status, 202);
    assert.equal((await get({ path: '/v1/webhook_deliveries', query: { status: 'nope' } })).status, 400);
    assert.equal((await post({ path: '/v1/webhook_deliveries/{delivery_id}/retry', params: { delivery_id: 'whd-nope' } })).status, 404);
    const deleted = await call('DELETE', { path: '/v1/webhook_endpoints/{endpoint_id}', params: { endpoint_id: endpointId } });
    assert.equal(deleted.json.deleted, true);
  });

  test('every documented operation was answered with success at least once', () => {
    const operations = Object.entries<any>(doc.paths).flatMap(([p, item]) =>
      Object.keys(item)
        .filter((m) => METHODS.includes(m))
        .map((m) => `${m.toUpperCase()} ${p}`),
    );
    const missing = operations.filter((o) => !(answered.get(o) ?? []).some((s) => s >= 200 && s < 300));
    assert.deepEqual(missing, [], 'operations never answered with success');
    const calls = [...answered.values()].reduce((n, s) => n + s.length, 0);
    const refusals = [...answered.values()].flat().filter((s) => s >= 400).length;
    console.log(
      `${operations.length} operations on ${Object.keys(doc.paths).length} paths; ${calls} calls (${refusals} refused), ${checkedBodies} bodies matched their schemas`,
    );
  });
});
