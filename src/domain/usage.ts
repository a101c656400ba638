/**
 * The usage ledger's rules: what one Gemini answer counts (its usageMetadata), what it costs at the
 * configured prices, and the reports read from it (buckets by time, grouped as OpenAI's usage and
 * costs APIs group them). Every call is recorded under an id of its own, once.
 */
import { randomUUID } from 'node:crypto';
import { InsufficientQuotaError } from '../core/errors.js';
import { usageCost, usageTokens } from '../core/metrics.js';
import { costOf, type BilledTier } from '../core/prices.js';
import { costUsd, nanoUsd, usdOf, zeroCounts, USAGE_METRICS, type UsageCounts, type UsageRow } from '../core/records/usage.js';
import { WIDTH_SECONDS, type BucketWidth, type Grouping, type ReportBucket, type ReportGroup } from '../openai/usage.js';
import type { Services } from '../core/services.js';

/** Gemini's usageMetadata, as much of it as the ledger reads. */
export interface GeminiUsage {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
  toolUsePromptTokenCount?: number;
}

export interface ServedCall {
  tenant: string;
  model: string;
  tier: BilledTier;
  /** The batch whose line the call answered. */
  batchId: string | null;
  /**
   * Names the call for its one count: absent for a live call (each is new), the line's own name
   * for an answer read from a Gemini batch's results (read again after a crash, it counts once).
   */
  callId?: string;
}

/** Models without a price, told once per process (their calls count tokens at no cost). */
const unpriced = new Set<string>();

/** The ledger's counts of one answer: input includes the cached part and tool prompts; output includes thoughts. */
export function countsOf(services: Services, call: ServedCall, u: GeminiUsage): UsageCounts {
  const input = (u.promptTokenCount ?? 0) + (u.toolUsePromptTokenCount ?? 0);
  const cached = u.cachedContentTokenCount ?? 0;
  const thinking = u.thoughtsTokenCount ?? 0;
  const output = (u.candidatesTokenCount ?? 0) + thinking;
  const cost = costOf(services.config.prices, call.model, call.tier, { input, cached, output });
  if (!cost && !unpriced.has(call.model)) {
    unpriced.add(call.model);
    services.logger.warn({ model: call.model }, 'no price for this model: its calls are counted at no cost (add it to FERRY_PRICES_FILE)');
  }
  return {
    input,
    cached,
    output,
    thinking,
    requests: 1,
    cost_input: nanoUsd(cost?.input ?? 0),
    cost_cached: nanoUsd(cost?.cached ?? 0),
    cost_output: nanoUsd(cost?.output ?? 0),
    cost_storage: 0,
  };
}

/**
 * Records the usage of one answered call (none when Gemini sent no usage). Best effort for the
 * caller's work: a ledger write that fails is logged, never a reason to fail the answer Gemini gave.
 */
export async function recordUsage(services: Services, call: ServedCall, usage: GeminiUsage | null | undefined): Promise<void> {
  if (usage) await recordCounts(services, call, countsOf(services, call, usage));
}

/** Records counts under the call's id (a fresh one if it has none), and in the metrics once recorded. */
export async function recordCounts(services: Services, call: ServedCall, counts: UsageCounts): Promise<void> {
  try {
    const recorded = await services.usage.record({
      callId: call.callId ?? randomUUID(),
      tenant: call.tenant,
      model: call.model,
      tier: call.tier,
      batch: call.batchId !== null,
      batchId: call.batchId,
      at: Date.now(),
      counts,
    });
    if (recorded) countInMetrics(call, counts);
  } catch (err) {
    services.logger.error({ err, tenant: call.tenant, model: call.model }, 'could not record a call in the usage ledger');
  }
}

function countInMetrics(call: ServedCall, c: UsageCounts) {
  const labels = { tenant: call.tenant, model: call.model, tier: call.tier };
  usageTokens.inc({ ...labels, kind: 'input' }, c.input);
  usageTokens.inc({ ...labels, kind: 'cached' }, c.cached);
  usageTokens.inc({ ...labels, kind: 'output' }, c.output);
  usageCost.inc(labels, costUsd(c));
}

