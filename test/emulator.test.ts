import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, GoogleGenAI, type File as GeminiFile } from '@google/genai';
import { startEmulator, type Emulator, type EmulatorStats } from '../src/emulator/index.js';

const CHUNK = 256 * 1024;
const MiB = 1024 * 1024;

const sha256Hex = (data: Buffer) => createHash('sha256').update(data).digest('hex');
/** What the real API puts in sha256Hash: base64 of the hex digest text. */
const apiSha256 = (data: Buffer) => Buffer.from(sha256Hex(data)).toString('base64');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details?: Record<string, unknown>[] };
}

async function expectGoogleError(res: Response, code: number, status: string): Promise<GoogleErrorBody['error']> {
  assert.equal(res.status, code);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = (await res.json()) as GoogleErrorBody;
  assert.equal(body.error.code, code);
  assert.equal(body.error.status, status);
  assert.equal(typeof body.error.message, 'string');
  return body.error;
}

/** Raw resumable protocol helpers (fetch only). */
function rawClient(base: string, apiKey?: string) {
  const keyHeader: Record<string, string> = apiKey ? { 'x-goog-api-key': apiKey } : {};
  return {
    async start(size: number, file: Record<string, string> = {}): Promise<string> {
      const res = await fetch(`${base}/upload/v1beta/files`, {
        method: 'POST',
        headers: {
          ...keyHeader,
          'content-type': 'application/json',
          'x-goog-upload-protocol': 'resumable',
          'x-goog-upload-command': 'start',
          'x-goog-upload-header-content-length': String(size),
          'x-goog-upload-header-content-type': 'application/octet-stream',
        },
        body: JSON.stringify({ file }),
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-goog-upload-status'), 'active');
      const url = res.headers.get('x-goog-upload-url') ?? '';
      assert.ok(url.startsWith(`${base}/upload/v1beta/files?upload_id=`), `session url: ${url}`);
      return url;
    },
    send(session: string, offset: number, bytes: Buffer, finalize: boolean): Promise<Response> {
      return fetch(session, {
        method: 'POST',
        headers: { 'x-goog-upload-command': finalize ? 'upload, finalize' : 'upload', 'x-goog-upload-offset': String(offset) },
        body: new Uint8Array(bytes),
      });
    },
    command(session: string, command: 'query' | 'cancel'): Promise<Response> {
      return fetch(session, { method: 'POST', headers: { 'x-goog-upload-command': command } });
    },
    get(path: string, init: RequestInit = {}): Promise<Response> {
      return fetch(`${base}${path}`, { ...init, headers: { ...keyHeader, ...(init.headers as Record<string, string>) } });
    },
    generate(model: string, body: unknown, stream = false): Promise<Response> {
      const method = stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
      return fetch(`${base}/v1beta/models/${model}:${method}`, {
        method: 'POST',
        headers: { ...keyHeader, 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
  };
}

const sessionId = (session: string) => new URL(session).searchParams.get('upload_id') as string;

async function statsOver(base: string): Promise<EmulatorStats> {
  const res = await fetch(`${base}/_emulator/stats`);
  assert.equal(res.status, 200);
  return (await res.json()) as EmulatorStats;
}

describe('conformance with the unmodified @google/genai SDK', () => {
  let emulator: Emulator;
  let ai: GoogleGenAI;
  let dir: string;
  let bigFile: { path: string; data: Buffer };
  let uploaded: GeminiFile;

  before(async () => {
    emulator = await startEmulator({ apiKey: 'test-key', quiet: true });
    ai = new GoogleGenAI({ apiKey: 'test-key', httpOptions: { baseUrl: emulator.url } });
    dir = await mkdtemp(join(tmpdir(), 'gemini-emulator-test-'));
    const data = randomBytes(17 * MiB + 12345);
    bigFile = { path: join(dir, 'big.pdf'), data };
    await writeFile(bigFile.path, data);
  });

  after(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('files.upload of a file over 16 MiB ends ACTIVE with the right size and sha256', async () => {
    uploaded = await ai.files.upload({ file: bigFile.path, config: { mimeType: 'application/pdf', displayName: 'big one' } });
    assert.match(uploaded.name ?? '', /^files\/[a-z0-9]{12}$/);
    assert.equal(uploaded.state, 'ACTIVE');
    assert.equal(uploaded.sizeBytes, String(bigFile.data.length));
    assert.equal(uploaded.mimeType, 'application/pdf');
    assert.equal(uploaded.displayName, 'big one');
    assert.equal(uploaded.source, 'UPLOADED');
    assert.equal(uploaded.sha256Hash, apiSha256(bigFile.data));
    assert.equal(uploaded.uri, `${emulator.url}/v1beta/${uploaded.name}`);
    const created = Date.parse(uploaded.createTime ?? '');
    assert.equal(Date.parse(uploaded.expirationTime ?? '') - created, 48 * 3600 * 1000);

    const stats = emulator.stats();
    assert.equal(stats.requests['upload.start'], 1);
    assert.equal(stats.requests['upload.chunk'], 3); // 8 MiB + 8 MiB + the rest
    assert.equal(stats.bytesByFile[uploaded.name as string], bigFile.data.length);
  });

  test('files.get returns the same resource', async () => {
    const got = await ai.files.get({ name: uploaded.name as string });
    const fields = [
      'name',
      'displayName',
      'mimeType',
      'sizeBytes',
      'createTime',
      'updateTime',
      'expirationTime',
      'sha256Hash',
      'uri',
      'state',
      'source',
    ] as const;
    for (const field of fields) assert.equal(got[field], uploaded[field], field);
    assert.equal(emulator.stats().requests['files.get'], 1);
  });

  test('files.list pages newest first with the SDK pager', async () => {
    emulator.reset();
    const names: string[] = [];
    for (let i = 0; i < 5; i++) {
      const file = await ai.files.upload({
        file: new Blob([`file number ${i}`]),
        config: { mimeType: 'text/plain', displayName: `small-${i}` },
      });
      names.push(file.name as string);
    }
    const pager = await ai.files.list({ config: { pageSize: 2 } });
    assert.equal(pager.page.length, 2);
    const listed: string[] = [];
    for await (const file of pager) listed.push(file.name as string);
    assert.deepEqual(listed, [...names].reverse());
    assert.equal(emulator.stats().requests['files.list'], 3);
  });

  test('files.delete, then files.get throws an ApiError with status 404', async () => {
    const file = await ai.files.upload({ file: new Blob(['bye']), config: { mimeType: 'text/plain' } });
    await ai.files.delete({ name: file.name as string });
    await assert.rejects(ai.files.get({ name: file.name as string }), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 404);
      return true;
    });
  });

  test('generateContent with a fileData part names the file, its type and sha256', async () => {
    const file = await ai.files.upload({ file: bigFile.path, config: { mimeType: 'application/pdf' } });
    const response = await ai.models.generateContent({
      model: 'gemini-2.0-flash',
      contents: [
        {
          role: 'user',
          parts: [
            { fileData: { fileUri: file.uri as string, mimeType: 'application/pdf' } },
            { inlineData: { mimeType: 'image/png', data: Buffer.alloc(67, 1).toString('base64') } },
            { text: 'Summarise this document' },
          ],
        },
      ],
      config: { systemInstruction: 'You are terse.' },
    });
    const text = response.text ?? '';
    assert.ok(text.startsWith('model=gemini-2.0-flash | '), text);
    assert.ok(text.includes(`${file.name}(application/pdf,${bigFile.data.length} bytes,sha256=${sha256Hex(bigFile.data)})`), text);
    assert.ok(text.includes('inline=image/png(67 bytes)'), text);
    assert.ok(text.includes('system=You are terse.'), text);
    assert.ok(text.endsWith('text=Summarise this document'), text);
    assert.equal(response.candidates?.[0].finishReason, 'STOP');
    assert.equal(response.modelVersion, 'gemini-2.0-flash');
    assert.ok(response.responseId);
    // 3 words of text + 3 of the system instruction + 258 per media part
    assert.equal(response.usageMetadata?.promptTokenCount, 6 + 2 * 258);
    assert.equal(response.usageMetadata?.candidatesTokenCount, text.split(/\s+/).length);

    const recorded = emulator.stats().generateRequests.at(-1) as { model: string; stream: boolean; body: { contents: unknown[] } };
    assert.equal(recorded.model, 'gemini-2.0-flash');
    assert.equal(recorded.stream, false);
    assert.equal(recorded.body.contents.length, 1);
  });

  test('generateContentStream yields several chunks adding up to the unary reply', async () => {
    const request = { model: 'gemini-2.5-pro', contents: 'Tell me about the sea and the sky' };
    const whole = (await ai.models.generateContent(request)).text;
    const chunks = [];
    for await (const chunk of await ai.models.generateContentStream(request)) chunks.push(chunk);
    assert.ok(chunks.length >= 3, `got ${chunks.length} chunks`);
    assert.equal(chunks.map((c) => c.text ?? '').join(''), whole);
    const last = chunks[chunks.length - 1];
    assert.equal(last.candidates?.[0].finishReason, 'STOP');
    assert.ok(last.usageMetadata?.totalTokenCount);
    assert.equal(chunks[0].candidates?.[0].finishReason, undefined);
    assert.equal(emulator.stats().requests.stream, 1);
  });

  test('generation controls: maxOutputTokens, candidateCount, JSON mode, FINISH and function calls', async () => {
    const model = 'gemini-2.0-flash-lite';
    const truncated = await ai.models.generateContent({ model, contents: 'one two three four five', config: { maxOutputTokens: 3 } });
    assert.equal(truncated.text, 'model=gemini-2.0-flash-lite | text=one');
    assert.equal(truncated.candidates?.[0].finishReason, 'MAX_TOKENS');

    const several = await ai.models.generateContent({ model, contents: 'hello', config: { candidateCount: 3 } });
    assert.deepEqual(
      several.candidates?.map((c) => [c.index ?? 0, c.content?.parts?.[0].text]),
      [
        [0, 'model=gemini-2.0-flash-lite | text=hello #0'],
        [1, 'model=gemini-2.0-flash-lite | text=hello #1'],
        [2, 'model=gemini-2.0-flash-lite | text=hello #2'],
      ],
    );

    const json = await ai.models.generateContent({ model, contents: 'as json', config: { responseMimeType: 'application/json' } });
    assert.deepEqual(JSON.parse(json.text ?? ''), {
      model,
      files: [],
      inline: [],
      system: '',
      functionResponses: [],
      text: 'as json',
    });

    const blocked = await ai.models.generateContent({ model, contents: 'please FINISH:SAFETY' });
    assert.equal(blocked.candidates?.[0].finishReason, 'SAFETY');
    assert.equal(blocked.text, undefined);
    const recitation = await ai.models.generateContent({ model, contents: 'FINISH:RECITATION now' });
    assert.equal(recitation.candidates?.[0].finishReason, 'RECITATION');

    const tools = [{ functionDeclarations: [{ name: 'get_weather', description: 'weather for a city' }] }];
    const call = await ai.models.generateContent({ model, contents: 'CALL get_weather {"city":"Oslo"}', config: { tools } });
    assert.deepEqual(
      call.functionCalls?.map((c) => [c.name, c.args]),
      [['get_weather', { city: 'Oslo' }]],
    );
    assert.equal(call.candidates?.[0].finishReason, 'STOP');
    const undeclared = await ai.models.generateContent({ model, contents: 'CALL launch {}', config: { tools } });
    assert.equal(undeclared.functionCalls, undefined);

    const answered = await ai.models.generateContent({
      model,
      config: { tools },
      contents: [
        { role: 'user', parts: [{ text: 'CALL get_weather {"city":"Oslo"}' }] },
        { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Oslo' } } }] },
        { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 3 } } }] },
      ],
    });
    assert.equal(answered.functionCalls, undefined);
    assert.ok(answered.text?.includes('functionResponse=get_weather{"temp":3}'), answered.text);
  });
});

describe('processing state, failures and expiry', () => {
  let emulator: Emulator;
  let ai: GoogleGenAI;

  before(async () => {
    emulator = await startEmulator({ quiet: true, processingDelayMs: 150 });
    ai = new GoogleGenAI({ apiKey: 'any', httpOptions: { baseUrl: emulator.url } });
  });
  after(() => emulator.close());

  async function waitWhileProcessing(name: string): Promise<GeminiFile> {
    for (let i = 0; i < 50; i++) {
      const file = await ai.files.get({ name });
      if (file.state !== 'PROCESSING') return file;
      await sleep(20);
    }
    throw new Error(`${name} stayed PROCESSING`);
  }

  test('a file is PROCESSING (and refused by generateContent) until the delay passes, then ACTIVE', async () => {
    const file = await ai.files.upload({ file: new Blob(['video-ish']), config: { mimeType: 'video/mp4' } });
    assert.equal(file.state, 'PROCESSING');
    await assert.rejects(
      ai.models.generateContent({
        model: 'gemini-2.0-flash',
        contents: [{ role: 'user', parts: [{ fileData: { fileUri: file.uri as string } }] }],
      }),
      (err: unknown) => err instanceof ApiError && err.status === 400 && /FAILED_PRECONDITION/.test(err.message),
    );
    const ready = await waitWhileProcessing(file.name as string);
    assert.equal(ready.state, 'ACTIVE');
    assert.ok(Date.parse(ready.updateTime ?? '') > Date.parse(ready.createTime ?? ''));
    const response = await ai.models.generateContent({
      model: 'gemini-2.0-flash',
      contents: [{ role: 'user', parts: [{ fileData: { fileUri: file.uri as string } }] }],
    });
    assert.ok(response.text?.includes(`${file.name}(video/mp4,9 bytes,`), response.text);
  });

  test('a display name starting with fail-processing ends FAILED with an error', async () => {
    const file = await ai.files.upload({ file: new Blob(['x']), config: { mimeType: 'text/plain', displayName: 'fail-processing: bad' } });
    const done = await waitWhileProcessing(file.name as string);
    assert.equal(done.state, 'FAILED');
    assert.ok(done.error?.message);
  });

  test('expired files are gone: 404 on get, 400 INVALID_ARGUMENT in generateContent', async () => {
    const file = await ai.files.upload({ file: new Blob(['old']), config: { mimeType: 'text/plain' } });
    emulator.expireFile(file.name as string);
    await assert.rejects(ai.files.get({ name: file.name as string }), (err: unknown) => err instanceof ApiError && err.status === 404);
    const res = await rawClient(emulator.url).generate('gemini-2.0-flash', {
      contents: [{ parts: [{ fileData: { fileUri: file.uri } }] }],
    });
    const error = await expectGoogleError(res, 400, 'INVALID_ARGUMENT');
    assert.match(error.message, /not exist/);
  });

  test('fileTtlMs sets expirationTime and the file vanishes after it', async () => {
    const short = await startEmulator({ quiet: true, fileTtlMs: 80 });
    try {
      const raw = rawClient(short.url);
      const session = await raw.start(3);
      const res = await raw.send(session, 0, Buffer.from('abc'), true);
      const { file } = (await res.json()) as { file: GeminiFile };
      assert.equal(Date.parse(file.expirationTime ?? '') - Date.parse(file.createTime ?? ''), 80);
      assert.equal((await raw.get(`/v1beta/${file.name}`)).status, 200);
      await sleep(120);
      await expectGoogleError(await raw.get(`/v1beta/${file.name}`), 404, 'NOT_FOUND');
    } finally {
      await short.close();
    }
  });
});

describe('raw resumable upload protocol', () => {
  let emulator: Emulator;
  let raw: ReturnType<typeof rawClient>;
  let storeDir: string;

  before(async () => {
    storeDir = await mkdtemp(join(tmpdir(), 'gemini-emulator-store-'));
    emulator = await startEmulator({ quiet: true, storeDir, seed: 42 });
    raw = rawClient(emulator.url);
  });
  after(async () => {
    await emulator.close();
    await rm(storeDir, { recursive: true, force: true });
  });

  test('middle chunks answer active with the size received; query after two chunks reports it', async () => {
    const data = randomBytes(2 * CHUNK + 10);
    const session = await raw.start(data.length);
    for (const offset of [0, CHUNK]) {
      const res = await raw.send(session, offset, data.subarray(offset, offset + CHUNK), false);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-goog-upload-status'), 'active');
      assert.equal(res.headers.get('x-goog-upload-size-received'), String(offset + CHUNK));
      assert.equal(await res.text(), '');
    }
    const query = await raw.command(session, 'query');
    assert.equal(query.status, 200);
    assert.equal(query.headers.get('x-goog-upload-status'), 'active');
    assert.equal(query.headers.get('x-goog-upload-size-received'), String(2 * CHUNK));

    const final = await raw.send(session, 2 * CHUNK, data.subarray(2 * CHUNK), true);
    assert.equal(final.status, 200);
    assert.equal(final.headers.get('x-goog-upload-status'), 'final');
    const { file } = (await final.json()) as { file: GeminiFile };
    assert.equal(file.sha256Hash, apiSha256(data));
    assert.equal(file.sizeBytes, String(data.length));

    const again = await raw.command(session, 'query');
    assert.equal(again.headers.get('x-goog-upload-status'), 'final');
    assert.equal(((await again.json()) as { file: GeminiFile }).file.name, file.name);

    const stored = await readFile(join(storeDir, (file.name as string).slice('files/'.length)));
    assert.ok(stored.equals(data), 'storeDir holds the uploaded bytes');
  });

  test('a chunk at the wrong offset is refused and not persisted', async () => {
    const data = randomBytes(2 * CHUNK);
    const session = await raw.start(data.length);
    assert.equal((await raw.send(session, 0, data.subarray(0, CHUNK), false)).status, 200);
    const wrong = await raw.send(session, 2 * CHUNK, data.subarray(CHUNK), true);
    const error = await expectGoogleError(wrong, 400, 'INVALID_ARGUMENT');
    assert.match(error.message, /offset/i);
    const query = await raw.command(session, 'query');
    assert.equal(query.headers.get('x-goog-upload-size-received'), String(CHUNK));
    const final = await raw.send(session, CHUNK, data.subarray(CHUNK), true);
    assert.equal(((await final.json()) as { file: GeminiFile }).file.sha256Hash, apiSha256(data));
    // The refused chunk's bytes were received and are counted.
    assert.equal(emulator.stats().bytesBySession[sessionId(session)], 3 * CHUNK);
  });

  test('a non-final chunk that is not a multiple of 256 KiB is refused', async () => {
    const session = await raw.start(CHUNK + 100);
    await expectGoogleError(await raw.send(session, 0, randomBytes(CHUNK + 100 - 1), false), 400, 'INVALID_ARGUMENT');
    const query = await raw.command(session, 'query');
    assert.equal(query.headers.get('x-goog-upload-size-received'), '0');
  });

  test('a finalize whose total differs from the declared length is refused; a zero-length finalize works', async () => {
    const data = randomBytes(CHUNK);
    const session = await raw.start(data.length);
    await expectGoogleError(await raw.send(session, 0, data.subarray(0, 1000), true), 400, 'INVALID_ARGUMENT');
    assert.equal((await raw.send(session, 0, data, false)).status, 200);
    const final = await raw.send(session, CHUNK, Buffer.alloc(0), true);
    assert.equal(final.headers.get('x-goog-upload-status'), 'final');
    assert.equal(((await final.json()) as { file: GeminiFile }).file.sha256Hash, apiSha256(data));

    const empty = await raw.start(0);
    const res = await raw.send(empty, 0, Buffer.alloc(0), true);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { file: GeminiFile }).file.sizeBytes, '0');
  });

  test('after a reset mid-chunk the upload resumes from the persisted size; stats count the re-sent bytes', async () => {
    const data = randomBytes(3 * CHUNK + 777);
    const session = await raw.start(data.length);
    assert.equal((await raw.send(session, 0, data.subarray(0, CHUNK), false)).status, 200);
    emulator.setFaults([{ route: 'upload.chunk', kind: 'reset', count: 1, resetAfterBytes: 100_000 }]);
    const before = emulator.stats().faultsInjected['upload.chunk'];
    await assert.rejects(raw.send(session, CHUNK, data.subarray(CHUNK, 3 * CHUNK), false));
    const query = await raw.command(session, 'query');
    assert.equal(query.headers.get('x-goog-upload-status'), 'active');
    assert.equal(query.headers.get('x-goog-upload-size-received'), String(CHUNK));
    const final = await raw.send(session, CHUNK, data.subarray(CHUNK), true);
    assert.equal(final.status, 200);
    const { file } = (await final.json()) as { file: GeminiFile };
    assert.equal(file.sha256Hash, apiSha256(data));
    const stats = emulator.stats();
    assert.equal(stats.bytesBySession[sessionId(session)], data.length + 100_000);
    assert.equal(stats.bytesByFile[file.name as string], data.length + 100_000);
    assert.equal(stats.faultsInjected['upload.chunk'] - before, 1);
  });

  test('an error fault on a chunk refuses it without persisting it', async () => {
    const data = randomBytes(CHUNK);
    const session = await raw.start(data.length);
    emulator.setFaults([{ route: 'upload.chunk', kind: '503', count: 1 }]);
    await expectGoogleError(await raw.send(session, 0, data, true), 503, 'UNAVAILABLE');
    assert.equal((await raw.command(session, 'query')).headers.get('x-goog-upload-size-received'), '0');
    const final = await raw.send(session, 0, data, true);
    assert.equal(final.headers.get('x-goog-upload-status'), 'final');
    assert.equal(emulator.stats().bytesBySession[sessionId(session)], 2 * CHUNK);
  });

  test('a 429 fault carries Retry-After and a RetryInfo detail, and is spent after its count', async () => {
    emulator.setFaults([{ route: 'files.list', kind: '429', retryAfterSeconds: 7, count: 1 }]);
    const limited = await raw.get('/v1beta/files');
    assert.equal(limited.headers.get('retry-after'), '7');
    const error = await expectGoogleError(limited, 429, 'RESOURCE_EXHAUSTED');
    assert.deepEqual(error.details, [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' }]);
    assert.equal((await raw.get('/v1beta/files')).status, 200);
  });

  test('latency faults delay the answer; a reset on another route cuts the connection', async () => {
    emulator.setFaults([
      { route: 'files.get', kind: 'latency', latencyMs: 150, count: 1 },
      { route: 'files.delete', kind: 'reset', count: 1 },
    ]);
    const started = performance.now();
    await expectGoogleError(await raw.get('/v1beta/files/nothere'), 404, 'NOT_FOUND');
    assert.ok(performance.now() - started >= 140);
    await assert.rejects(raw.get('/v1beta/files/nothere', { method: 'DELETE' }));
    await expectGoogleError(await raw.get('/v1beta/files/nothere', { method: 'DELETE' }), 404, 'NOT_FOUND');
  });

  test('probabilistic faults repeat with the same seed', async () => {
    const run = async () => {
      emulator.reset(); // also restarts the generator from the seed
      emulator.setFaults([{ route: 'files.list', kind: '500', probability: 0.5 }]);
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await raw.get('/v1beta/files')).status);
      return statuses;
    };
    const first = await run();
    assert.deepEqual(await run(), first);
    assert.ok(first.includes(500) && first.includes(200), first.join(','));
    emulator.setFaults([]);
  });

  test('cancel ends the session', async () => {
    const session = await raw.start(2 * CHUNK);
    assert.equal((await raw.send(session, 0, randomBytes(CHUNK), false)).status, 200);
    const cancelled = await raw.command(session, 'cancel');
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.headers.get('x-goog-upload-status'), 'cancelled');
    assert.equal((await raw.command(session, 'query')).headers.get('x-goog-upload-status'), 'cancelled');
    await expectGoogleError(await raw.send(session, CHUNK, randomBytes(CHUNK), true), 400, 'INVALID_ARGUMENT');
  });

  test('an unknown session is 404', async () => {
    const bogus = `${emulator.url}/upload/v1beta/files?upload_id=nope&upload_protocol=resumable`;
    await expectGoogleError(await raw.command(bogus, 'query'), 404, 'NOT_FOUND');
    await expectGoogleError(await raw.send(bogus, 0, Buffer.from('x'), true), 404, 'NOT_FOUND');
  });
});

