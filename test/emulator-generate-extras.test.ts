/**
 * generateContent extras of the emulator, driven by the unmodified @google/genai SDK: thinking
 * (thinkingConfig and thoughtsTokenCount), serviceTier, and fileData https URLs that Gemini fetches
 * itself (served here over TLS with a self-signed certificate made by the openssl CLI).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, GoogleGenAI, type GenerateContentResponse } from '@google/genai';
import { emulatorOptionsFromEnv, startEmulator, type Emulator } from '../src/emulator/index.js';

const KEY = 'test-key';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256Hex = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const isApiError = (status: number, message?: RegExp) => (err: unknown) =>
  err instanceof ApiError && err.status === status && (!message || message.test(err.message));
const client = (emulator: Emulator) => new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: emulator.url } });
const raw = (emulator: Emulator, model: string, body: unknown) =>
  fetch(`${emulator.url}/v1beta/models/${model}:generateContent`, {
    method: 'POST',
    headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** What the emulator's reply text reveals about a prompt of `words` words on a thinking model. */
const thoughtsOf = (promptTokens: number, budget: number) => Math.min(budget, 16 + 2 * promptTokens);

describe('thinking: thinkingConfig and thoughtsTokenCount', () => {
  let emulator: Emulator;
  let ai: GoogleGenAI;
  const contents = 'think about the five words';

  before(async () => {
    emulator = await startEmulator({ apiKey: KEY, quiet: true });
    ai = client(emulator);
  });
  after(() => emulator.close());

  test('without a thinkingConfig the answer is what it always was: no thoughts', async () => {
    const res = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents });
    assert.equal(res.usageMetadata?.thoughtsTokenCount, undefined);
    assert.equal(res.usageMetadata?.promptTokenCount, 5);
    const u = res.usageMetadata;
    assert.equal(u?.totalTokenCount, (u?.promptTokenCount ?? 0) + (u?.candidatesTokenCount ?? 0));
  });

  test('a budget gives deterministic thoughts, counted in the total, within the budget', async () => {
    const plain = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents });
    const ask = (thinkingBudget: number) =>
      ai.models.generateContent({ model: 'gemini-2.5-flash', contents, config: { thinkingConfig: { thinkingBudget } } });
    const thinking = await ask(1000);
    const u = thinking.usageMetadata;
    assert.equal(u?.thoughtsTokenCount, thoughtsOf(5, 1000));
    assert.equal(u?.totalTokenCount, 5 + (u?.candidatesTokenCount ?? 0) + thoughtsOf(5, 1000));
    assert.equal(thinking.text, plain.text, 'thinking does not change the answer');
    assert.equal(thinking.candidates?.[0].content?.parts?.length, 1, 'no thought part without includeThoughts');
    assert.deepEqual((await ask(1000)).usageMetadata, u);
    assert.equal((await ask(7)).usageMetadata?.thoughtsTokenCount, 7, 'capped by the budget');
    assert.equal((await ask(-1)).usageMetadata?.thoughtsTokenCount, thoughtsOf(5, 8192), 'dynamic');
    const off = await ask(0);
    assert.equal(off.usageMetadata?.thoughtsTokenCount, undefined);
    assert.deepEqual(off.usageMetadata, plain.usageMetadata);
  });

  test('includeThoughts puts a thought part before the answer; response.text leaves it out', async () => {
    const res = await ai.models.generateContent({
      model: 'gemini-2.5-pro',
      contents,
      config: { thinkingConfig: { thinkingBudget: 2048, includeThoughts: true } },
    });
    const parts = res.candidates?.[0].content?.parts ?? [];
    assert.equal(parts.length, 2);
    assert.equal(parts[0].thought, true);
    assert.match(parts[0].text ?? '', /^Thought for \d+ tokens about: think about the five words$/);
    assert.equal(parts[1].thought, undefined);
    assert.equal(res.text, 'model=gemini-2.5-pro | text=think about the five words');
    assert.equal(res.usageMetadata?.thoughtsTokenCount, thoughtsOf(5, 2048));
  });

  test('a thinkingConfig without a budget thinks as the model does by default', async () => {
    const config = { thinkingConfig: { includeThoughts: false } };
    const flash = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents, config });
    assert.equal(flash.usageMetadata?.thoughtsTokenCount, thoughtsOf(5, 8192));
    const lite = await ai.models.generateContent({ model: 'gemini-2.5-flash-lite', contents, config });
    assert.equal(lite.usageMetadata?.thoughtsTokenCount, undefined, 'Flash-Lite does not think by default');
    // Below Flash-Lite's minimum budget (512) the minimum applies.
    const long = 'word '.repeat(300);
    const small = await ai.models.generateContent({
      model: 'gemini-2.5-flash-lite',
      contents: long,
      config: { thinkingConfig: { thinkingBudget: 100 } },
    });
    assert.equal(small.usageMetadata?.thoughtsTokenCount, 512);
  });

  test('the budgets and models Gemini refuses are 400 INVALID_ARGUMENT', async () => {
    const ask = (model: string, thinkingConfig: Record<string, unknown>) =>
      ai.models.generateContent({ model, contents, config: { thinkingConfig } });
    await assert.rejects(ask('gemini-2.5-pro', { thinkingBudget: 0 }), isApiError(400, /only works in thinking mode/));
    await assert.rejects(ask('gemini-2.5-flash', { thinkingBudget: 24_577 }), isApiError(400, /thinking budget \(24577\) is invalid/));
    await assert.rejects(ask('gemini-2.5-flash', { thinkingBudget: -2 }), isApiError(400, /is invalid/));
    await assert.rejects(ask('gemini-2.5-flash', { thinkingLevel: 'HIGH' }), isApiError(400, /Thinking level is not supported/));
    await assert.rejects(ask('gemini-2.0-flash', { thinkingBudget: 1024 }), isApiError(400, /Thinking is not enabled/));
    await assert.rejects(ask('gemini-2.0-flash', { thinkingBudget: -1 }), isApiError(400));
    await assert.rejects(ask('gemini-2.0-flash-lite', { includeThoughts: true }), isApiError(400));
    const zero = await ask('gemini-2.0-flash', { thinkingBudget: 0 });
    assert.equal(zero.usageMetadata?.thoughtsTokenCount, undefined);
    const res = await raw(emulator, 'gemini-2.5-flash', {
      contents: [{ parts: [{ text: 'x' }] }],
      generationConfig: { thinkingConfig: { thinkingBudget: 'lots' } },
    });
    assert.equal(res.status, 400);
  });

  test('a stream carries the thought part in its first chunk and the same usage in its last', async () => {
    const request = {
      model: 'gemini-2.5-flash',
      contents: 'stream these words to me please',
      config: { thinkingConfig: { thinkingBudget: 500, includeThoughts: true } },
    };
    const whole = await ai.models.generateContent(request);
    const chunks: GenerateContentResponse[] = [];
    for await (const chunk of await ai.models.generateContentStream(request)) chunks.push(chunk);
    assert.ok(chunks.length >= 3);
    assert.equal(chunks[0].candidates?.[0].content?.parts?.[0].thought, true);
    assert.ok(chunks.slice(1).every((c) => c.candidates?.[0].content?.parts?.every((p) => !p.thought)));
    assert.equal(chunks.map((c) => c.text ?? '').join(''), whole.text);
    assert.deepEqual(chunks.at(-1)?.usageMetadata, whole.usageMetadata);
    assert.equal(whole.usageMetadata?.thoughtsTokenCount, thoughtsOf(6, 500));
  });

  test('a batch line with a thinkingConfig answers with the same thoughts', async () => {
    const created = await ai.batches.create({
      model: 'gemini-2.5-flash',
      src: [{ contents: [{ role: 'user', parts: [{ text: contents }] }], config: { thinkingConfig: { thinkingBudget: 300 } } }],
    });
    for (let i = 0; i < 200; i++) {
      const job = await ai.batches.get({ name: created.name as string });
      if (job.state === 'JOB_STATE_SUCCEEDED') {
        assert.equal(job.dest?.inlinedResponses?.[0].response?.usageMetadata?.thoughtsTokenCount, thoughtsOf(5, 300));
        return;
      }
      await sleep(20);
    }
    assert.fail('the batch did not succeed');
  });
});

