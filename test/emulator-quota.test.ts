import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, GoogleGenAI } from '@google/genai';
import { emulatorOptionsFromEnv, startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.js';
import { LatencyModel } from '../src/emulator/latency.js';

const RATE_LIMITS_URL = 'https://ai.google.dev/gemini-api/docs/rate-limits';
const REQUESTS_METRIC = {
  quotaMetric: 'generativelanguage.googleapis.com/generate_content_paid_tier_requests',
  quotaId: 'GenerateRequestsPerMinutePerProjectPerModel',
};
const TOKENS_METRIC = {
  quotaMetric: 'generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count',
  quotaId: 'GenerateContentInputTokensPerModelPerMinute',
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface QuotaErrorBody {
  code: number;
  message: string;
  status: string;
  details: Record<string, unknown>[];
}

const running: Emulator[] = [];
after(async () => {
  await Promise.all(running.map((e) => e.close()));
});

async function start(options: EmulatorOptions = {}): Promise<{ emulator: Emulator; ai: GoogleGenAI }> {
  const emulator = await startEmulator({ quiet: true, ...options });
  running.push(emulator);
  return { emulator, ai: new GoogleGenAI({ apiKey: 'test-key', httpOptions: { baseUrl: emulator.url } }) };
}

/** The error object of Gemini's body, parsed from the SDK's ApiError message. */
function quotaError(err: unknown): QuotaErrorBody {
  assert.ok(err instanceof ApiError, `expected an ApiError, got ${err}`);
  assert.equal(err.status, 429);
  const body = JSON.parse(err.message) as { error: QuotaErrorBody };
  assert.deepEqual(Object.keys(body), ['error']);
  return body.error;
}

/** Checks the whole body shape and gives the violations and the retry delay in seconds. */
function checkQuotaBody(error: QuotaErrorBody): { violations: unknown[]; retrySeconds: number } {
  assert.equal(error.code, 429);
  assert.equal(error.status, 'RESOURCE_EXHAUSTED');
  assert.match(error.message, /^You exceeded your current quota, please check your plan and billing details\. /);
  assert.deepEqual(
    error.details.map((d) => d['@type']),
    ['type.googleapis.com/google.rpc.QuotaFailure', 'type.googleapis.com/google.rpc.Help', 'type.googleapis.com/google.rpc.RetryInfo'],
  );
  const [failure, help, retry] = error.details;
  assert.deepEqual(help.links, [{ description: 'Learn more about Gemini API quotas', url: RATE_LIMITS_URL }]);
  const delay = /^(\d+)s$/.exec(String(retry.retryDelay));
  assert.ok(delay, `retryDelay ${retry.retryDelay} is whole seconds`);
  return { violations: failure.violations as unknown[], retrySeconds: Number(delay[1]) };
}

const violation = (metric: typeof REQUESTS_METRIC, model: string, limit: number) => ({
  ...metric,
  quotaDimensions: { location: 'global', model },
  quotaValue: String(limit),
});

async function settle<T>(calls: Promise<T>[]) {
  const results = await Promise.allSettled(calls);
  return {
    ok: results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<T>).value),
    errors: results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as unknown),
  };
}

const ask = (ai: GoogleGenAI, model: string, text = 'hello') => ai.models.generateContent({ model, contents: text });

