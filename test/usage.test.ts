/**
 * The usage ledger against what the emulator billed, token for token: through faults, through
 * workers SIGKILLed at the points between a call's record and its result, with Batch Mode answers
 * read again after a crash, and across many concurrent calls; and the usage and costs APIs that
 * read it (OpenAI's shape, each tenant its own, the admin key all).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { costOf, priceTable, PriceError } from '../src/core/prices.js';
import { loadConfig, ConfigError } from '../src/core/config.js';
import { KEYS, eventually, spawnFerry, startFerry, type Ferry } from './harness.js';
import { createBatch, idsOf, requests, results, waitFinal } from './batch-helpers.js';

interface Billed {
  requests: number;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
}
interface BillingLine extends Billed {
  model: string;
  tier: string;
  batch: boolean;
}

const billedOf = (b: Billed): Billed => ({
  requests: b.requests,
  inputTokens: b.inputTokens,
  cachedTokens: b.cachedTokens,
  outputTokens: b.outputTokens,
});

async function billing(ferry: Ferry): Promise<{ lines: BillingLine[]; totals: Billed }> {
  const b = (await (await fetch(`${ferry.emulator.url}/_emulator/billing`)).json()) as { lines: BillingLine[]; totals: Billed };
  return { lines: b.lines, totals: billedOf(b.totals) };
}

const admin = (ferry: Ferry, key: string) => new OpenAI({ baseURL: `${ferry.url}/v1`, adminAPIKey: key, maxRetries: 0 });

type UsageQuery = Parameters<OpenAI['admin']['organization']['usage']['completions']>[0];

/** Every result of every page of a usage report, as the Node SDK reads it. */
async function usageResults(ferry: Ferry, key: string, query: UsageQuery) {
  const out: any[] = [];
  let page: string | undefined;
  do {
    const res: any = await admin(ferry, key).admin.organization.usage.completions({ ...query, ...(page ? { page } : {}) });
    for (const b of res.data) out.push(...b.results.map((r: any) => ({ ...r, bucket: b.start_time })));
    page = res.has_more ? res.next_page : undefined;
  } while (page);
  return out;
}

const sum = (rs: any[]) => ({
  requests: rs.reduce((s, r) => s + r.num_model_requests, 0),
  inputTokens: rs.reduce((s, r) => s + r.input_tokens, 0),
  cachedTokens: rs.reduce((s, r) => s + r.input_cached_tokens, 0),
  outputTokens: rs.reduce((s, r) => s + r.output_tokens, 0),
});

const dayStart = () => Math.floor(Date.now() / 1000 / 86400) * 86400 - 86400;

const exited = (child: ChildProcess) =>
  new Promise<string | null>((resolve) =>
    child.exitCode !== null || child.signalCode ? resolve(child.signalCode) : child.once('exit', (_c, s) => resolve(s)),
  );