describe('API key enforcement', () => {
  let emulator: Emulator;
  before(async () => {
    emulator = await startEmulator({ quiet: true, apiKey: 'right-key' });
  });
  after(() => emulator.close());

  test('missing key → 403 PERMISSION_DENIED, wrong key → 400 API key not valid, right key passes', async () => {
    await expectGoogleError(await fetch(`${emulator.url}/v1beta/files`), 403, 'PERMISSION_DENIED');
    const wrong = await fetch(`${emulator.url}/v1beta/files`, { headers: { 'x-goog-api-key': 'nope' } });
    assert.match((await expectGoogleError(wrong, 400, 'INVALID_ARGUMENT')).message, /API key not valid/);
    assert.equal((await fetch(`${emulator.url}/v1beta/files`, { headers: { 'x-goog-api-key': 'right-key' } })).status, 200);
    assert.equal((await fetch(`${emulator.url}/v1beta/files?key=right-key`)).status, 200);
    assert.equal((await fetch(`${emulator.url}/_emulator/stats`)).status, 200);
  });

  test('the SDK with a wrong key gets an ApiError 400', async () => {
    const ai = new GoogleGenAI({ apiKey: 'wrong', httpOptions: { baseUrl: emulator.url } });
    await assert.rejects(
      ai.models.generateContent({ model: 'gemini-2.0-flash', contents: 'hi' }),
      (err: unknown) => err instanceof ApiError && err.status === 400 && /API key not valid/.test(err.message),
    );
  });
});