async function control(emulator: Emulator, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${emulator.url}/_emulator/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

describe('quota (requests per minute, smooth per second)', () => {
  test("a burst over rpm gets Gemini's quota 429 with QuotaFailure, Help and RetryInfo; refusals consume nothing", async () => {
    const { emulator, ai } = await start({ quota: { rpm: 6 } });
    // rpm 6: 0.1 request/s, a burst of one. Ten at once: one passes, nine are refused.
    const { ok, errors } = await settle(Array.from({ length: 10 }, () => ask(ai, 'gemini-2.5-flash')));
    assert.equal(ok.length, 1);
    assert.equal(errors.length, 9);
    for (const err of errors) {
      const { violations, retrySeconds } = checkQuotaBody(quotaError(err));
      assert.deepEqual(violations, [violation(REQUESTS_METRIC, 'gemini-2.5-flash', 6)]);
      // The next request is admitted 10 s after the first; a refusal that consumed quota would push
      // the later ones to 20 s, 30 s, ...
      assert.equal(retrySeconds, 10);
    }

    // The stream route shares the model's quota; the raw answer has no Retry-After header.
    await assert.rejects(
      (async () => {
        for await (const _ of await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'x' })) void _;
      })(),
      (err: unknown) => quotaError(err).code === 429,
    );
    const raw = await fetch(`${emulator.url}/v1beta/models/gemini-2.5-flash:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ parts: [{ text: 'raw' }] }] }),
    });
    assert.equal(raw.status, 429);
    assert.equal(raw.headers.get('retry-after'), null);
    assert.match(raw.headers.get('content-type') ?? '', /application\/json/);
    const rawBody = (await raw.json()) as { error: QuotaErrorBody };
    assert.deepEqual(checkQuotaBody(rawBody.error).violations, [violation(REQUESTS_METRIC, 'gemini-2.5-flash', 6)]);

    // Quota is per model: another model is untouched.
    assert.ok((await ask(ai, 'gemini-2.5-pro')).text);
    const stats = emulator.stats().generateByModel;
    assert.equal(stats['gemini-2.5-flash'].answered2xx, 1);
    assert.equal(stats['gemini-2.5-flash'].refusedForQuota, 11);
    assert.equal(stats['gemini-2.5-pro'].answered2xx, 1);
    assert.equal(stats['gemini-2.5-pro'].refusedForQuota, 0);
  });

  test("requests at the allowed rate all succeed over about 3 s; a burst after them gets about one second's worth", async () => {
    const { emulator, ai } = await start({ quota: { rpm: 600 } }); // 10/s, burst 10
    const t0 = performance.now();
    const paced = Array.from({ length: 30 }, async (_, i) => {
      await sleep(t0 + i * 100 - performance.now());
      return ask(ai, 'gemini-2.5-flash-lite', `paced ${i}`);
    });
    const pacedResults = await settle(paced);
    assert.equal(pacedResults.errors.length, 0, `refused at the allowed rate: ${pacedResults.errors[0]}`);
    assert.equal(pacedResults.ok.length, 30);
    assert.ok(performance.now() - t0 >= 2900);

    // 40 at once is well within a per-minute count (70 of 600) but not within one second's worth.
    const burst = await settle(Array.from({ length: 40 }, () => ask(ai, 'gemini-2.5-flash-lite')));
    assert.ok(burst.ok.length >= 9 && burst.ok.length <= 12, `admitted ${burst.ok.length} of a burst of 40`);
    for (const err of burst.errors) assert.equal(checkQuotaBody(quotaError(err)).retrySeconds, 1);
    const stats = emulator.stats().generateByModel['gemini-2.5-flash-lite'];
    assert.equal(stats.answered2xx, 30 + burst.ok.length);
    assert.equal(stats.refusedForQuota, burst.errors.length);
  });
});

describe('quota (input tokens per minute)', () => {
  test('promptTokenCount is the estimate charged: words of every text part and the system instruction, 258 per media part', async () => {
    const data = Buffer.alloc(67, 1).toString('base64');
    const request = (extra: string) => ({
      contents: [
        { role: 'user', parts: [{ text: 'alpha beta gamma' }, { inlineData: { mimeType: 'image/png', data } }] },
        { role: 'model', parts: [{ text: 'delta epsilon' }] },
        { role: 'user', parts: [{ text: `zeta${extra}` }] },
      ],
      config: { systemInstruction: 'Be brief please' },
    });
    const estimate = 3 + 2 + 1 + 3 + 258;
    // A tpm of exactly the estimate: the request fits a fresh allowance, one word more never does.
    const { emulator, ai } = await start({ quota: { tpm: estimate } });
    const response = await ai.models.generateContent({ model: 'gemini-2.0-flash-lite', ...request('') });
    assert.equal(response.usageMetadata?.promptTokenCount, estimate);
    await assert.rejects(ai.models.generateContent({ model: 'gemini-2.5-pro', ...request(' eta') }), (err: unknown) => {
      assert.deepEqual(checkQuotaBody(quotaError(err)).violations, [violation(TOKENS_METRIC, 'gemini-2.5-pro', estimate)]);
      return true;
    });
    assert.equal(emulator.stats().generateByModel['gemini-2.5-pro'].refusedForQuota, 1);
  });

  test('a large prompt passes on a full allowance and leaves the model in debt; one over the limit never passes', async () => {
    const { ai } = await start({ quota: { tpm: 600, rpm: 1000 } }); // 10 tokens/s
    const large = 'word '.repeat(600);
    const first = await ask(ai, 'gemini-2.5-flash', large);
    assert.equal(first.usageMetadata?.promptTokenCount, 600);
    // 590 tokens of debt at 10/s: even one token waits about a minute.
    await assert.rejects(ask(ai, 'gemini-2.5-flash', 'hi'), (err: unknown) => {
      const { violations, retrySeconds } = checkQuotaBody(quotaError(err));
      assert.deepEqual(violations, [violation(TOKENS_METRIC, 'gemini-2.5-flash', 600)]);
      assert.ok(retrySeconds >= 58 && retrySeconds <= 60, `retryDelay ${retrySeconds}s`);
      return true;
    });
    await assert.rejects(ask(ai, 'gemini-2.5-pro', 'word '.repeat(601)), (err: unknown) => {
      assert.deepEqual(checkQuotaBody(quotaError(err)).violations, [violation(TOKENS_METRIC, 'gemini-2.5-pro', 600)]);
      return true;
    });
    // The refusal consumed nothing: the model's full allowance still admits a prompt of the limit.
    assert.equal((await ask(ai, 'gemini-2.5-pro', large)).usageMetadata?.promptTokenCount, 600);
  });
});

describe('quota and latency through the control API', () => {
  test('PUT /_emulator/quota changes the quota live; reset keeps it; bad input is a 400 naming the field', async () => {
    const { emulator, ai } = await start();
    assert.deepEqual((await control(emulator, 'GET', 'quota')).json, { rpm: 0, tpm: 0, perModel: {} });
    assert.equal((await settle(Array.from({ length: 5 }, () => ask(ai, 'gemini-2.5-flash')))).ok.length, 5);

    const put = await control(emulator, 'PUT', 'quota', { rpm: 6, perModel: { 'models/gemini-2.5-pro': { rpm: 120 } } });
    assert.equal(put.status, 200);
    const setting = { rpm: 6, tpm: 0, perModel: { 'gemini-2.5-pro': { rpm: 120 } } };
    assert.deepEqual(put.json, setting);
    assert.deepEqual((await control(emulator, 'GET', 'quota')).json, setting);
    const flash = await settle([ask(ai, 'gemini-2.5-flash'), ask(ai, 'gemini-2.5-flash')]);
    assert.equal(flash.ok.length, 1);
    assert.deepEqual(checkQuotaBody(quotaError(flash.errors[0])).violations, [violation(REQUESTS_METRIC, 'gemini-2.5-flash', 6)]);
    assert.equal((await settle([ask(ai, 'gemini-2.5-pro'), ask(ai, 'gemini-2.5-pro')])).ok.length, 2); // burst of 2

    // Reset empties the windows and keeps the setting.
    assert.equal((await control(emulator, 'POST', 'reset')).status, 200);
    assert.deepEqual((await control(emulator, 'GET', 'quota')).json, setting);
    assert.equal((await settle([ask(ai, 'gemini-2.5-flash'), ask(ai, 'gemini-2.5-flash')])).ok.length, 1);

    for (const [body, field] of [
      [{ rpm: -1 }, 'quota.rpm'],
      [{ tpm: 'lots' }, 'quota.tpm'],
      [{ rmp: 5 }, 'quota.rmp'],
      [{ perModel: { x: { rpm: 1.5 } } }, 'quota.perModel["x"].rpm'],
      [{ perModel: [] }, 'quota.perModel'],
      [[], 'quota'],
    ] as const) {
      const bad = await control(emulator, 'PUT', 'quota', body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.json.error.status, 'INVALID_ARGUMENT');
      assert.ok(bad.json.error.message.startsWith(`${field} `), `${bad.json.error.message} names ${field}`);
    }
    assert.deepEqual((await control(emulator, 'GET', 'quota')).json, setting, 'a refused PUT changes nothing');

    assert.deepEqual((await control(emulator, 'PUT', 'quota', { rpm: 0 })).json, { rpm: 0, tpm: 0, perModel: {} });
    assert.equal((await settle(Array.from({ length: 5 }, () => ask(ai, 'gemini-2.5-flash')))).ok.length, 5);
  });

  test('PUT /_emulator/latency sets it; bad input is a 400 naming the field', async () => {
    const { emulator, ai } = await start();
    assert.deepEqual((await control(emulator, 'GET', 'latency')).json, { kind: 'fixed', ms: 0 });
    const lognormal = { kind: 'lognormal', medianMs: 20, p99Ms: 100 };
    assert.deepEqual((await control(emulator, 'PUT', 'latency', lognormal)).json, lognormal);
    assert.deepEqual((await control(emulator, 'GET', 'latency')).json, lognormal);
    for (const [body, field] of [
      [{ kind: 'gauss' }, 'latency.kind'],
      [{ kind: 'fixed', ms: -5 }, 'latency.ms'],
      [{ kind: 'fixed', medianMs: 5 }, 'latency.medianMs'],
      [{ kind: 'lognormal', medianMs: 0, p99Ms: 10 }, 'latency.medianMs'],
      [{ kind: 'lognormal', medianMs: 50, p99Ms: 10 }, 'latency.p99Ms'],
    ] as const) {
      const bad = await control(emulator, 'PUT', 'latency', body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.ok(bad.json.error.message.startsWith(`${field} `), `${bad.json.error.message} names ${field}`);
    }
    assert.deepEqual((await control(emulator, 'GET', 'latency')).json, lognormal);

    assert.deepEqual((await control(emulator, 'PUT', 'latency', { kind: 'fixed', ms: 250 })).json, { kind: 'fixed', ms: 250 });
    const t0 = performance.now();
    await ask(ai, 'gemini-2.5-flash');
    assert.ok(performance.now() - t0 >= 245, 'the new latency applies at once');
  });
});

describe('latency model', () => {
  test('fixed latency delays a call by about the set time; 200 concurrent calls take about one latency; a refused call answers at once', async () => {
    const { emulator, ai } = await start({
      latency: { kind: 'fixed', ms: 300 },
      quota: { perModel: { 'gemini-2.0-flash-lite': { rpm: 1 } } },
    });
    let t0 = performance.now();
    await ask(ai, 'gemini-2.5-flash');
    const single = performance.now() - t0;
    assert.ok(single >= 295, `one call took ${single.toFixed(0)} ms`);

    // The stream is delayed too.
    t0 = performance.now();
    for await (const _ of await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'stream' })) void _;
    assert.ok(performance.now() - t0 >= 295);

    await ask(ai, 'gemini-2.0-flash-lite');
    t0 = performance.now();
    await assert.rejects(ask(ai, 'gemini-2.0-flash-lite'), (err: unknown) => quotaError(err).code === 429);
    const refusedIn = performance.now() - t0;
    // Not delayed: a delayed call takes at least the 300 ms latency, whatever the machine's load.
    assert.ok(refusedIn < 295, `the refusal took ${refusedIn.toFixed(0)} ms`);

    // A latency long next to what 200 SDK calls cost this process (a few hundred ms): one after
    // another they would take 200 s, two at a time 100 s.
    const latencyMs = 1000;
    emulator.setLatency({ kind: 'fixed', ms: latencyMs });
    t0 = performance.now();
    const all = await settle(Array.from({ length: 200 }, (_, i) => ask(ai, 'gemini-2.5-flash', `call ${i}`)));
    const elapsed = performance.now() - t0;
    assert.equal(all.ok.length, 200);
    // Concurrent, not one after another (200 s): the peak in flight below says how many at once.
    assert.ok(elapsed >= latencyMs - 5 && elapsed < 20 * latencyMs, `200 concurrent calls took ${elapsed.toFixed(0)} ms`);

    await sleep(50); // the server sees each response close just after the client has it
    const stats = emulator.stats().generateByModel;
    assert.equal(stats['gemini-2.5-flash'].answered2xx, 202);
    assert.ok(
      stats['gemini-2.5-flash'].peakInFlight >= 180 && stats['gemini-2.5-flash'].peakInFlight <= 200,
      `peakInFlight ${stats['gemini-2.5-flash'].peakInFlight}`,
    );
    assert.equal(stats['gemini-2.5-flash'].inFlight, 0);
    assert.deepEqual(stats['gemini-2.0-flash-lite'], { answered2xx: 1, refusedForQuota: 1, inFlight: 0, peakInFlight: 1 });
    // The same counters over HTTP.
    assert.deepEqual((await control(emulator, 'GET', 'stats')).json.generateByModel, stats);
  });

  test('composes with fault injection: fault latency adds to it, an injected 429 consumes no quota', async () => {
    const { emulator, ai } = await start({ latency: { kind: 'fixed', ms: 200 }, quota: { rpm: 6 } });
    emulator.setFaults([
      { route: 'generate', kind: 'latency', latencyMs: 150, count: 1 },
      { route: 'generate', kind: '429', count: 1 },
    ]);
    // Both rules fire on the first call: 150 ms of fault latency, then the injected 429 (not Gemini's quota body).
    await assert.rejects(
      ask(ai, 'gemini-2.5-flash'),
      (err: unknown) => err instanceof ApiError && err.status === 429 && !err.message.includes('QuotaFailure'),
    );
    const t0 = performance.now();
    assert.ok((await ask(ai, 'gemini-2.5-flash')).text, 'the quota was not charged for the injected 429');
    assert.ok(performance.now() - t0 >= 195);
    emulator.setFaults([{ route: 'generate', kind: 'latency', latencyMs: 150, count: 1 }]);
    emulator.setQuota({});
    const t1 = performance.now();
    await ask(ai, 'gemini-2.5-flash');
    assert.ok(performance.now() - t1 >= 345, 'fault latency and modelled latency add up');
    const stats = emulator.stats();
    assert.equal(stats.generateByModel['gemini-2.5-flash'].refusedForQuota, 0);
    assert.equal(stats.faultsInjected.generate, 3);
  });

  test('lognormal latencies of 300 calls have about the set median and a lognormal spread', async () => {
    const { ai } = await start({ latency: { kind: 'lognormal', medianMs: 20, p99Ms: 100 } });
    await ask(ai, 'gemini-2.0-flash-lite');
    // Ten callers one call after another: staggered arrivals keep the client's own share of each
    // measured time (the SDK and the emulator share this process) to a few ms.
    const durations: number[] = [];
    let started = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (started < 300) {
          started += 1;
          const t0 = performance.now();
          await ask(ai, 'gemini-2.5-flash');
          durations.push(performance.now() - t0);
        }
      }),
    );
    assert.equal(durations.length, 300);
    durations.sort((a, b) => a - b);
    const [p10, median, p90] = [0.1, 0.5, 0.9].map((p) => percentile(durations, p));
    const shown = `p10 ${p10.toFixed(1)}, median ${median.toFixed(1)}, p90 ${p90.toFixed(1)} ms`;
    // Expected 8.2 / 20 / 48.6 ms of delay, plus the client's few ms (more on a busy machine: the
    // exact median and p99 are checked on the drawn delays below).
    // A lower bound only: a busy machine adds to every measured time.
    assert.ok(median >= 17, shown);
    // A lognormal's p90/p10 is 5.9 here; a fixed delay plus the client's few ms is under 2.
    assert.ok(p90 / p10 > 3, shown);
  });

  test('the drawn delays follow the setting and repeat with the seed', () => {
    const setting = { kind: 'lognormal', medianMs: 20, p99Ms: 100 } as const;
    const draw = (seed: number, n: number) => {
      const model = new LatencyModel(setting, seed);
      return Array.from({ length: n }, () => model.next());
    };
    assert.deepEqual(draw(7, 50), draw(7, 50));
    assert.notDeepEqual(draw(7, 50), draw(8, 50));
    const sample = draw(1, 20_000).sort((a, b) => a - b);
    const median = percentile(sample, 0.5);
    const p99 = percentile(sample, 0.99);
    assert.ok(Math.abs(median - 20) < 1, `median ${median}`);
    assert.ok(Math.abs(p99 - 100) < 10, `p99 ${p99}`);
    const fixed = new LatencyModel({ kind: 'fixed', ms: 30 }, 1);
    assert.deepEqual([fixed.next(), fixed.next()], [30, 30]);
  });
});

describe('emulatorOptionsFromEnv', () => {
  test('reads quota and latency, and names the variable of a bad value', () => {
    assert.deepEqual(emulatorOptionsFromEnv({}), {});
    assert.deepEqual(emulatorOptionsFromEnv({ FERRY_EMULATOR_RPM: '1000', FERRY_EMULATOR_TPM: '', FERRY_EMULATOR_LATENCY_MS: '250' }), {
      quota: { rpm: 1000 },
      latency: { kind: 'fixed', ms: 250 },
    });
    assert.deepEqual(
      emulatorOptionsFromEnv({
        FERRY_EMULATOR_TPM: '1000000',
        FERRY_EMULATOR_LATENCY_MEDIAN_MS: '800',
        FERRY_EMULATOR_LATENCY_P99_MS: '4000',
      }),
      {
        quota: { tpm: 1000000 },
        latency: { kind: 'lognormal', medianMs: 800, p99Ms: 4000 },
      },
    );
    for (const [env, variable] of [
      [{ FERRY_EMULATOR_RPM: '-3' }, 'FERRY_EMULATOR_RPM'],
      [{ FERRY_EMULATOR_TPM: '1e3x' }, 'FERRY_EMULATOR_TPM'],
      [{ FERRY_EMULATOR_RPM: '2.5' }, 'FERRY_EMULATOR_RPM'],
      [{ FERRY_EMULATOR_LATENCY_MS: 'slow' }, 'FERRY_EMULATOR_LATENCY_MS'],
      [{ FERRY_EMULATOR_LATENCY_MEDIAN_MS: '100' }, 'FERRY_EMULATOR_LATENCY_P99_MS'],
      [{ FERRY_EMULATOR_LATENCY_P99_MS: '100' }, 'FERRY_EMULATOR_LATENCY_MEDIAN_MS'],
      [{ FERRY_EMULATOR_LATENCY_MEDIAN_MS: '100', FERRY_EMULATOR_LATENCY_P99_MS: '50' }, 'FERRY_EMULATOR_LATENCY_P99_MS'],
      [{ FERRY_EMULATOR_LATENCY_MEDIAN_MS: '0', FERRY_EMULATOR_LATENCY_P99_MS: '50' }, 'FERRY_EMULATOR_LATENCY_MEDIAN_MS'],
      [
        { FERRY_EMULATOR_LATENCY_MS: '10', FERRY_EMULATOR_LATENCY_MEDIAN_MS: '5', FERRY_EMULATOR_LATENCY_P99_MS: '9' },
        'FERRY_EMULATOR_LATENCY_MS',
      ],
    ] as const) {
      assert.throws(
        () => emulatorOptionsFromEnv(env),
        (err: unknown) => err instanceof Error && err.message.startsWith(variable),
        JSON.stringify(env),
      );
    }
  });
});
