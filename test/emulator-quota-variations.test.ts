/**
 * The emulator's quota under the conditions of the real service that a client must survive: 429s
 * that do not state their limit (statesLimit: false) or say nothing at all (detail: 'none', Vertex
 * AI's bare body), another client spending a share of the same quota (sharedShare), and a quota
 * that moves during a run (schedule). Exact rates are checked on the enforcer with a clock of the
 * test's own; through HTTP only what a loaded machine cannot upset.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, GoogleGenAI } from '@google/genai';
import { emulatorOptionsFromEnv, startEmulator, type Emulator, type EmulatorOptions } from '../src/emulator/index.js';
import type { RpcError } from '../src/emulator/errors.js';
import { QuotaEnforcer } from '../src/emulator/quota.js';
import { StatsCollector } from '../src/emulator/stats.js';
import type { QuotaSetting } from '../src/emulator/types.js';

const RATE_LIMITS_URL = 'https://ai.google.dev/gemini-api/docs/rate-limits';
const VERTEX_BODY = {
  error: {
    code: 429,
    message:
      'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.',
    status: 'RESOURCE_EXHAUSTED',
  },
};
const REQUESTS_METRIC = {
  quotaMetric: 'generativelanguage.googleapis.com/generate_content_paid_tier_requests',
  quotaId: 'GenerateRequestsPerMinutePerProjectPerModel',
};
const TOKENS_METRIC = {
  quotaMetric: 'generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count',
  quotaId: 'GenerateContentInputTokensPerModelPerMinute',
};
const MODEL = 'gemini-2.5-flash';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const running: Emulator[] = [];
after(async () => {
  await Promise.all(running.map((e) => e.close()));
});

async function start(options: EmulatorOptions = {}): Promise<{ emulator: Emulator; ai: GoogleGenAI }> {
  const emulator = await startEmulator({ quiet: true, ...options });
  running.push(emulator);
  return { emulator, ai: new GoogleGenAI({ apiKey: 'test-key', httpOptions: { baseUrl: emulator.url } }) };
}

async function control(emulator: Emulator, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${emulator.url}/_emulator/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** One generateContent over plain HTTP: its status, Retry-After header and JSON body. */
async function generate(
  emulator: Emulator,
  model = MODEL,
  text = 'hello',
): Promise<{ status: number; retryAfter: string | null; body: any }> {
  const res = await fetch(`${emulator.url}/v1beta/models/${model}:generateContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text }] }] }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

const burst = (emulator: Emulator, n: number, model = MODEL) => Promise.all(Array.from({ length: n }, () => generate(emulator, model)));

/** The body of the first refused call of a burst (calls at once answer in any order). */
async function refusedBody(emulator: Emulator, n = 2): Promise<any> {
  const refused = (await burst(emulator, n)).find((r) => r.status === 429);
  assert.ok(refused, `none of ${n} calls at once was refused`);
  return refused.body;
}

const violation = (metric: typeof REQUESTS_METRIC, model: string, limit?: number) => ({
  ...metric,
  quotaDimensions: { location: 'global', model },
  ...(limit === undefined ? {} : { quotaValue: String(limit) }),
});

/** The stated rpm of a full 429 body. */
const statedRpm = (body: any): number => Number(body.error.details[0].violations[0].quotaValue);

describe('429s that do not state their limit', () => {
  test('statesLimit: false gives QuotaFailure without quotaValue (Help first, RetryInfo kept), through the unmodified SDK', async () => {
    const { emulator, ai } = await start({ quota: { rpm: 6, statesLimit: false, perModel: { 'gemini-2.5-pro': { tpm: 5 } } } });
    const results = await Promise.allSettled(Array.from({ length: 3 }, () => ai.models.generateContent({ model: MODEL, contents: 'hi' })));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      const err = (r as PromiseRejectedResult).reason;
      assert.ok(err instanceof ApiError && err.status === 429, String(err));
      const { error } = JSON.parse(err.message);
      assert.deepEqual(error, {
        code: 429,
        message: `You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: ${RATE_LIMITS_URL}.`,
        status: 'RESOURCE_EXHAUSTED',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.Help',
            links: [{ description: 'Learn more about Gemini API quotas', url: RATE_LIMITS_URL }],
          },
          { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [violation(REQUESTS_METRIC, MODEL)] },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '10s' },
        ],
      });
    }
    // A prompt over the tpm: the metric named without its value, and no "limit: N" anywhere.
    const tokens = await generate(emulator, 'gemini-2.5-pro', 'one two three four five six');
    assert.equal(tokens.status, 429);
    assert.deepEqual(tokens.body.error.details[1].violations, [violation(TOKENS_METRIC, 'gemini-2.5-pro')]);
    assert.doesNotMatch(JSON.stringify(tokens.body), /quotaValue|limit: /);
    assert.equal(tokens.retryAfter, null);
    assert.equal(emulator.stats().generateByModel[MODEL].refusedForQuota, 2);
  });

  test("detail: 'none' set through the control API gives Vertex AI's bare body: no details, no RetryInfo, no Retry-After", async () => {
    const { emulator } = await start({ quota: { rpm: 6 } });
    const put = await control(emulator, 'PUT', 'quota', { rpm: 6, detail: 'none' });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json, { rpm: 6, tpm: 0, perModel: {}, detail: 'none' });
    const calls = await burst(emulator, 2);
    assert.deepEqual(calls.map((r) => r.status).sort(), [200, 429]);
    const refused = calls.find((r) => r.status === 429)!;
    assert.deepEqual(refused.body, VERTEX_BODY);
    assert.equal(refused.retryAfter, null);
    assert.equal(emulator.stats().generateByModel[MODEL].refusedForQuota, 1);

    // detail: 'none' wins over statesLimit; back to the default, Gemini's full body again.
    emulator.setQuota({ rpm: 6, detail: 'none', statesLimit: false });
    assert.deepEqual(await refusedBody(emulator), VERTEX_BODY);
    assert.deepEqual((await control(emulator, 'PUT', 'quota', { rpm: 6, detail: 'full' })).json, { rpm: 6, tpm: 0, perModel: {} });
    const full = await refusedBody(emulator);
    assert.deepEqual(full.error.details[0].violations, [violation(REQUESTS_METRIC, MODEL, 6)]);
    assert.match(full.error.message, /limit: 6, model: gemini-2\.5-flash/);
  });
});

describe('a second client sharing the quota', () => {
  test('sharedShare: our calls refill at (1 − share) of the limit while the 429s state the whole limit', () => {
    let now = 0;
    const quota = new QuotaEnforcer({ rpm: 60, tpm: 600, sharedShare: 0.4 }, new StatsCollector(), () => now);
    quota.admit(MODEL, 1);
    // One request a second, of which 0.6 for us: after 1 s the bucket holds 0.6 of a request.
    now = 1000;
    const err = refusal(() => quota.admit(MODEL, 1));
    const { error } = err.toJSON() as { error: any };
    assert.deepEqual(error.details[0].violations, [violation(REQUESTS_METRIC, MODEL, 60)]);
    assert.match(error.message, /Please retry in 0\.667s\.$/);
    assert.deepEqual(error.details[2], { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1s' });
    now = 1660;
    assert.throws(() => quota.admit(MODEL, 1));
    now = 1667;
    quota.admit(MODEL, 1);
    // Tokens too: 10 a second stated, 6 ours. 10 tokens (the capacity) taken at 1667 ms are back 1667 ms later.
    quota.admit('gemini-2.5-pro', 10);
    now = 1667 + 1600;
    assert.throws(
      () => quota.admit('gemini-2.5-pro', 10),
      (e: RpcError) => /limit: 600/.test(e.message),
    );
    now = 1667 + 1667;
    quota.admit('gemini-2.5-pro', 10);
  });

  test('through HTTP: about half the rate with sharedShare 0.5, each 429 stating the full rpm', async () => {
    const { emulator } = await start({ quota: { rpm: 600, sharedShare: 0.5 } }); // 10/s stated, 5/s ours, burst 10
    assert.deepEqual((await control(emulator, 'GET', 'quota')).json, { rpm: 600, tpm: 0, perModel: {}, sharedShare: 0.5 });
    const drain = await burst(emulator, 20);
    assert.ok(drain.filter((r) => r.status === 200).length >= 10);
    assert.ok(drain.some((r) => r.status === 429));
    // The bucket is (about) empty: what passes from now on is what refills. It holds up to 2 s of our
    // share, so a stalled loop loses nothing: admitted ≈ 5/s × elapsed, whatever the machine's load.
    const t0 = performance.now();
    let admitted = 0;
    while (performance.now() - t0 < 1200) {
      const r = await generate(emulator);
      if (r.status === 200) admitted += 1;
      else assert.equal(statedRpm(r.body), 600);
      await sleep(20);
    }
    const elapsedS = (performance.now() - t0) / 1000;
    assert.ok(admitted >= 5 * elapsedS - 3 && admitted <= 5 * elapsedS + 1, `${admitted} admitted in ${elapsedS.toFixed(2)} s`);
    assert.equal(emulator.stats().quota.sharedShare, 0.5);
  });
});

describe('a quota that moves', () => {
  test('each step applies as of its time: the old rate until then, the new after, the level capped at the new capacity', () => {
    let now = 0;
    const setting: QuotaSetting = {
      rpm: 60,
      schedule: [
        { atMs: 1000, rpm: 600 },
        { atMs: 2000, rpm: 6 },
      ],
    };
    const quota = new QuotaEnforcer(setting, new StatsCollector(), () => now);
    quota.admit(MODEL, 1);
    now = 500;
    assert.throws(
      () => quota.admit(MODEL, 1),
      (e: RpcError) => /limit: 60,.*\nPlease retry in 0\.5s\.$/s.test(e.message),
    );
    // No call between 500 and 1050 ms: 1 s of 1/s refilled it to 1.0 by the step, then 50 ms of 10/s.
    now = 1050;
    quota.admit(MODEL, 1);
    assert.throws(
      () => quota.admit(MODEL, 1),
      (e: RpcError) => /limit: 600,.*Please retry in 0\.05s\.$/s.test(e.message),
    );
    // Down to 6 rpm at 2000 ms: the 10 requests' worth it held by then are capped at the new capacity, 1.
    now = 2000;
    quota.admit(MODEL, 1);
    assert.throws(
      () => quota.admit(MODEL, 1),
      (e: RpcError) => /limit: 6,.*Please retry in 10s\.$/s.test(e.message),
    );
    assert.deepEqual(quota.get().current, { elapsedMs: 2000, rpm: 6, tpm: 0 });
  });

  test('a step to unlimited drops the limit, one back starts full; tpm steps alone; perModel entries keep their own', () => {
    let now = 0;
    const quota = new QuotaEnforcer(
      {
        rpm: 60,
        perModel: { 'gemini-2.5-pro': { rpm: 120 } },
        schedule: [
          { atMs: 100, rpm: 0 },
          { atMs: 200, rpm: 60 },
          { atMs: 300, tpm: 100 },
        ],
      },
      new StatsCollector(),
      () => now,
    );
    quota.admit(MODEL, 1);
    assert.throws(() => quota.admit(MODEL, 1));
    now = 150;
    for (let i = 0; i < 50; i++) quota.admit(MODEL, 1);
    now = 250;
    quota.admit(MODEL, 1);
    assert.throws(
      () => quota.admit(MODEL, 1),
      (e: RpcError) => /limit: 60,/.test(e.message),
    );
    // The pro model kept its 120 rpm (2 a second) through every step.
    quota.admit('gemini-2.5-pro', 1);
    quota.admit('gemini-2.5-pro', 1);
    assert.throws(
      () => quota.admit('gemini-2.5-pro', 1),
      (e: RpcError) => /limit: 120,/.test(e.message),
    );
    quota.admit('gemini-2.0-flash', 5000);
    // At 300 ms the tpm goes from unlimited to 100 and the rpm stays 60.
    now = 1300;
    assert.throws(
      () => quota.admit('gemini-2.0-flash', 101),
      (e: RpcError) => /input_token_count, limit: 100,/.test(e.message) && !/_requests/.test(e.message),
    );
    quota.admit('gemini-2.0-flash', 100);
    quota.admit(MODEL, 1);
    assert.throws(
      () => quota.admit(MODEL, 1),
      (e: RpcError) => /_requests, limit: 60,/.test(e.message),
    );
    assert.deepEqual(quota.timeline().steps, [
      { atMs: 0, rpm: 60, tpm: 0 },
      { atMs: 100, rpm: 0, tpm: 0 },
      { atMs: 200, rpm: 60, tpm: 0 },
      { atMs: 300, rpm: 60, tpm: 100 },
    ]);
  });

  test('through HTTP: PUT a schedule, GET shows the limits in force, the stats the timeline; reset starts it again', async () => {
    const { emulator } = await start();
    const schedule = [{ atMs: 300, rpm: 6 }];
    const put = await control(emulator, 'PUT', 'quota', { rpm: 600, schedule });
    assert.equal(put.status, 200);
    assert.deepEqual({ ...put.json, current: undefined }, { rpm: 600, tpm: 0, perModel: {}, schedule, current: undefined });
    await sleep(400);
    const got = (await control(emulator, 'GET', 'quota')).json;
    assert.deepEqual({ ...got.current, elapsedMs: undefined }, { rpm: 6, tpm: 0, elapsedMs: undefined });
    assert.ok(got.current.elapsedMs >= 395, `elapsedMs ${got.current.elapsedMs}`);
    // At 6 rpm the capacity is one request.
    const calls = await burst(emulator, 3);
    assert.equal(calls.filter((r) => r.status === 200).length, 1);
    for (const r of calls.filter((r) => r.status === 429)) assert.equal(statedRpm(r.body), 6);

    const before = emulator.stats().quota;
    assert.deepEqual(before.steps, [
      { atMs: 0, rpm: 600, tpm: 0 },
      { atMs: 300, rpm: 6, tpm: 0 },
    ]);
    assert.equal(before.sharedShare, 0);
    assert.ok(before.elapsedMs >= 395 && Math.abs(before.startEpochMs + before.elapsedMs - Date.now()) < 100, JSON.stringify(before));
    assert.equal((await control(emulator, 'POST', 'reset')).status, 200);
    const afterReset = (await control(emulator, 'GET', 'stats')).json.quota;
    assert.ok(afterReset.startEpochMs >= before.startEpochMs + 395, 'reset starts the schedule again');
    assert.ok(afterReset.elapsedMs < before.elapsedMs);
    assert.deepEqual(afterReset.steps, before.steps);
  });
});

describe('quota variations: settings', () => {
  test('the defaults change nothing: GET shows only rpm, tpm and perModel; the stats a one-step timeline', async () => {
    const { emulator } = await start({ quota: { rpm: 6, statesLimit: true, detail: 'full', sharedShare: 0, schedule: [] } });
    assert.deepEqual((await control(emulator, 'GET', 'quota')).json, { rpm: 6, tpm: 0, perModel: {} });
    const quota = emulator.stats().quota;
    assert.deepEqual(
      { ...quota, startEpochMs: 0, elapsedMs: 0 },
      {
        startEpochMs: 0,
        elapsedMs: 0,
        steps: [{ atMs: 0, rpm: 6, tpm: 0 }],
        sharedShare: 0,
      },
    );
    const refused = (await refusedBody(emulator)).error;
    assert.deepEqual(
      refused.details.map((d: any) => d['@type']),
      ['type.googleapis.com/google.rpc.QuotaFailure', 'type.googleapis.com/google.rpc.Help', 'type.googleapis.com/google.rpc.RetryInfo'],
    );
    assert.deepEqual(refused.details[0].violations, [violation(REQUESTS_METRIC, MODEL, 6)]);
  });

  test('bad values are a 400 naming the field, and leave the setting as it was', async () => {
    const { emulator } = await start({ quota: { rpm: 6, sharedShare: 0.25 } });
    for (const [body, field] of [
      [{ statesLimit: 'no' }, 'quota.statesLimit'],
      [{ detail: 'some' }, 'quota.detail'],
      [{ sharedShare: 1 }, 'quota.sharedShare'],
      [{ sharedShare: -0.1 }, 'quota.sharedShare'],
      [{ schedule: { atMs: 1, rpm: 2 } }, 'quota.schedule'],
      [{ schedule: [{ rpm: 2 }] }, 'quota.schedule[0].atMs'],
      [{ schedule: [{ atMs: 10 }] }, 'quota.schedule[0]'],
      [
        {
          schedule: [
            { atMs: 10, rpm: 2 },
            { atMs: 10, rpm: 3 },
          ],
        },
        'quota.schedule[1].atMs',
      ],
      [{ schedule: [{ atMs: 10, rpm: -2 }] }, 'quota.schedule[0].rpm'],
      [{ schedule: [{ atMs: 10, rpm: 2, perModel: {} }] }, 'quota.schedule[0].perModel'],
      [{ perModel: { x: { sharedShare: 0.5 } } }, 'quota.perModel["x"].sharedShare'],
    ] as const) {
      const bad = await control(emulator, 'PUT', 'quota', body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.ok(bad.json.error.message.startsWith(`${field} `), `${bad.json.error.message} names ${field}`);
    }
    assert.deepEqual((await control(emulator, 'GET', 'quota')).json, { rpm: 6, tpm: 0, perModel: {}, sharedShare: 0.25 });
    await assert.rejects(startEmulator({ quiet: true, quota: { sharedShare: 2 } }), /quota\.sharedShare/);
  });

  test('from the environment: FERRY_EMULATOR_QUOTA_*; a bad value is a ConfigError naming the variable', async () => {
    const env = {
      FERRY_EMULATOR_RPM: '1200',
      FERRY_EMULATOR_QUOTA_STATES_LIMIT: '0',
      FERRY_EMULATOR_QUOTA_DETAIL: 'none',
      FERRY_EMULATOR_QUOTA_SHARED_SHARE: '0.4',
      FERRY_EMULATOR_QUOTA_SCHEDULE: '30000:600, 60000:2400:2000000',
    };
    const quota = {
      rpm: 1200,
      statesLimit: false,
      detail: 'none',
      sharedShare: 0.4,
      schedule: [
        { atMs: 30000, rpm: 600 },
        { atMs: 60000, rpm: 2400, tpm: 2000000 },
      ],
    };
    assert.deepEqual(emulatorOptionsFromEnv(env), { quota });
    assert.deepEqual(emulatorOptionsFromEnv({ FERRY_EMULATOR_QUOTA_STATES_LIMIT: '1', FERRY_EMULATOR_QUOTA_DETAIL: 'full' }), {
      quota: { statesLimit: true, detail: 'full' },
    });
    assert.deepEqual(emulatorOptionsFromEnv({ FERRY_EMULATOR_QUOTA_SCHEDULE: ' ', FERRY_EMULATOR_QUOTA_SHARED_SHARE: '' }), {});
    // The standalone emulator takes them as start options.
    const { emulator } = await start(emulatorOptionsFromEnv(env));
    assert.deepEqual(
      { ...(await control(emulator, 'GET', 'quota')).json, current: undefined },
      { tpm: 0, perModel: {}, ...quota, current: undefined },
    );

    for (const [name, value] of [
      ['FERRY_EMULATOR_QUOTA_STATES_LIMIT', 'no'],
      ['FERRY_EMULATOR_QUOTA_STATES_LIMIT', 'true'],
      ['FERRY_EMULATOR_QUOTA_DETAIL', 'partial'],
      ['FERRY_EMULATOR_QUOTA_SHARED_SHARE', '1'],
      ['FERRY_EMULATOR_QUOTA_SHARED_SHARE', '-0.2'],
      ['FERRY_EMULATOR_QUOTA_SHARED_SHARE', 'half'],
      ['FERRY_EMULATOR_QUOTA_SCHEDULE', '30000=600'],
      ['FERRY_EMULATOR_QUOTA_SCHEDULE', '30000:600,'],
      ['FERRY_EMULATOR_QUOTA_SCHEDULE', '30000:-600'],
      ['FERRY_EMULATOR_QUOTA_SCHEDULE', '30000:1.5'],
      ['FERRY_EMULATOR_QUOTA_SCHEDULE', '60000:600,30000:2400'],
      ['FERRY_EMULATOR_QUOTA_SCHEDULE', '99999999999999999999:600'],
    ] as const) {
      assert.throws(
        () => emulatorOptionsFromEnv({ [name]: value }),
        (err: unknown) => err instanceof Error && err.name === 'ConfigError' && err.message.startsWith(`${name}: `),
        `${name}=${value}`,
      );
    }
  });
});

function refusal(fn: () => void): RpcError {
  try {
    fn();
  } catch (err) {
    return err as RpcError;
  }
  assert.fail('expected a quota refusal');
}