describe('HTTP control endpoints', () => {
  let emulator: Emulator;
  let raw: ReturnType<typeof rawClient>;
  before(async () => {
    emulator = await startEmulator({ quiet: true });
    raw = rawClient(emulator.url);
  });
  after(() => emulator.close());

  test('faults, stats, expire and reset over HTTP', async () => {
    const put = await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ route: 'files.get', kind: '500', count: 1 }]),
    });
    assert.equal(put.status, 200);
    const invalid = await fetch(`${emulator.url}/_emulator/faults`, { method: 'PUT', body: '[{"route":"nowhere","kind":"500"}]' });
    await expectGoogleError(invalid, 400, 'INVALID_ARGUMENT');

    const session = await raw.start(5);
    const { file } = (await (await raw.send(session, 0, Buffer.from('hello'), true)).json()) as { file: GeminiFile };
    await expectGoogleError(await raw.get(`/v1beta/${file.name}`), 500, 'INTERNAL');
    assert.equal((await raw.get(`/v1beta/${file.name}`)).status, 200);

    let stats = await statsOver(emulator.url);
    assert.equal(stats.requests['files.get'], 2);
    assert.equal(stats.faultsInjected['files.get'], 1);
    assert.equal(stats.bytesByFile[file.name as string], 5);

    const id = (file.name as string).slice('files/'.length);
    assert.equal((await fetch(`${emulator.url}/_emulator/files/${id}/expire`, { method: 'POST' })).status, 200);
    await expectGoogleError(await raw.get(`/v1beta/${file.name}`), 404, 'NOT_FOUND');

    assert.equal((await fetch(`${emulator.url}/_emulator/reset`, { method: 'POST' })).status, 200);
    stats = await statsOver(emulator.url);
    assert.deepEqual(stats.bytesBySession, {});
    assert.equal(stats.requests['files.get'], 0);
    assert.deepEqual(await (await raw.get('/v1beta/files')).json(), {});
    await expectGoogleError(await raw.command(session, 'query'), 404, 'NOT_FOUND');
  });
});

