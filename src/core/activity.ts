/**
 * The last hour's activity (the console's overview, `GET /v1/activity`): counts in 10-second
 * buckets, shared by every process through Redis, one hash per minute that expires after two hours.
 *
 * A count is added to this process's buffer and written every 2 s in one pipeline, so a busy path
 * (each batch line, each uploaded chunk) costs a map update rather than a round trip. These are
 * figures to look at, not records: a crash loses at most the last 2 s of a process's counts, and a
 * job announced twice after a crash counts twice. Prometheus (`/metrics`) keeps the exact
 * per-process counters. Gauges (queue depths, the admitted rate) are sampled by one worker at a time.
 * A minute 30 s past its end no longer changes, so a process reading the hour keeps those it has
 * read (a copy of what Redis holds, never the only one) and reads only the last minutes again.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

export const ACTIVITY_BUCKET_SECONDS = 10;
const KEEP_SECONDS = 2 * 3600;
const FLUSH_MS = 2000;
/** A minute this long past its end has every process's counts (each writes every 2 s): it no longer changes. */
const SETTLED_SECONDS = 30;

/** Counted per tenant: what each tenant's work did. */
export const TENANT_SERIES = ['completions', 'lines', 'upload_bytes'] as const;
/** Counted per model: the calls to Gemini, shared by every tenant. */
export const MODEL_SERIES = ['calls', 'quota_refusals', 'retries', 'admitted_rate'] as const;
/** Sampled per queue: work waiting and work running. */
export const QUEUE_SERIES = ['queued', 'running'] as const;

export type TenantSeries = (typeof TENANT_SERIES)[number];
export type ModelSeries = (typeof MODEL_SERIES)[number];
export type QueueSeries = (typeof QUEUE_SERIES)[number];
export type SeriesName = TenantSeries | ModelSeries | QueueSeries;

export interface ActivityPoint {
  /** The bucket's start (Unix seconds, a multiple of ACTIVITY_BUCKET_SECONDS). */
  t: number;
  series: SeriesName;
  /** The tenant, model or queue it is of. */
  subject: string;
  value: number;
}

const bucketOf = (ms: number) => Math.floor(ms / 1000 / ACTIVITY_BUCKET_SECONDS) * ACTIVITY_BUCKET_SECONDS;
const minuteOf = (t: number) => Math.floor(t / 60);
// Subjects are tenant names, model ids and queue names: none holds a "|".
const fieldOf = (t: number, series: SeriesName, subject: string) => `${t}|${series}|${subject}`;

export class ActivityLog {
  /** Counts not yet written, by minute and field. */
  private pending = new Map<number, Map<string, number>>();
  /** Minutes no process writes to any more, as read (two hours of them at most). */
  private readonly settled = new Map<number, ActivityPoint[]>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  /** Closed, it writes what it holds once and takes no more counts (work that ends during a shutdown is not counted). */
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  /** Adds `n` to a series of a tenant or a model in the current bucket. */
  count(series: TenantSeries | Exclude<ModelSeries, 'admitted_rate'>, subject: string, n = 1): void {
    if (!(n > 0) || this.closed) return;
    const t = bucketOf(this.now());
    const field = fieldOf(t, series, subject);
    const minute = this.pending.get(minuteOf(t)) ?? new Map<string, number>();
    minute.set(field, (minute.get(field) ?? 0) + n);
    this.pending.set(minuteOf(t), minute);
  }

  /** Sets sampled values (queue depths, admitted rates) in the current bucket, written at once. */
  async sample(values: Array<{ series: QueueSeries | 'admitted_rate'; subject: string; value: number }>): Promise<void> {
    if (!values.length) return;
    const t = bucketOf(this.now());
    const key = this.keys.activity(minuteOf(t));
    const args = values.flatMap((v) => [fieldOf(t, v.series, v.subject), String(v.value)]);
    await this.redis
      .multi()
      .hset(key, ...args)
      .expire(key, KEEP_SECONDS)
      .exec();
  }

  /** Writes the buffered counts (every 2 s, and on close). A write that fails is given up: these are figures, not records. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    // One pipeline per minute's hash: on a cluster a pipeline's keys must share a slot.
    await Promise.all(
      [...batch].map(([minute, fields]) => {
        const key = this.keys.activity(minute);
        const pipe = this.redis.pipeline();
        for (const [field, n] of fields) pipe.hincrbyfloat(key, field, n);
        return pipe
          .expire(key, KEEP_SECONDS)
          .exec()
          .catch(() => undefined);
      }),
    );
  }

  /** Every point in [from, to) (Unix seconds), of every series. */
  async read(from: number, to: number): Promise<ActivityPoint[]> {
    const settledBefore = minuteOf(this.now() / 1000 - SETTLED_SECONDS);
    for (const m of this.settled.keys()) if (m < minuteOf(this.now() / 1000 - KEEP_SECONDS)) this.settled.delete(m);
    const minutes: number[] = [];
    for (let m = minuteOf(from); m <= minuteOf(to - 1); m++) minutes.push(m);
    const perMinute = await Promise.all(minutes.map((m) => this.minute(m, m < settledBefore)));
    return perMinute.flat().filter((p) => p.t >= from && p.t < to);
  }

  /** A minute's points: read from Redis, or, once settled, as first read here (a long-poll reads the hour every second). */
  private async minute(m: number, settled: boolean): Promise<ActivityPoint[]> {
    const kept = settled ? this.settled.get(m) : undefined;
    if (kept) return kept;
    const points = Object.entries(await this.redis.hgetall(this.keys.activity(m))).map(([field, value]) => {
      const [t, series, subject] = field.split('|');
      return { t: Number(t), series: series as SeriesName, subject, value: Number(value) };
    });
    if (settled) this.settled.set(m, points);
    return points;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
  }
}