describe('usage ledger: a 1,000-line batch through faults and killed workers', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({
      workers: false,
      env: { FERRY_JOB_LOCK_MS: '2000', FERRY_BATCH_CONCURRENCY: '32', FERRY_BATCH_MAX_LINES: '2000' },
    });
  });
  after(() => ferry.close());

  test('the ledger equals the emulator’s billing token for token; every line answered once', { timeout: 150_000 }, async () => {
    const client = ferry.client();
    ferry.emulator.setFaults([
      { route: 'generate', kind: '503', probability: 0.08 },
      { route: 'generate', kind: '500', probability: 0.07 },
      { route: 'generate', kind: 'reset', probability: 0.05 },
    ]);
    const input = requests(1000, 'u');
    const created = await createBatch(client, input);
    // Killed after a call's usage is recorded and before its result is (the retry is billed and recorded again),
    // then after the result and before the line's count; the third worker finishes. The killed ones make one
    // call at a time: answers that arrived for other calls in flight at a kill are billed and never read (README).
    const oneCall = { FERRY_GENERATE_CONCURRENCY: '1', FERRY_BATCH_WORKER_SLOTS: '1' };
    for (const crashAt of ['generate.answered:150', 'generate.recorded:150']) {
      const w = spawnFerry('worker', { ...ferry.env, ...oneCall, FERRY_CRASH_AT: crashAt });
      assert.equal(await exited(w), 'SIGKILL', `the worker died at ${crashAt}`);
    }
    const last = spawnFerry('worker', ferry.env);
    try {
      const b = await waitFinal(client, created.id, 120);
      assert.equal(b.status, 'completed');
      const { out } = await results(client, b, idsOf(input));
      assert.equal(out.length, 1000, 'every line answered once');
    } finally {
      last.kill('SIGTERM');
      await exited(last);
      ferry.emulator.setFaults([]);
    }
    assert.ok(ferry.emulator.stats().faultsInjected.generate > 100, 'about a fifth of the calls failed upstream');
    const billed = await billing(ferry);
    // The call killed before its result was stored is made (and billed) again; the one killed after it is not.
    assert.equal(billed.totals.requests, 1001);
    const rows = await usageResults(ferry, KEYS.a, { start_time: dayStart(), bucket_width: '1h', group_by: ['batch'] });
    assert.deepEqual(sum(rows), billed.totals);
    assert.ok(rows.every((r) => r.batch === true));
    // The same totals in every bucket width, and in the batch's own.
    assert.deepEqual(sum(await usageResults(ferry, KEYS.a, { start_time: dayStart(), bucket_width: '1d' })), billed.totals);
    const now = Math.floor(Date.now() / 1000);
    assert.deepEqual(
      sum(await usageResults(ferry, KEYS.a, { start_time: now - 1800, end_time: now + 60, bucket_width: '1m', limit: 1440 })),
      billed.totals,
    );
    const ofBatch = await ferry.services.usage.ofBatch('tenant-a', created.id);
    assert.deepEqual(
      { requests: ofBatch.requests, inputTokens: ofBatch.input, cachedTokens: ofBatch.cached, outputTokens: ofBatch.output },
      billed.totals,
    );
  });
});