describe('bad input', () => {
  let emulator: Emulator;
  let raw: ReturnType<typeof rawClient>;
  before(async () => {
    emulator = await startEmulator({ quiet: true });
    raw = rawClient(emulator.url);
  });
  after(() => emulator.close());

  test('bad JSON, empty contents, unknown routes and unknown files get Google-shaped errors', async () => {
    await expectGoogleError(await raw.generate('gemini-2.0-flash', '{not json'), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await raw.generate('gemini-2.0-flash', { contents: [] }), 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await raw.generate('gemini-2.0-flash', { contents: [{ role: 'user', parts: [] }] }), 400, 'INVALID_ARGUMENT');
    const unknownFile = await raw.generate('gemini-2.0-flash', {
      contents: [{ parts: [{ fileData: { fileUri: `${emulator.url}/v1beta/files/doesnotexist` } }] }],
    });
    assert.match((await expectGoogleError(unknownFile, 400, 'INVALID_ARGUMENT')).message, /not exist/);
    await expectGoogleError(await raw.get('/v1beta/nothing/here'), 404, 'NOT_FOUND');
    const badStart = await fetch(`${emulator.url}/upload/v1beta/files`, {
      method: 'POST',
      headers: { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start' },
      body: '{"file":',
    });
    await expectGoogleError(badStart, 400, 'INVALID_ARGUMENT');
    await expectGoogleError(await raw.get('/v1beta/files?pageSize=abc'), 400, 'INVALID_ARGUMENT');
    // Still serving.
    assert.equal((await raw.generate('gemini-2.0-flash', { contents: [{ parts: [{ text: 'ok' }] }] })).status, 200);
  });

  test('streamGenerateContent?alt=sse sends data: lines separated by CRLF CRLF', async () => {
    const res = await raw.generate('gemini-2.0-flash', { contents: [{ parts: [{ text: 'stream me please' }] }] }, true);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const body = await res.text();
    const events = body.split('\r\n\r\n').filter(Boolean);
    assert.ok(events.length >= 3);
    for (const event of events) assert.ok(event.startsWith('data: '), event);
    const last = JSON.parse(events[events.length - 1].slice('data: '.length));
    assert.equal(last.candidates[0].finishReason, 'STOP');
    assert.equal(last.usageMetadata.promptTokenCount, 3);
  });
});