/**
 * The refusal of new work for a tenant whose spend this month (UTC) has reached its budget
 * (FERRY_TENANT_BUDGETS), or null. Work already accepted runs on, except batch lines not yet started.
 */
export async function overBudget(services: Services, tenant: string, code = 'insufficient_quota'): Promise<InsufficientQuotaError | null> {
  const budget = services.config.tenantBudgets.get(tenant);
  if (budget === undefined) return null;
  const spent = await services.usage.monthCostUsd(tenant);
  if (spent < budget) return null;
  return new InsufficientQuotaError(
    `This month's spend ($${spent.toFixed(6)}) has reached the budget of $${budget} set for tenant "${tenant}" in FERRY_TENANT_BUDGETS: new work is refused until the month ends or the budget is raised.`,
    { code },
  );
}

// ---- reports ----

export interface ReportQuery {
  tenants: string[];
  /** Seconds; buckets start at multiples of the width (UTC). */
  start: number;
  end: number;
  width: BucketWidth;
  groupBy: Grouping[];
  models: string[] | null;
  batch: boolean | null;
  /** Buckets per page. */
  limit: number;
  /** The first bucket's start (a page's cursor), else the bucket holding `start`. */
  page: number | null;
  /** Only the calls of generation models, or only of embedding models; null: both (costs). */
  family: 'completions' | 'embeddings' | null;
}

/** The buckets of one page, each with its groups, and the next page's cursor. */
export async function usageReport(services: Services, q: ReportQuery): Promise<{ buckets: ReportBucket[]; next: number | null }> {
  const w = WIDTH_SECONDS[q.width];
  const first = q.page ?? Math.floor(q.start / w) * w;
  const stop = Math.min(q.end, first + q.limit * w);
  const rows = await services.usage.rows(q.tenants, q.width === '1m' ? 'minute' : 'hour', Math.max(first, q.start), stop);
  const buckets: ReportBucket[] = [];
  for (let s = first; s < stop; s += w) buckets.push({ start: s, end: s + w, groups: [] });
  const groups = new Map<string, ReportGroup>();
  for (const row of rows.filter((r) => matches(q, r))) {
    const b = Math.floor((row.start - first) / w);
    const g = groupOf(q.groupBy, row);
    const key = `${b}|${g.tenant}|${g.model}|${g.tier}|${g.batch}`;
    let group = groups.get(key);
    if (!group) {
      groups.set(key, (group = { ...g, counts: zeroCounts(), usd: { input: 0, cached: 0, output: 0, storage: 0 } }));
      buckets[b].groups.push(group);
    }
    for (const m of USAGE_METRICS) group.counts[m] += row.counts[m];
  }
  for (const g of groups.values()) {
    const c = g.counts;
    g.usd = { input: usdOf(c.cost_input), cached: usdOf(c.cost_cached), output: usdOf(c.cost_output), storage: usdOf(c.cost_storage) };
  }
  return { buckets, next: stop < q.end ? stop : null };
}

/** Gemini's embedding models say so in their names (gemini-embedding-001, text-embedding-004). */
const isEmbeddingModel = (model: string) => /embedding/i.test(model);

const matches = (q: ReportQuery, r: UsageRow) =>
  (q.models === null || q.models.includes(r.model)) &&
  (q.batch === null || q.batch === r.batch) &&
  (q.family === null || (q.family === 'embeddings') === isEmbeddingModel(r.model));

function groupOf(by: Grouping[], r: UsageRow): Omit<ReportGroup, 'counts' | 'usd'> {
  return {
    tenant: by.includes('project_id') ? r.tenant : null,
    model: by.includes('model') || by.includes('line_item') ? r.model : null,
    tier: by.includes('service_tier') || by.includes('line_item') ? r.tier : null,
    batch: by.includes('batch') ? r.batch : null,
  };
}