describe('usage ledger: live calls', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({ env: { FERRY_TENANT_MAX_RUNNING: '0' } });
  });
  after(() => ferry.close());

  test('300 concurrent async completions, streams and Flex responses: recorded once each, by tier', { timeout: 120_000 }, async () => {
    const client = ferry.client();
    const asyncCalls = Array.from({ length: 300 }, async (_, i) => {
      const res = await ferry.fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'respond-async' },
        body: JSON.stringify({
          model: 'gemini-2.5-flash',
          messages: [{ role: 'user', content: `question number ${i} ${'word '.repeat(i % 17)}` }],
        }),
      });
      assert.equal(res.status, 202);
      const { id } = (await res.json()) as { id: string };
      await eventually(
        async () => {
          const job = (await (await ferry.fetch(`/v1/jobs/${id}?wait=10`)).json()) as { status: string };
          assert.notEqual(job.status, 'failed');
          return job.status === 'succeeded';
        },
        60_000,
        `job ${id}`,
      );
    });
    const streams = Array.from({ length: 5 }, async (_, i) => {
      const stream = await client.chat.completions.create({
        model: 'gemini-2.5-flash',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: `stream ${i}` }],
      });
      for await (const _chunk of stream);
    });
    const flex = Array.from({ length: 4 }, (_, i) =>
      client.responses.create({ model: 'gemini-2.5-flash', input: `flex question ${i}`, service_tier: 'flex' }),
    );
    await Promise.all([...asyncCalls, ...streams, ...flex]);
    const billed = await billing(ferry);
    assert.equal(billed.totals.requests, 309);
    const rows = await usageResults(ferry, KEYS.a, { start_time: dayStart(), group_by: ['service_tier', 'model'] });
    assert.deepEqual(sum(rows), billed.totals);
    const flexRows = rows.filter((r) => r.service_tier === 'flex');
    const flexBilled = billed.lines.filter((l) => l.tier === 'flex');
    assert.equal(flexRows.length, 1);
    assert.deepEqual(
      sum(flexRows),
      sum(
        flexBilled.map((l) => ({
          num_model_requests: l.requests,
          input_tokens: l.inputTokens,
          input_cached_tokens: l.cachedTokens,
          output_tokens: l.outputTokens,
        })),
      ),
    );
    assert.equal(flexRows[0].num_model_requests, 4);
    assert.ok(rows.every((r) => r.model === 'gemini-2.5-flash' && r.batch === null));

    // Costs: Flex at half the standard price, line items summing to the total.
    const costs: any = await admin(ferry, KEYS.a).admin.organization.usage.costs({ start_time: dayStart(), group_by: ['line_item'] });
    const items = costs.data.flatMap((b: any) => b.results);
    const flexItems = items.filter((r: any) => /\(flex\)$/.test(r.line_item));
    assert.ok(flexItems.length >= 2, 'flex input and output are line items of their own');
    const total: any = await admin(ferry, KEYS.a).admin.organization.usage.costs({ start_time: dayStart() });
    const totalValue = total.data.flatMap((b: any) => b.results).reduce((s: number, r: any) => s + r.amount.value, 0);
    assert.ok(Math.abs(items.reduce((s: number, r: any) => s + r.amount.value, 0) - totalValue) < 1e-9);
    const expected = rows.reduce((s, r) => {
      const c = costOf(ferry.config.prices, 'gemini-2.5-flash', r.service_tier === 'flex' ? 'flex' : 'standard', {
        input: r.input_tokens,
        cached: r.input_cached_tokens,
        output: r.output_tokens,
      })!;
      return s + c.input + c.cached + c.output;
    }, 0);
    assert.ok(Math.abs(totalValue - expected) < 1e-6 * 309, `cost ${totalValue} ≈ ${expected}`);
  });

  test('each tenant sees its own usage; the admin key sees every tenant, named', async () => {
    const other = await usageResults(ferry, KEYS.b, { start_time: dayStart() });
    assert.deepEqual(other, []);
    const all = await usageResults(ferry, KEYS.admin, { start_time: dayStart(), group_by: ['project_id'] });
    assert.deepEqual([...new Set(all.map((r) => r.project_id))], ['tenant-a']);
    const narrowed = await usageResults(ferry, KEYS.admin, { start_time: dayStart(), project_ids: ['tenant-b'] });
    assert.deepEqual(narrowed, []);
  });

  test('pages of hour buckets follow next_page; a bad query is a 400 naming its parameter', async () => {
    const start = Math.floor(Date.now() / 1000 / 3600) * 3600 - 5 * 3600;
    const first: any = await admin(ferry, KEYS.a).admin.organization.usage.completions({ start_time: start, bucket_width: '1h', limit: 2 });
    assert.equal(first.object, 'page');
    assert.equal(first.data.length, 2);
    assert.equal(first.has_more, true);
    assert.deepEqual(
      first.data.map((b: any) => b.object),
      ['bucket', 'bucket'],
    );
    assert.equal(first.data[1].start_time - first.data[0].start_time, 3600);
    const all = await usageResults(ferry, KEYS.a, { start_time: start, bucket_width: '1h', limit: 2 });
    const whole = await usageResults(ferry, KEYS.a, { start_time: start, bucket_width: '1d' });
    assert.deepEqual(sum(all), sum(whole));
    for (const [query, param] of [
      [{ start_time: start, bucket_width: '2h' }, 'bucket_width'],
      [{ start_time: start, group_by: ['user_id'] }, 'group_by'],
      [{ start_time: start, bucket_width: '1h', limit: 500 }, 'limit'],
      [{ start_time: start, end_time: start - 10 }, 'end_time'],
    ] as const) {
      await assert.rejects(admin(ferry, KEYS.a).admin.organization.usage.completions(query as never), (e: any) => {
        assert.equal(e.status, 400);
        assert.equal(e.error.param, param);
        return true;
      });
    }
    const missing = await ferry.fetch('/v1/organization/usage/completions');
    assert.equal(missing.status, 400);
    assert.equal(((await missing.json()) as any).error.param, 'start_time');
    const costs1h = await ferry.fetch(`/v1/organization/costs?start_time=${start}&bucket_width=1h`);
    assert.equal(costs1h.status, 400);
  });
});

