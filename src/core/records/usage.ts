/**
 * The usage ledger: every Gemini call's tokens and cost, recorded once per call id, summed per
 * tenant by hour (kept about thirteen months) and by minute (kept two days), and per batch.
 * Memory is bounded by time and by the dimensions (model × tier × batch), never by the number of
 * calls: each call adds to counters, and only its id is kept, for two days, to refuse a second count.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { withScripts, type Scripted } from '../scripts/index.js';

/** What one call adds: tokens, requests, and cost in nano-USD (whole numbers, so Redis sums them exactly). */
export const USAGE_METRICS = [
  'input',
  'cached',
  'output',
  'thinking',
  'requests',
  'cost_input',
  'cost_cached',
  'cost_output',
  'cost_storage',
] as const;
export type UsageMetric = (typeof USAGE_METRICS)[number];
export type UsageCounts = Record<UsageMetric, number>;

/** The dimensions a call is counted under. */
export interface UsageDimensions {
  model: string;
  tier: string;
  /** The call served a line of a batch. */
  batch: boolean;
}

export interface UsageEntry extends UsageDimensions {
  /** Unique per upstream call: the same id is counted once. */
  callId: string;
  tenant: string;
  /** The batch the call served, for its own totals. */
  batchId: string | null;
  /** When the answer arrived (ms). */
  at: number;
  counts: UsageCounts;
}

/** Counts of one dimension set in one bucket (its start, in seconds). */
export interface UsageRow extends UsageDimensions {
  tenant: string;
  start: number;
  counts: UsageCounts;
}

const DAY = 86400;
const HOUR = 3600;
/** Hour-level totals: kept about thirteen months, so a year compares with the one before. */
export const USAGE_RETENTION_SECONDS = 400 * DAY;
/** Minute-level totals, for `bucket_width=1m`. */
const MINUTE_RETENTION_SECONDS = 2 * DAY;
/**
 * A call id refuses a second count for at least two days (a resent command, a batch's answers
 * read again): ids are kept by day, and a call is looked for in its day and the two before.
 */
const CALL_ID_SECONDS = 3 * DAY + HOUR;
const BATCH_RETENTION_SECONDS = 35 * DAY;

/** Nano-USD per USD: costs are counted in whole nano-USD. */
const NANO = 1e9;
export const usdOf = (nano: number) => nano / NANO;
export const costUsd = (c: UsageCounts) => usdOf(c.cost_input + c.cost_cached + c.cost_output + c.cost_storage);
export const nanoUsd = (usd: number) => Math.round(usd * NANO);

const monthOf = (ms: number) => new Date(ms).toISOString().slice(0, 7).replace('-', '');

export const zeroCounts = (): UsageCounts => Object.fromEntries(USAGE_METRICS.map((m) => [m, 0])) as UsageCounts;

export class UsageLedger {
  private readonly redis: Scripted;
  private readonly listed = new Set<string>();

  constructor(
    redis: Redis,
    private readonly keys: Keys,
  ) {
    this.redis = withScripts(redis);
  }

  /** Adds the call's counts; false if this call id was counted before. */
  async record(e: UsageEntry): Promise<boolean> {
    const sec = Math.floor(e.at / 1000);
    const dims = `${e.model}|${e.tier}|${e.batch ? 1 : 0}|`;
    const hourOfDay = Math.floor((sec % DAY) / HOUR);
    const minuteOfHour = Math.floor((sec % HOUR) / 60);
    const pairs = USAGE_METRICS.flatMap((m) => [m, Math.round(e.counts[m])]);
    const k = this.keys;
    // Known tenants first: a report that lists them then finds this call's counts once they land.
    // Once per tenant and process: the set is only ever added to (a memo of a write, not state).
    if (!this.listed.has(e.tenant)) {
      await this.redis.sadd(k.usageTenants(), e.tenant);
      this.listed.add(e.tenant);
    }
    const day = Math.floor(sec / DAY);
    const recorded = await this.redis.ferryRecordUsage(
      k.usageCalls(e.tenant, day),
      k.usageDay(e.tenant, day),
      k.usageHour(e.tenant, Math.floor(sec / HOUR)),
      k.usageBatch(e.tenant, e.batchId ?? '-'),
      k.usageMonth(e.tenant, monthOf(e.at)),
      k.usageCalls(e.tenant, day - 1),
      k.usageCalls(e.tenant, day - 2),
      e.callId,
      CALL_ID_SECONDS,
      USAGE_RETENTION_SECONDS,
      MINUTE_RETENTION_SECONDS,
      BATCH_RETENTION_SECONDS,
      `${hourOfDay}|${dims}`,
      `${minuteOfHour}|${dims}`,
      e.batchId ? '1' : '0',
      ...pairs,
    );
    return recorded === 1;
  }

  /** The tenant's spend in the calendar month (UTC) holding `at`, in USD. */
  async monthCostUsd(tenant: string, at = Date.now()): Promise<number> {
    return Number((await this.redis.get(this.keys.usageMonth(tenant, monthOf(at)))) ?? 0) / NANO;
  }

  async tenants(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.usageTenants())).sort();
  }

  /** A batch's totals so far (zeros before its first answer). */
  async ofBatch(tenant: string, batchId: string): Promise<UsageCounts> {
    const h = await this.redis.hgetall(this.keys.usageBatch(tenant, batchId));
    const counts = zeroCounts();
    for (const m of USAGE_METRICS) counts[m] = Number(h[m] ?? 0);
    return counts;
  }

  /**
   * The tenants' counts in [from, to) (seconds), in hour buckets (`unit` 'hour') or minute buckets
   * (the last two days only).
   */
  async rows(tenants: string[], unit: 'hour' | 'minute', from: number, to: number): Promise<UsageRow[]> {
    const span = unit === 'hour' ? DAY : HOUR;
    const step = unit === 'hour' ? HOUR : 60;
    const reads: Array<{ tenant: string; base: number }> = [];
    for (const tenant of tenants) {
      for (let n = Math.floor(from / span); n * span < to; n++) reads.push({ tenant, base: n * span });
    }
    const pipe = this.redis.pipeline();
    for (const r of reads)
      pipe.hgetall(unit === 'hour' ? this.keys.usageDay(r.tenant, r.base / DAY) : this.keys.usageHour(r.tenant, r.base / HOUR));
    const results = (await pipe.exec()) ?? [];
    const rows = new Map<string, UsageRow>();
    results.forEach(([err, hash], i) => {
      if (err) throw err;
      const { tenant, base } = reads[i];
      for (const [field, value] of Object.entries(hash as Record<string, string>)) {
        const [slot, model, tier, batch, metric] = field.split('|');
        const start = base + Number(slot) * step;
        if (start < from || start >= to || !(USAGE_METRICS as readonly string[]).includes(metric)) continue;
        const key = `${tenant}|${start}|${model}|${tier}|${batch}`;
        let row = rows.get(key);
        if (!row) rows.set(key, (row = { tenant, start, model, tier, batch: batch === '1', counts: zeroCounts() }));
        row.counts[metric as UsageMetric] += Number(value);
      }
    });
    return [...rows.values()];
  }
}
