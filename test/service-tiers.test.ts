/**
 * Service tiers: OpenAI's `service_tier` on chat completions and responses runs the call at
 * Gemini's Flex or Priority tier and is echoed; a Flex call Gemini sheds (503, or a 429 naming no
 * quota: both shapes) waits and tries again without spending attempts, then falls back to the
 * standard tier or fails, as FERRY_FLEX_FALLBACK says; a Flex batch runs every line at half price.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFerry, type Ferry } from './harness.js';
import { createBatch, idsOf, requests, results, waitFinal } from './batch-helpers.js';

const MODEL = 'gemini-2.5-flash';

async function billedByTier(ferry: Ferry): Promise<Record<string, number>> {
  const b = (await (await fetch(`${ferry.emulator.url}/_emulator/billing`)).json()) as { lines: Array<{ tier: string; requests: number }> };
  const out: Record<string, number> = {};
  for (const l of b.lines) out[l.tier] = (out[l.tier] ?? 0) + l.requests;
  return out;
}

const ask = (ferry: Ferry, service_tier: string, content = 'which tier?') =>
  ferry.client().chat.completions.create({ model: MODEL, service_tier: service_tier as never, messages: [{ role: 'user', content }] });

describe('service tiers, with a short Flex deadline falling back to standard', () => {
  let ferry: Ferry;
  before(async () => {
    // One attempt per job: a shed that spent one would fail the call.
    ferry = await startFerry({ env: { FERRY_FLEX_DEADLINE_SECONDS: '1', FERRY_FLEX_FALLBACK: 'standard', FERRY_UPSTREAM_ATTEMPTS: '1' } });
  });
  after(() => ferry.close());

  test('flex and priority run at those tiers and are echoed; auto is the standard tier; a bad tier is a 400', async () => {
    assert.equal((await ask(ferry, 'flex')).service_tier, 'flex');
    assert.equal((await ask(ferry, 'priority')).service_tier, 'priority');
    assert.equal((await ask(ferry, 'auto')).service_tier, 'default');
    const r = await ferry.client().responses.create({ model: MODEL, input: 'a flex response', service_tier: 'flex' });
    assert.equal(r.service_tier, 'flex');
    assert.deepEqual(await billedByTier(ferry), { flex: 2, priority: 1, standard: 1 });
    await assert.rejects(ask(ferry, 'cheapest'), (e: any) => e.status === 400 && e.error.param === 'service_tier');
  });

  for (const shedStatus of [503, 429] as const) {
    test(`a Flex call shed (${shedStatus}) past the deadline runs at the standard tier, spending no attempt`, async () => {
      const before = await billedByTier(ferry);
      ferry.emulator.setTiers({ flex: { shedProbability: 1, shedStatus } });
      try {
        const t0 = Date.now();
        const c = await ask(ferry, 'flex', `shed ${shedStatus}`);
        assert.equal(c.service_tier, 'default', 'answered at the standard tier');
        assert.ok(Date.now() - t0 >= 900, 'it waited for Flex capacity first');
      } finally {
        ferry.emulator.setTiers({ flex: { shedProbability: 0 } });
      }
      const after = await billedByTier(ferry);
      assert.equal(after.flex ?? 0, before.flex ?? 0, 'no Flex call was billed');
      assert.equal(after.standard, (before.standard ?? 0) + 1);
      const rows = await usageRows(ferry);
      assert.ok(rows.some((r) => r.service_tier === 'default'));
    });
  }
});

async function usageRows(ferry: Ferry): Promise<any[]> {
  const res = await ferry.fetch(
    `/v1/organization/usage/completions?start_time=${Math.floor(Date.now() / 1000) - 3600}&group_by=service_tier`,
  );
  return ((await res.json()) as any).data.flatMap((b: any) => b.results);
}

describe('service tiers, falling back to failure', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({ env: { FERRY_FLEX_DEADLINE_SECONDS: '1', FERRY_FLEX_FALLBACK: 'fail' } });
  });
  after(() => ferry.close());

  test('a Flex call shed past the deadline fails with flex_unavailable, naming the settings', async () => {
    ferry.emulator.setTiers({ flex: { shedProbability: 1 } });
    try {
      await assert.rejects(ask(ferry, 'flex'), (e: any) => {
        assert.equal(e.status, 503);
        assert.equal(e.error.code, 'flex_unavailable');
        assert.match(e.error.message, /FERRY_FLEX_DEADLINE_SECONDS/);
        assert.match(e.error.message, /FERRY_FLEX_FALLBACK=standard/);
        return true;
      });
    } finally {
      ferry.emulator.setTiers({ flex: { shedProbability: 0 } });
    }
  });
});

describe('a Flex batch', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry();
  });
  after(() => ferry.close());

  test('with 30% of calls shed: every line answered once, at half the standard cost in the ledger', { timeout: 90_000 }, async () => {
    const client = ferry.client();
    const input = requests(100, 'fx').map((l) => ({ ...l, body: { ...(l.body as object), model: MODEL } }));
    const standard = await waitFinal(client, (await createBatch(client, input)).id, 60);
    ferry.emulator.setTiers({ flex: { shedProbability: 0.3, shedStatus: 503 } });
    let flex;
    try {
      const created = await createBatch(client, input, '24h', undefined, 'flex' as never);
      assert.equal((created as any).execution, 'flex');
      flex = await waitFinal(client, created.id, 80);
    } finally {
      ferry.emulator.setTiers({ flex: { shedProbability: 0 } });
    }
    assert.equal(flex.status, 'completed');
    const { out } = await results(client, flex, idsOf(input));
    assert.equal(out.length, 100);
    assert.ok(out.every((l) => l.response.body.service_tier === 'flex'));
    assert.ok(ferry.emulator.stats().faultsInjected.generate === 0, 'sheds are the tier’s, not injected faults');
    const cost = async (id: string) => {
      const c = await ferry.services.usage.ofBatch('tenant-a', id);
      return { tokens: c.input + c.output, requests: c.requests, usd: c.cost_input + c.cost_cached + c.cost_output };
    };
    const [s, f] = [await cost(standard.id), await cost(flex.id)];
    assert.equal(f.requests, 100, 'shed calls are not billed');
    assert.equal(f.tokens, s.tokens);
    assert.ok(Math.abs(f.usd / s.usd - 0.5) < 0.01, `flex cost ${f.usd} vs standard ${s.usd}`);
    const byTier = await billedByTier(ferry);
    assert.equal(byTier.flex, 100);
  });
});