describe('usage ledger: embeddings', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry();
  });
  after(() => ferry.close());

  test('embeddings are counted apart (the tokens their answers report), and not in the completions report', async () => {
    const client = ferry.client();
    await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'one chat' }] });
    const e = await client.embeddings.create({ model: 'gemini-embedding-001', input: ['first text to embed', 'second one'] });
    const embeddings: any = await admin(ferry, KEYS.a).admin.organization.usage.embeddings({ start_time: dayStart(), group_by: ['model'] });
    const rows = embeddings.data.flatMap((b: any) => b.results);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].object, 'organization.usage.embeddings.result');
    assert.equal(rows[0].model, 'gemini-embedding-001');
    assert.equal(rows[0].input_tokens, e.usage.prompt_tokens);
    assert.equal(rows[0].num_model_requests, 1);
    const completions = await usageResults(ferry, KEYS.a, { start_time: dayStart(), group_by: ['model'] });
    assert.deepEqual(
      completions.map((r) => r.model),
      ['gemini-2.5-flash'],
    );
    const costs: any = await admin(ferry, KEYS.a).admin.organization.usage.costs({ start_time: dayStart(), group_by: ['line_item'] });
    assert.ok(costs.data.flatMap((b: any) => b.results).some((r: any) => r.line_item === 'gemini-embedding-001, input'));
  });
});

describe('usage ledger: Gemini Batch Mode answers read again after a crash', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({ workers: false, emulator: { batches: { pendingMs: 100, runningMs: 300 } } });
  });
  after(() => ferry.close());

  test('each line is counted once, at the batch tier', { timeout: 90_000 }, async () => {
    const client = ferry.client();
    const input = requests(60, 'gb');
    const created = await createBatch(client, input, '24h', undefined, 'gemini_batch');
    const first = spawnFerry('worker', { ...ferry.env, FERRY_CRASH_AT: 'gemini-batch.usage-recorded:25' });
    assert.equal(await exited(first), 'SIGKILL');
    const second = spawnFerry('worker', ferry.env);
    try {
      const b = await waitFinal(client, created.id, 60);
      assert.equal(b.status, 'completed');
    } finally {
      second.kill('SIGTERM');
      await exited(second);
    }
    const billed = await billing(ferry);
    assert.equal(billed.totals.requests, 60);
    assert.ok(billed.lines.every((l) => l.batch));
    const rows = await usageResults(ferry, KEYS.a, { start_time: dayStart(), group_by: ['service_tier', 'batch'] });
    assert.deepEqual(sum(rows), billed.totals);
    assert.deepEqual([...new Set(rows.map((r) => `${r.service_tier}/${r.batch}`))], ['batch/true']);
  });
});

describe('prices', () => {
  test('Batch, Flex and Priority multiply the standard price; cached input bills at its own rate; long prompts at the long rate', () => {
    const t = priceTable();
    const std = costOf(t, 'gemini-2.5-pro', 'standard', { input: 1_000_000, cached: 400_000, output: 100_000 })!;
    // Over 200k prompt tokens: every token at the long prices.
    assert.ok(Math.abs(std.input - 0.6 * 2.5) < 1e-9);
    assert.ok(Math.abs(std.cached - 0.4 * 0.25) < 1e-9);
    assert.ok(Math.abs(std.output - 0.1 * 15) < 1e-9);
    const short = costOf(t, 'gemini-2.5-pro', 'standard', { input: 100_000, cached: 40_000, output: 100_000 })!;
    assert.ok(
      Math.abs(short.input - 0.06 * 1.25) < 1e-9 &&
        Math.abs(short.cached - 0.04 * 0.125) < 1e-9 &&
        Math.abs(short.output - 0.1 * 10) < 1e-9,
    );
    const flex = costOf(t, 'gemini-2.5-pro', 'flex', { input: 1000, cached: 0, output: 0 })!;
    const batch = costOf(t, 'gemini-2.5-pro', 'batch', { input: 1000, cached: 0, output: 0 })!;
    const priority = costOf(t, 'gemini-2.5-pro', 'priority', { input: 1000, cached: 0, output: 0 })!;
    assert.ok(Math.abs(flex.input - 0.00125 / 2) < 1e-12 && Math.abs(batch.input - flex.input) < 1e-12);
    assert.ok(priority.input > 0.00125 * 1.7);
    assert.ok(
      costOf(t, 'gemini-2.5-flash-preview-09-2025', 'standard', { input: 1e6, cached: 0, output: 0 })!.input === 0.3,
      'a dated variant has its family’s price',
    );
    assert.equal(costOf(t, 'not-a-model', 'standard', { input: 1, cached: 0, output: 0 }), null);
  });

  test('a price file overrides models and multipliers; a wrong one names FERRY_PRICES_FILE and what to change', async () => {
    const t = priceTable({ models: { 'my-model': { input: 1, output: 2 } }, multipliers: { flex: 0.25 } });
    assert.equal(costOf(t, 'my-model', 'flex', { input: 1e6, cached: 0, output: 0 })!.input, 0.25);
    assert.equal(t.models.get('my-model')!.cachedInput, 0.1);
    assert.throws(() => priceTable({ models: { x: { input: -1, output: 1 } } }), PriceError);
    assert.throws(() => priceTable({ multipliers: { cheap: 0.1 } }), /unknown tier "cheap"/);
    assert.throws(() => priceTable({ model: {} }), /unknown key "model"/);
    assert.throws(
      () => loadConfig({ FERRY_PRICES_FILE: '/nonexistent/prices.json' }),
      (e: unknown) => e instanceof ConfigError && /FERRY_PRICES_FILE/.test(e.message),
    );
  });
});