describe('serviceTier', () => {
  let emulator: Emulator;
  let ai: GoogleGenAI;

  before(async () => {
    emulator = await startEmulator({ apiKey: KEY, quiet: true });
    ai = client(emulator);
  });
  after(() => emulator.close());

  test('flex, standard and priority are accepted and change nothing in the answer', async () => {
    const plain = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'tiers' });
    for (const serviceTier of ['flex', 'standard', 'priority', 'unspecified']) {
      const res = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'tiers', config: { serviceTier } as never });
      assert.equal(res.text, plain.text, serviceTier);
      assert.deepEqual(res.usageMetadata, plain.usageMetadata, serviceTier);
      assert.equal((res as unknown as Record<string, unknown>).serviceTier, undefined);
    }
    const recorded = emulator.stats().generateRequests.at(-1)?.body as { serviceTier?: string };
    assert.equal(recorded.serviceTier, 'unspecified');
  });

  test('an unknown tier is 400 INVALID_ARGUMENT', async () => {
    await assert.rejects(
      ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'tiers', config: { serviceTier: 'turbo' } as never }),
      isApiError(400, /service_tier/),
    );
    const res = await raw(emulator, 'gemini-2.0-flash', { contents: [{ parts: [{ text: 'x' }] }], serviceTier: 3 });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { status: string } }).error.status, 'INVALID_ARGUMENT');
  });
});

