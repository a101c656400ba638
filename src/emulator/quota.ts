/**
 * Per-model quota of generate calls, requests and input tokens per minute, refused with the 429
 * Gemini answers (quota-refusal.ts: QuotaFailure + Help + RetryInfo, no Retry-After header).
 *
 * Why a token bucket per model and metric: Gemini states its limits per minute but checks them on
 * short windows, so a client that sends a minute's worth at once is refused beyond about a second's
 * worth. A bucket that refills at limit/60 per second and holds at most max(1, limit/60), one
 * second's worth but never less than one request, behaves that way with two numbers of state and
 * no timers, where a sliding-window log would keep a timestamp per admitted request.
 *
 * Two conditions of the real service change the buckets, still without timers:
 *   - another client of the same project (sharedShare) spends its share of every limit
 *     continuously: our buckets refill at (1 − share) of the rate, while the 429s state the whole
 *     limit, so a stated limit is more than a client can use;
 *   - a quota that moves (schedule): each step is applied lazily, at the first call after its
 *     time, but as of its time (the bucket refills at the old rate until then, at the new one after).
 */

import { quotaExceeded, type QuotaViolation } from './quota-refusal.js';
import { METRIC_NAMES, modelKey, validateQuota, type MetricName, type ResolvedQuota } from './quota-setting.js';
import type { StatsCollector } from './stats.js';
import type { QuotaLimits, QuotaSetting, QuotaStep, QuotaTimeline } from './types.js';

export { quotaExceeded } from './quota-refusal.js';
export { validateQuota } from './quota-setting.js';

const MS_PER_MINUTE = 60_000;

/** A bucket refilled lazily, on use, from the time elapsed since its last use. */
export class TokenBucket {
  /** One second's worth, at least 1 so that any rpm admits a request. */
  private capacity = 0;
  private perMs = 0;
  private limit = 0;
  private level: number;
  private updatedAt: number;

  /** `share`: the part of the limit another client spends, refilled for it and not for us. */
  constructor(
    limitPerMinute: number,
    now: number,
    private readonly share = 0,
  ) {
    this.resize(limitPerMinute);
    this.level = this.capacity;
    this.updatedAt = now;
  }

  /** The limit stated in a refusal: the whole of it, whatever share another client takes. */
  get limitPerMinute(): number {
    return this.limit;
  }

  /** Milliseconds until `cost` would be admitted: 0 = now, Infinity = never. */
  waitMs(cost: number, now: number): number {
    if (cost > this.limit) return Infinity;
    this.refill(now);
    // A cost above one second's worth (a long prompt) is admitted once the bucket is full and leaves
    // it in debt: later requests wait the debt off, so the average stays at the limit.
    const needed = Math.min(cost, this.capacity);
    return this.level >= needed ? 0 : (needed - this.level) / this.perMs;
  }

  take(cost: number, now: number): void {
    this.refill(now);
    this.level -= cost;
  }

  /** From `at` on, the new limit's rate and capacity; the level stays, capped at the new capacity. */
  setLimit(limitPerMinute: number, at: number): void {
    this.refill(at);
    this.resize(limitPerMinute);
    this.level = Math.min(this.level, this.capacity);
  }

  private resize(limitPerMinute: number): void {
    this.limit = limitPerMinute;
    this.capacity = Math.max(1, limitPerMinute / 60);
    this.perMs = (limitPerMinute * (1 - this.share)) / MS_PER_MINUTE;
  }

