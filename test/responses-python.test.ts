/**
 * The unmodified Python `openai` SDK against `/v1/responses` of Ferry as `npm start` runs it (the
 * default log level, the embedded emulator, a Redis key prefix of its own): test/python/
 * responses_check.py creates responses from a string, from an uploaded file, streamed, in the
 * background and over a function call turn, lists the models and provokes a BadRequestError, and
 * prints what it saw as one JSON line asserted here. The SDK lives in a virtualenv made on first use
 * (node_modules/.cache/ferry-python); if it cannot be made, the test fails saying why.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { Redis } from 'ioredis';
import { deleteByPrefix } from './redis-keys.js';
import { freePort } from './harness.js';
import { pythonWithOpenAI, run } from './python-sdk.js';

const root = path.resolve(import.meta.dirname, '..');
const MODEL = 'gemini-2.0-flash';
const KEY = 'sk-python-a';

describe('the Python openai SDK against /v1/responses of `npm start`', () => {
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let base: string;
  let tmp: string;
  let prefix: string;
  let stdout = '';
  let stderr = '';
  let python: string | Error;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-python-'));
    prefix = `ferry-python-${randomBytes(4).toString('hex')}`;
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = { ...process.env };
    // What a user gets: log level info, the embedded emulator, no private networks.
    for (const k of ['FERRY_LOG_LEVEL', 'GEMINI_API_KEY', 'GEMINI_BASE_URL', 'WEBHOOK_ALLOW_PRIVATE_NETWORKS', 'NODE_ENV', 'HOST'])
      delete env[k];
    Object.assign(env, {
      PORT: String(port),
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      FERRY_REDIS_PREFIX: prefix,
      FERRY_API_KEYS: `${KEY}:python-a`,
      FERRY_DATA_DIR: path.join(tmp, 'data'),
      FERRY_STAGING_DIR: path.join(tmp, 'staging'),
      FERRY_EMULATOR_PROCESSING_MS: '50',
      FERRY_METRICS_PORT: '0',
    });
    // Its own process group, so that the service npm runs goes with it however it is stopped.
    child = spawn('npm', ['start'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const group = child.pid!;
    // Should this file's process end before `after` runs, the service does not outlive it.
    process.once('exit', () => {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // already gone
      }
    });
    // The venv is made while the service builds and starts.
    const venv = pythonWithOpenAI().catch((err: Error) => err);
    const deadline = Date.now() + 90_000;
    for (;;) {
      assert.equal(child.exitCode, null, `npm start exited early:\n${stdout}\n${stderr}`);
      const ok = await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      assert.ok(Date.now() < deadline, `npm start did not become ready:\n${stdout}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    python = await venv;
  });

  after(async () => {
    if (child?.exitCode === null) {
      // npm passes SIGTERM on to the service, which stops gracefully; a SIGKILL to npm alone would orphan it.
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);
      if (!stopped) {
        process.kill(-child.pid!, 'SIGKILL');
        await exited;
      }
    }
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    await deleteByPrefix(redis, prefix);
    await redis.quit();
    await rm(tmp, { recursive: true, force: true });
  });

  test(
    'responses_check.py: string, file, stream, background, function call, models, a chunked upload, expires_after and a BadRequestError',
    { timeout: 90_000 },
    async () => {
      if (python instanceof Error) assert.fail(`The Python SDK is not available, so this test cannot run: ${python.message}`);
      const script = await run(python, [path.join(root, 'test', 'python', 'responses_check.py')], {
        env: { ...process.env, FERRY_BASE_URL: `${base}/v1`, FERRY_API_KEY: KEY, FERRY_MODEL: MODEL },
        timeoutMs: 60_000,
      });
      assert.equal(script.code, 0, `responses_check.py failed:\n${script.stderr}\n${script.stdout}`);
      const line = script.stdout.trim().split('\n').at(-1)!;
      const r = JSON.parse(line);

      assert.equal(r.string.status, 'completed');
      assert.equal(r.string.output_text, `model=${MODEL} | system=Be brief. | text=Hello from Python`);
      assert.match(r.string.id, /^resp_/);

      assert.deepEqual(r.by_url, { refused: true, param: 'url', code: 'url_not_allowed' });

      // Every response the script made was recorded in the usage ledger, and priced.
      assert.ok(r.usage.requests >= 6, `the script's calls are in the ledger (${r.usage.requests})`);
      assert.ok(r.usage.input_tokens > 0);
      assert.deepEqual(r.usage.models, [MODEL]);
      assert.deepEqual(r.usage.tiers, ['default']);
      assert.ok(r.usage.cost > 0);
      assert.ok(r.usage.line_items.includes(`${MODEL}, input`), r.usage.line_items.join('; '));
      assert.equal(r.usage.bad_width_param, 'bucket_width');

      assert.equal(r.file.file_status, 'processed');
      assert.equal(r.file.status, 'completed');
      assert.ok(r.file.provider_file, 'the processed file names its Gemini copy');
      assert.ok(r.file.output_text.includes(`files=${r.file.provider_file}(text/plain,`), r.file.output_text);
      assert.ok(r.file.output_text.endsWith('text=Summarise the file.'), r.file.output_text);

      assert.deepEqual(
        r.stream.sequence_numbers,
        r.stream.types.map((_: string, i: number) => i),
      );
      assert.deepEqual(
        r.stream.types.filter((t: string, i: number) => t !== r.stream.types[i - 1]),
        [
          'response.created',
          'response.in_progress',
          'response.output_item.added',
          'response.content_part.added',
          'response.output_text.delta',
          'response.output_text.done',
          'response.content_part.done',
          'response.output_item.done',
          'response.completed',
        ],
      );
      assert.equal(r.stream.final_status, 'completed');
      assert.equal(r.stream.deltas, r.stream.final_output_text);
      assert.match(r.stream.final_output_text, /text=stream this back to me from python please$/);

      assert.equal(r.background.initial_status, 'queued');
      assert.equal(r.background.status, 'completed');
      assert.match(r.background.output_text, /text=in the background from python$/);

      assert.equal(r.function_call.first_type, 'function_call');
      assert.equal(r.function_call.name, 'get_weather');
      assert.deepEqual(r.function_call.arguments, { city: 'Lisbon' });
      assert.ok(r.function_call.call_id);
      assert.equal(r.function_call.second_status, 'completed');
      assert.match(r.function_call.second_output_text, /functionResponse=get_weather\{"temp":24\}/);

      assert.ok(r.models.includes(MODEL), r.models.join());

      assert.equal(r.uploads.status, 'completed');
      assert.equal(r.uploads.bytes, r.uploads.expected_bytes);
      assert.equal(r.uploads.file_status, 'processed');
      assert.equal(r.uploads.file_sha256, r.uploads.expected_sha256, 'the parts composed in order');
      assert.equal(r.uploads.expires_in, 3600);

      assert.equal(r.early.file_status, 'processed');
      assert.equal(r.early.sha256, r.early.expected_sha256);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      const early = (outcome: string) =>
        Number(new RegExp(`ferry_early_uploads_total\\{outcome="${outcome}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
      assert.ok(
        early('started') >= 1 && early('taken') >= 1,
        `the Python SDK's upload was sent on early:\n${metrics
          .split('\n')
          .filter((l) => l.includes('early'))
          .join('\n')}`,
      );

      assert.equal(r.bad_field.raised, 'BadRequestError');
      assert.equal(r.bad_field.status, 400);
      assert.equal(r.bad_field.param, 'foo');
      assert.match(r.bad_field.message, /foo/);

      // What Python made reads the same through the Node SDK.
      const node = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0 });
      assert.equal((await node.responses.retrieve(r.stream.final_id)).output_text, r.stream.final_output_text);
      assert.equal((await node.responses.retrieve(r.background.id)).status, 'completed');
    },
  );

  test('afterwards the process is alive and healthy, with no error line in its log', async () => {
    assert.equal(child.exitCode, null, `npm start exited:\n${stderr}`);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const lines = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    assert.ok(
      lines.some((l) => l.msg === 'response accepted'),
      'the log is where this looks (it logged the responses accepted)',
    );
    assert.deepEqual(
      lines.filter((l) => l.level >= 50),
      [],
      'no error-level log lines',
    );
  });
});