/** A self-signed certificate for 127.0.0.1 made by the openssl CLI, or undefined where openssl is missing. */
function makeCertificate(dir: string): { key: string; cert: string } | undefined {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return made.status === 0 ? { key, cert } : undefined;
}

const HAS_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

describe('fileData https URLs that Gemini fetches itself', { skip: HAS_OPENSSL ? false : 'the openssl CLI is missing' }, () => {
  const doc = randomBytes(300_000);
  const MAX = 1024 * 1024;
  let dir: string;
  let pem: { key: string; cert: string };
  let ca: string;
  let origin: string;
  let files: Server;
  let emulator: Emulator;
  let ai: GoogleGenAI;

  /** The paths the test server answers. */
  function serve(path: string, res: ServerResponse): void {
    const redirect = /^\/hops\/(\d+)$/.exec(path);
    if (path === '/doc.pdf') return void res.writeHead(200, { 'content-type': 'application/pdf' }).end(doc);
    if (path === '/notes') return void res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('some notes');
    if (redirect) {
      const n = Number(redirect[1]);
      return void res.writeHead(302, { location: n === 0 ? '/doc.pdf' : `/hops/${n - 1}` }).end();
    }
    if (path === '/to-http') return void res.writeHead(301, { location: 'http://127.0.0.1:9/doc.pdf' }).end();
    if (path === '/big-declared') return void res.writeHead(200, { 'content-length': String(MAX + 1) }).end(Buffer.alloc(MAX + 1));
    if (path === '/big-chunked') {
      // No Content-Length: the size is only known by counting the stream.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < 9; i++) res.write(Buffer.alloc(128 * 1024, i));
      return void res.end();
    }
    res.writeHead(path === '/gone' ? 410 : 404).end('no');
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gemini-emulator-fileuri-'));
    pem = makeCertificate(dir) as { key: string; cert: string };
    ca = await readFile(pem.cert, 'utf8');
    files = createServer({ key: await readFile(pem.key), cert: ca }, (req, res) =>
      serve(new URL(req.url ?? '/', 'https://x').pathname, res),
    );
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(files.address() as AddressInfo).port}`;
    emulator = await startEmulator({ apiKey: KEY, quiet: true, fileUriTls: { ca }, maxFileUriBytes: MAX });
    ai = client(emulator);
  });
  after(async () => {
    await emulator.close();
    files.closeAllConnections();
    await new Promise((resolve) => files.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const ask = (fileUri: string, mimeType?: string, model = 'gemini-2.5-flash') =>
    ai.models.generateContent({
      model,
      contents: [{ role: 'user', parts: [{ fileData: { fileUri, ...(mimeType ? { mimeType } : {}) } }, { text: 'Summarise' }] }],
    });

  test('the URL’s bytes reach the model: its type, size and sha256 show in the reply; the query is not echoed', async () => {
    const res = await ask(`${origin}/doc.pdf?X-Amz-Signature=secret`, 'application/pdf');
    const text = res.text ?? '';
    assert.ok(text.includes(`files=${origin}/doc.pdf(application/pdf,${doc.length} bytes,sha256=${sha256Hex(doc)})`), text);
    assert.ok(!text.includes('secret'), text);
    assert.equal(res.usageMetadata?.promptTokenCount, 1 + 258, 'a URL counts as a media part');
    const notes = await ask(`${origin}/notes`);
    assert.ok(notes.text?.includes(`${origin}/notes(text/plain,10 bytes,`), notes.text);
  });

  test('up to 5 redirects are followed; a 6th, or one to http, is refused', async () => {
    const five = await ask(`${origin}/hops/4`, 'application/pdf');
    assert.ok(five.text?.includes(`(application/pdf,${doc.length} bytes,sha256=${sha256Hex(doc)})`), five.text);
    await assert.rejects(ask(`${origin}/hops/5`), isApiError(400, /Cannot fetch content from the provided URL: more than 5 redirects/));
    await assert.rejects(ask(`${origin}/to-http`), isApiError(400, /Cannot fetch content from the provided URL/));
  });

  test('a non-2xx answer, an unreachable or untrusted server, or an http URL is 400 INVALID_ARGUMENT', async () => {
    await assert.rejects(ask(`${origin}/missing`), isApiError(400, /Cannot fetch content from the provided URL: .*HTTP 404/));
    await assert.rejects(ask(`${origin}/gone`), isApiError(400, /HTTP 410/));
    await assert.rejects(ask('https://127.0.0.1:9/doc.pdf'), isApiError(400, /Cannot fetch content from the provided URL/));
    await assert.rejects(ask(`http://127.0.0.1:${new URL(origin).port}/doc.pdf`), isApiError(400, /https URLs only/));
    const untrusting = await startEmulator({ apiKey: KEY, quiet: true });
    try {
      await assert.rejects(
        client(untrusting).models.generateContent({
          model: 'gemini-2.0-flash',
          contents: [{ role: 'user', parts: [{ fileData: { fileUri: `${origin}/doc.pdf`, mimeType: 'application/pdf' } }] }],
        }),
        isApiError(400, /Cannot fetch content from the provided URL: .*certificate/),
      );
    } finally {
      await untrusting.close();
    }
  });

  test('content larger than the cap is refused, whether declared or only counted', async () => {
    await assert.rejects(ask(`${origin}/big-declared`), isApiError(400, new RegExp(`larger than ${MAX} bytes`)));
    await assert.rejects(ask(`${origin}/big-chunked`), isApiError(400, new RegExp(`larger than ${MAX} bytes`)));
  });

  test('a refused URL is not charged against the quota', async () => {
    emulator.setQuota({ perModel: { 'gemini-2.0-flash-lite': { rpm: 1 } } });
    await assert.rejects(ask(`${origin}/missing`, undefined, 'gemini-2.0-flash-lite'), isApiError(400));
    await ask(`${origin}/doc.pdf`, 'application/pdf', 'gemini-2.0-flash-lite');
    await assert.rejects(ask(`${origin}/doc.pdf`, 'application/pdf', 'gemini-2.0-flash-lite'), isApiError(429));
    emulator.setQuota({});
  });

  test('streams and batch lines fetch URLs too', async () => {
    const chunks: GenerateContentResponse[] = [];
    const stream = await ai.models.generateContentStream({
      model: 'gemini-2.5-pro',
      contents: [{ role: 'user', parts: [{ fileData: { fileUri: `${origin}/notes`, mimeType: 'text/plain' } }, { text: 'read' }] }],
    });
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(
      chunks
        .map((c) => c.text ?? '')
        .join('')
        .includes(`${origin}/notes(text/plain,10 bytes,`),
    );

    const created = await ai.batches.create({
      model: 'gemini-2.0-flash',
      src: [
        { contents: [{ role: 'user', parts: [{ fileData: { fileUri: `${origin}/notes`, mimeType: 'text/plain' } }] }] },
        { contents: [{ role: 'user', parts: [{ fileData: { fileUri: `${origin}/missing`, mimeType: 'text/plain' } }] }] },
      ],
    });
    for (let i = 0; i < 200; i++) {
      const job = await ai.batches.get({ name: created.name as string });
      if (job.state === 'JOB_STATE_SUCCEEDED') {
        const [ok, failed] = job.dest?.inlinedResponses ?? [];
        const text = ok.response?.candidates?.[0].content?.parts?.[0].text;
        assert.ok(text?.includes('(text/plain,10 bytes,'), text);
        assert.match(failed.error?.message ?? '', /Cannot fetch content from the provided URL/);
        return;
      }
      await sleep(20);
    }
    assert.fail('the batch did not succeed');
  });

  test('FERRY_EMULATOR_FILE_URI_CA names the PEM file the emulator trusts', async () => {
    assert.deepEqual(emulatorOptionsFromEnv({ FERRY_EMULATOR_FILE_URI_CA: '' }), {});
    assert.throws(() => emulatorOptionsFromEnv({ FERRY_EMULATOR_FILE_URI_CA: join(dir, 'none.pem') }), /FERRY_EMULATOR_FILE_URI_CA/);
    const options = emulatorOptionsFromEnv({ FERRY_EMULATOR_FILE_URI_CA: pem.cert });
    assert.equal(options.fileUriTls?.ca, ca);
    const fromEnv = await startEmulator({ apiKey: KEY, quiet: true, ...options });
    try {
      const res = await client(fromEnv).models.generateContent({
        model: 'gemini-2.0-flash',
        contents: [{ role: 'user', parts: [{ fileData: { fileUri: `${origin}/notes`, mimeType: 'text/plain' } }] }],
      });
      assert.ok(res.text?.includes('(text/plain,10 bytes,'), res.text);
    } finally {
      await fromEnv.close();
    }
  });
});