describe('budgets', () => {
  let ferry: Ferry;
  const keyC = 'sk-test-tenant-c';
  // About ten calls of a short question to gemini-2.5-flash for tenant-a; about twenty for tenant-c.
  before(async () => {
    ferry = await startFerry({
      env: {
        FERRY_API_KEYS: `${KEYS.a}:tenant-a,${KEYS.b}:tenant-b,${keyC}:tenant-c`,
        FERRY_TENANT_BUDGETS: 'tenant-a:0.0002,tenant-c:0.0004',
        FERRY_BATCH_CONCURRENCY: '1',
      },
    });
  });
  after(() => ferry.close());

  const ask = (client: OpenAI, i: number) =>
    client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `a short question, number ${i}` }] });

  test(
    'a tenant over its budget gets 429 insufficient_quota naming the setting; the others are untouched',
    { timeout: 60_000 },
    async () => {
      const a = ferry.client();
      let answered = 0;
      let refusal: any = null;
      for (let i = 0; i < 40 && !refusal; i++) {
        try {
          await ask(a, i);
          answered++;
        } catch (e) {
          refusal = e;
        }
      }
      assert.ok(refusal, 'refused once the budget was spent');
      assert.ok(answered >= 5 && answered <= 15, `${answered} calls fit in the budget`);
      assert.equal(refusal.status, 429);
      assert.equal(refusal.error.type, 'insufficient_quota');
      assert.equal(refusal.error.code, 'insufficient_quota');
      assert.match(refusal.error.message, /FERRY_TENANT_BUDGETS/);
      await assert.rejects(createBatch(a, requests(2, 'late')), (e: any) => e.status === 429 && e.error.type === 'insufficient_quota');
      assert.ok((await ask(ferry.client(KEYS.b), 0)).choices[0].message.content);
    },
  );

  test('a batch that spends its tenant’s budget stops taking lines: the rest end budget_exceeded', { timeout: 60_000 }, async () => {
    const c = ferry.client(keyC);
    const input = requests(60, 'bud').map((l) => ({ ...l, body: { ...(l.body as object), model: 'gemini-2.5-flash' } }));
    const b = await waitFinal(c, (await createBatch(c, input)).id, 50);
    assert.equal(b.status, 'completed');
    const { out, err } = await results(c, b, idsOf(input));
    assert.equal(out.length + err.length, 60);
    assert.ok(out.length >= 5 && err.length >= 20, `${out.length} answered, ${err.length} refused`);
    assert.ok(err.every((l) => l.error.code === 'budget_exceeded'));
    const spent = await ferry.services.usage.monthCostUsd('tenant-c');
    assert.ok(spent >= 0.0004 && spent < 0.0004 + 0.0001, `spent ${spent}: one line past the budget at most`);
  });
});