  private refill(now: number): void {
    if (now <= this.updatedAt) return;
    this.level = Math.min(this.capacity, this.level + (now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
  }
}

type ModelBuckets = Partial<Record<MetricName, TokenBucket>>;

/** GET /_emulator/quota: the setting (fields at their default left out) and, with a schedule, the limits in force. */
export interface QuotaView extends Required<QuotaLimits> {
  perModel: Record<string, QuotaLimits>;
  statesLimit?: false;
  detail?: 'none';
  sharedShare?: number;
  schedule?: QuotaStep[];
  /** The top-level limits in force now, `elapsedMs` after the schedule started. */
  current?: { elapsedMs: number; rpm: number; tpm: number };
}

export class QuotaEnforcer {
  private setting: ResolvedQuota;
  private buckets = new Map<string, ModelBuckets>();
  /** When the schedule's atMs 0 is, on this.now()'s clock and on the wall clock. */
  private startedAt = 0;
  private startEpochMs = 0;
  /** Steps of the schedule applied so far. */
  private stepsApplied = 0;
  /** The top-level limits in force: the setting's, then as each step left them. */
  private current: Record<MetricName, number> = { rpm: 0, tpm: 0 };

  constructor(
    setting: QuotaSetting | undefined,
    private readonly stats: StatsCollector,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.setting = validateQuota(setting ?? {});
    this.restart();
  }

  /** A new setting starts every model with a full bucket, as at the start of a fresh minute, and its schedule from now. */
  set(setting: QuotaSetting): void {
    this.setting = validateQuota(setting);
    this.restart();
  }

  /** Empties the windows (every bucket full again) and starts the schedule again; the setting stays. */
  clearUsage(): void {
    this.restart();
  }

  get(): QuotaView {
    const { rpm, tpm, perModel, statesLimit, detail, sharedShare, schedule } = this.setting;
    const view: QuotaView = { rpm, tpm, perModel: Object.fromEntries([...perModel].map(([m, limits]) => [m, { ...limits }])) };
    if (!statesLimit) view.statesLimit = false;
    if (detail !== 'full') view.detail = detail;
    if (sharedShare > 0) view.sharedShare = sharedShare;
    if (schedule.length) {
      const now = this.now();
      this.advance(now);
      view.schedule = schedule.map((step) => ({ ...step }));
      view.current = { elapsedMs: Math.round(now - this.startedAt), ...this.current };
    }
    return view;
  }

  /** The top-level limits over time, for the stats. */
  timeline(): QuotaTimeline {
    const { rpm, tpm, schedule, sharedShare } = this.setting;
    const steps = [{ atMs: 0, rpm, tpm }];
    for (const step of schedule) {
      const last = steps[steps.length - 1];
      const next = { atMs: step.atMs, rpm: step.rpm ?? last.rpm, tpm: step.tpm ?? last.tpm };
      // Only a first step at 0 shares its time with the start: it replaces it.
      if (step.atMs === last.atMs) steps[steps.length - 1] = next;
      else steps.push(next);
    }
    return { startEpochMs: this.startEpochMs, elapsedMs: Math.round(this.now() - this.startedAt), steps, sharedShare };
  }

  /**
   * Admits one generate call of `tokens` input tokens for `model`, or throws Gemini's quota 429.
   * Every limit is checked before any is charged: a refused call consumes nothing.
   */
  admit(model: string, tokens: number): void {
    const now = this.now();
    this.advance(now);
    const buckets = this.bucketsOf(modelKey(model));
    const costs: Record<MetricName, number> = { rpm: 1, tpm: tokens };
    const refused: QuotaViolation[] = [];
    let waitMs = 0;
    for (const name of METRIC_NAMES) {
      const bucket = buckets[name];
      const wait = bucket?.waitMs(costs[name], now) ?? 0;
      if (!bucket || wait <= 0) continue;
      refused.push({ name, limit: bucket.limitPerMinute });
      waitMs = Math.max(waitMs, wait);
    }
    if (refused.length) {
      this.stats.countQuotaRefusal(model);
      throw quotaExceeded(model, refused, waitMs, this.setting);
    }
    for (const name of METRIC_NAMES) buckets[name]?.take(costs[name], now);
  }

  private restart(): void {
    this.buckets.clear();
    this.startedAt = this.now();
    this.startEpochMs = Date.now();
    this.stepsApplied = 0;
    this.current = { rpm: this.setting.rpm, tpm: this.setting.tpm };
  }

  /** Applies, each as of its own time, the steps whose time has come. */
  private advance(now: number): void {
    const { schedule } = this.setting;
    while (this.stepsApplied < schedule.length && this.startedAt + schedule[this.stepsApplied].atMs <= now) {
      const step = schedule[this.stepsApplied];
      this.stepsApplied += 1;
      for (const name of METRIC_NAMES) this.current[name] = step[name] ?? this.current[name];
      this.resizeAll(this.startedAt + step.atMs);
    }
  }

  /** A limit become unlimited drops its bucket; one become limited starts full, as a fresh setting does. */
  private resizeAll(at: number): void {
    for (const [model, buckets] of this.buckets) {
      for (const name of METRIC_NAMES) {
        const limit = this.limitOf(model, name);
        const bucket = buckets[name];
        if (limit <= 0) delete buckets[name];
        else if (bucket) bucket.setLimit(limit, at);
        else buckets[name] = new TokenBucket(limit, at, this.setting.sharedShare);
      }
    }
  }

  private limitOf(model: string, name: MetricName): number {
    return this.setting.perModel.get(model)?.[name] ?? this.current[name];
  }

  private bucketsOf(model: string): ModelBuckets {
    let buckets = this.buckets.get(model);
    if (!buckets) {
      buckets = {};
      for (const name of METRIC_NAMES) {
        const limit = this.limitOf(model, name);
        if (limit > 0) buckets[name] = new TokenBucket(limit, this.now(), this.setting.sharedShare);
      }
      this.buckets.set(model, buckets);
    }
    return buckets;
  }
}
