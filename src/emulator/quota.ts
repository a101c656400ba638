/**
 * Per-model quota of generate calls, requests and input tokens per minute, refused with the 429
 * Gemini answers (QuotaFailure + Help + RetryInfo, no Retry-After header).
 *
 * Why a token bucket per model and metric: Gemini states its limits per minute but checks them on
 * short windows, so a client that sends a minute's worth at once is refused beyond about a second's
 * worth. A bucket that refills at limit/60 per second and holds at most max(1, limit/60), one
 * second's worth but never less than one request, behaves that way with two numbers of state and
 * no timers, where a sliding-window log would keep a timestamp per admitted request.
 */

import { RpcError } from './errors.js';
import type { StatsCollector } from './stats.js';
import type { QuotaLimits, QuotaSetting } from './types.js';

const MS_PER_MINUTE = 60_000;
const RATE_LIMITS_URL = 'https://ai.google.dev/gemini-api/docs/rate-limits';
/**
 * A request with more tokens than the per-minute limit never fits; Gemini still refuses it with a
 * retry delay (and refuses it again after), so this stands for "not within this minute".
 */
const NEVER_FITS_RETRY_SECONDS = 60;

/** The metrics as the paid tier names them in QuotaFailure violations. */
const METRICS = {
  rpm: {
    quotaMetric: 'generativelanguage.googleapis.com/generate_content_paid_tier_requests',
    quotaId: 'GenerateRequestsPerMinutePerProjectPerModel',
  },
  tpm: {
    quotaMetric: 'generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count',
    quotaId: 'GenerateContentInputTokensPerModelPerMinute',
  },
} as const;

type MetricName = keyof typeof METRICS;
const METRIC_NAMES = Object.keys(METRICS) as MetricName[];

/** A bucket refilled lazily, on use, from the time elapsed since its last use. */
export class TokenBucket {
  /** One second's worth, at least 1 so that any rpm admits a request. */
  readonly capacity: number;
  private readonly perMs: number;
  private level: number;
  private updatedAt: number;

  constructor(
    readonly limitPerMinute: number,
    now: number,
  ) {
    this.capacity = Math.max(1, limitPerMinute / 60);
    this.perMs = limitPerMinute / MS_PER_MINUTE;
    this.level = this.capacity;
    this.updatedAt = now;
  }

