/**
 * The activity report (`GET /v1/activity`): the last hour's series, aligned on 10-second buckets.
 * A caller sees the per-tenant series of the tenants it may list, and every shared series (Gemini
 * calls against the admitted rate per model, queue depths): they name no tenant and say whether the
 * quota or Ferry is the limit.
 */
import {
  ACTIVITY_BUCKET_SECONDS,
  MODEL_SERIES,
  QUEUE_SERIES,
  TENANT_SERIES,
  type ActivityPoint,
  type SeriesName,
} from '../core/activity.js';
import type { Services } from '../core/services.js';

/** How far back the report reaches (the counts are kept two hours). */
export const ACTIVITY_MAX_SECONDS = 2 * 3600;

type Subject = { tenant: string } | { model: string } | { queue: string };
export type ActivitySeries = { name: SeriesName; values: Array<number | null> } & Subject;

export interface ActivityReport {
  object: 'activity';
  bucket_width_seconds: number;
  start_time: number;
  end_time: number;
  /** Each bucket's start (Unix seconds); every series has one value per bucket. */
  buckets: number[];
  series: ActivitySeries[];
}

const isTenantSeries = (s: SeriesName) => (TENANT_SERIES as readonly string[]).includes(s);
const isModelSeries = (s: SeriesName) => (MODEL_SERIES as readonly string[]).includes(s);
const isQueueSeries = (s: SeriesName) => (QUEUE_SERIES as readonly string[]).includes(s);
/** Sampled series have no value where no sample was taken; counted ones count 0. */
const isSampled = (s: SeriesName) => isQueueSeries(s) || s === 'admitted_rate';

function subjectOf(p: ActivityPoint): Subject {
  if (isTenantSeries(p.series)) return { tenant: p.subject };
  if (isModelSeries(p.series)) return { model: p.subject };
  return { queue: p.subject };
}

export async function activityReport(services: Services, q: { tenants: string[]; seconds: number; now: number }): Promise<ActivityReport> {
  const width = ACTIVITY_BUCKET_SECONDS;
  // The bucket under way is included: a chart's last point moves as it fills.
  const end = Math.floor(q.now / width) * width + width;
  const start = end - Math.ceil(Math.min(q.seconds, ACTIVITY_MAX_SECONDS) / width) * width;
  const buckets = Array.from({ length: (end - start) / width }, (_, i) => start + i * width);
  const points = await services.activity.read(start, end);
  const series = new Map<string, ActivitySeries>();
  for (const p of points) {
    if (isTenantSeries(p.series) && !q.tenants.includes(p.subject)) continue;
    if (!isTenantSeries(p.series) && !isModelSeries(p.series) && !isQueueSeries(p.series)) continue;
    const id = `${p.series}|${p.subject}`;
    let s = series.get(id);
    if (!s) {
      s = { name: p.series, ...subjectOf(p), values: buckets.map(() => (isSampled(p.series) ? null : 0)) };
      series.set(id, s);
    }
    s.values[(p.t - start) / width] = p.value;
  }
  const ordered = [...series.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, s]) => s);
  return { object: 'activity', bucket_width_seconds: width, start_time: start, end_time: end, buckets, series: ordered };
}