  /** Milliseconds until `cost` would be admitted: 0 = now, Infinity = never. */
  waitMs(cost: number, now: number): number {
    if (cost > this.limitPerMinute) return Infinity;
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

  private refill(now: number): void {
    this.level = Math.min(this.capacity, this.level + (now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
  }
}

interface ResolvedQuota {
  rpm: number;
  tpm: number;
  /** A Map: model names come from callers and must not reach an object's prototype. */
  perModel: Map<string, QuotaLimits>;
}

type ModelBuckets = Partial<Record<MetricName, TokenBucket>>;

const modelKey = (model: string) => model.replace(/^models\//, '');

export class QuotaEnforcer {
  private setting: ResolvedQuota;
  private buckets = new Map<string, ModelBuckets>();

  constructor(
    setting: QuotaSetting | undefined,
    private readonly stats: StatsCollector,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.setting = validateQuota(setting ?? {});
  }

  /** A new setting starts every model with a full bucket, as at the start of a fresh minute. */
  set(setting: QuotaSetting): void {
    this.setting = validateQuota(setting);
    this.buckets.clear();
  }

  get(): Required<QuotaSetting> {
    const { rpm, tpm, perModel } = this.setting;
    return { rpm, tpm, perModel: Object.fromEntries([...perModel].map(([m, limits]) => [m, { ...limits }])) };
  }

  /** Empties the windows (every bucket full again); the setting stays. */
  clearUsage(): void {
    this.buckets.clear();
  }

  /**
   * Admits one generate call of `tokens` input tokens for `model`, or throws Gemini's quota 429.
   * Every limit is checked before any is charged: a refused call consumes nothing.
   */
  admit(model: string, tokens: number): void {
    const buckets = this.bucketsOf(modelKey(model));
    const costs: Record<MetricName, number> = { rpm: 1, tpm: tokens };
    const now = this.now();
    const refused: MetricName[] = [];
    let waitMs = 0;
    for (const name of METRIC_NAMES) {
      const wait = buckets[name]?.waitMs(costs[name], now) ?? 0;
      if (wait <= 0) continue;
      refused.push(name);
      waitMs = Math.max(waitMs, wait);
    }
    if (refused.length) {
      this.stats.countQuotaRefusal(model);
      throw quotaExceeded(
        model,
        refused.map((name) => ({ name, limit: (buckets[name] as TokenBucket).limitPerMinute })),
        waitMs,
      );
    }
    for (const name of METRIC_NAMES) buckets[name]?.take(costs[name], now);
  }

  private bucketsOf(model: string): ModelBuckets {
    let buckets = this.buckets.get(model);
    if (!buckets) {
      const own = this.setting.perModel.get(model);
      buckets = {};
      for (const name of METRIC_NAMES) {
        const limit = own?.[name] ?? this.setting[name];
        if (limit > 0) buckets[name] = new TokenBucket(limit, this.now());
      }
      this.buckets.set(model, buckets);
    }
    return buckets;
  }
}

/** Gemini's quota 429, worded as in its answers; retryDelay in whole seconds, at least 1. */
export function quotaExceeded(model: string, violations: { name: MetricName; limit: number }[], waitMs: number): RpcError {
  const seconds = Number.isFinite(waitMs) ? waitMs / 1000 : NEVER_FITS_RETRY_SECONDS;
  const lines = violations.map(
    ({ name, limit }) => `* Quota exceeded for metric: ${METRICS[name].quotaMetric}, limit: ${limit}, model: ${model}`,
  );
  const message =
    'You exceeded your current quota, please check your plan and billing details. ' +
    `For more information on this error, head to: ${RATE_LIMITS_URL}. To monitor your current usage, head to: https://ai.dev/rate-limit. \n` +
    `${lines.join('\n')}\nPlease retry in ${Number(seconds.toFixed(3))}s.`;
  return new RpcError(429, message, {
    status: 'RESOURCE_EXHAUSTED',
    details: [
      {
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: violations.map(({ name, limit }) => ({
          ...METRICS[name],
          quotaDimensions: { location: 'global', model },
          quotaValue: String(limit),
        })),
      },
      {
        '@type': 'type.googleapis.com/google.rpc.Help',
        links: [{ description: 'Learn more about Gemini API quotas', url: RATE_LIMITS_URL }],
      },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${Math.max(1, Math.ceil(seconds))}s` },
    ],
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a quota setting given by a caller (possibly over HTTP); throws a 400 RpcError naming the field. */
export function validateQuota(input: unknown): ResolvedQuota {
  if (!isObject(input)) throw new RpcError(400, 'quota must be a JSON object like {"rpm":1000,"tpm":1000000,"perModel":{}}.');
  const top = checkLimits(input, 'quota', ['perModel']);
  const perModel = new Map<string, QuotaLimits>();
  if (input.perModel !== undefined) {
    if (!isObject(input.perModel)) throw new RpcError(400, 'quota.perModel must be an object keyed by model name.');
    for (const [model, limits] of Object.entries(input.perModel)) {
      const where = `quota.perModel[${JSON.stringify(model)}]`;
      if (!isObject(limits)) throw new RpcError(400, `${where} must be an object like {"rpm":1000,"tpm":1000000}.`);
      perModel.set(modelKey(model), checkLimits(limits, where, []));
    }
  }
  return { rpm: top.rpm ?? 0, tpm: top.tpm ?? 0, perModel };
}

function checkLimits(raw: Record<string, unknown>, where: string, otherKeys: string[]): QuotaLimits {
  const known = [...METRIC_NAMES, ...otherKeys];
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) throw new RpcError(400, `${where}.${key} is not a quota field (${known.join(', ')}).`);
  }
  const out: QuotaLimits = {};
  for (const name of METRIC_NAMES) {
    const value = raw[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new RpcError(400, `${where}.${name} must be a non-negative integer (0 = unlimited).`);
    }
    out[name] = value;
  }
  return out;
}
