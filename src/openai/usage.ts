/**
 * The usage and costs APIs' wire contract (OpenAI's organization usage API): the query a report
 * takes, and its buckets. In Ferry a tenant is the "project"; the billed tier is the `service_tier`
 * (`default` for Gemini's standard tier, `flex`, `priority`, `batch` for Gemini Batch Mode).
 */
import { BadRequestError } from '../core/errors.js';
import type { UsageCounts } from '../core/records/usage.js';

export type BucketWidth = '1m' | '1h' | '1d';
export const WIDTH_SECONDS: Record<BucketWidth, number> = { '1m': 60, '1h': 3600, '1d': 86400 };
export type Grouping = 'project_id' | 'model' | 'batch' | 'service_tier' | 'line_item';

/** One group of a bucket: the dimensions it is grouped by (the others null) and its counts. */
export interface ReportGroup {
  tenant: string | null;
  model: string | null;
  tier: string | null;
  batch: boolean | null;
  counts: UsageCounts;
  /** What the counts cost, in USD, by line item. */
  usd: { input: number; cached: number; output: number; storage: number };
}

export interface ReportBucket {
  start: number;
  end: number;
  groups: ReportGroup[];
}

const USAGE_GROUPS: readonly Grouping[] = ['project_id', 'model', 'batch', 'service_tier'];
const EMBEDDING_GROUPS: readonly Grouping[] = ['project_id', 'model'];
const COST_GROUPS: readonly Grouping[] = ['project_id', 'line_item'];
/** OpenAI's page sizes: default and most buckets per width. */
const LIMITS: Record<BucketWidth, { dflt: number; max: number }> = {
  '1d': { dflt: 7, max: 31 },
  '1h': { dflt: 24, max: 168 },
  '1m': { dflt: 60, max: 1440 },
};
const COST_LIMIT = { dflt: 7, max: 180 };

export interface ParsedReportQuery {
  start: number;
  end: number;
  width: BucketWidth;
  groupBy: Grouping[];
  projectIds: string[] | null;
  models: string[] | null;
  batch: boolean | null;
  limit: number;
  page: number | null;
}

/** Every value of `name`, however the client spelled an array: `a=1&a=2`, `a[]=1`, `a[0]=1`, or `a=1,2`. */
function all(q: URLSearchParams, name: string): string[] | null {
  const values: string[] = [];
  for (const [k, v] of q) if (k === name || k === `${name}[]` || new RegExp(`^${name}\\[\\d+\\]$`).test(k)) values.push(...v.split(','));
  const kept = values.map((v) => v.trim()).filter(Boolean);
  return kept.length ? kept : null;
}

function one(q: URLSearchParams, name: string): string | null {
  const v = all(q, name);
  if (v && v.length > 1) throw new BadRequestError(`"${name}" takes one value.`, { param: name });
  return v?.[0] ?? null;
}

function seconds(q: URLSearchParams, name: string, dflt?: number): number {
  const raw = one(q, name);
  if (raw === null) {
    if (dflt !== undefined) return dflt;
    throw new BadRequestError(`"${name}" is required: the report's start, in Unix seconds.`, { param: name });
  }
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n))
    throw new BadRequestError(`"${name}" must be a time in Unix seconds, not "${raw}".`, { param: name });
  return n;
}

/** The reports: usage of completions (and responses), of embeddings, and costs. */
export type ReportKind = 'completions' | 'embeddings' | 'costs';

/** `GET /v1/organization/usage/{completions,embeddings}` and `/v1/organization/costs` queries; `costs` takes 1d buckets and line items. */
export function parseReportQuery(q: URLSearchParams, kind: ReportKind, nowSec: number): ParsedReportQuery {
  const width = (one(q, 'bucket_width') ?? '1d') as BucketWidth;
  const widths = kind === 'costs' ? ['1d'] : Object.keys(WIDTH_SECONDS);
  if (!widths.includes(width))
    throw new BadRequestError(`"bucket_width" must be one of ${widths.map((w) => `"${w}"`).join(', ')}.`, { param: 'bucket_width' });
  const start = seconds(q, 'start_time');
  // Without an end, the report runs to now (the bucket holding now included).
  const end = seconds(q, 'end_time', Math.max(nowSec, start) + 1);
  if (end <= start) throw new BadRequestError('"end_time" must be after "start_time".', { param: 'end_time' });
  const allowed = kind === 'costs' ? COST_GROUPS : kind === 'embeddings' ? EMBEDDING_GROUPS : USAGE_GROUPS;
  const groupBy = (all(q, 'group_by') ?? []) as Grouping[];
  const bad = groupBy.find((g) => !allowed.includes(g));
  if (bad) throw new BadRequestError(`"group_by" takes ${allowed.map((g) => `"${g}"`).join(', ')}; not "${bad}".`, { param: 'group_by' });
  const bounds = kind === 'costs' ? COST_LIMIT : LIMITS[width];
  const limitRaw = one(q, 'limit');
  const limit = limitRaw === null ? bounds.dflt : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > bounds.max) {
    throw new BadRequestError(`"limit" must be a whole number from 1 to ${bounds.max} for ${width} buckets.`, { param: 'limit' });
  }
  const pageRaw = one(q, 'page');
  const page = pageRaw === null ? null : Number(pageRaw);
  if (page !== null && (!Number.isSafeInteger(page) || page < start - WIDTH_SECONDS[width] || page >= end)) {
    throw new BadRequestError('"page" must be the "next_page" of an earlier answer to the same query.', { param: 'page' });
  }
  const batchRaw = one(q, 'batch');
  if (batchRaw !== null && batchRaw !== 'true' && batchRaw !== 'false')
    throw new BadRequestError('"batch" must be true or false.', { param: 'batch' });
  return {
    start,
    end,
    width,
    groupBy,
    projectIds: all(q, 'project_ids'),
    models: all(q, 'models'),
    batch: batchRaw === null ? null : batchRaw === 'true',
    limit,
    page,
  };
}

/** The tier's name in OpenAI's reports. */
const tierName = (tier: string | null) => (tier === null ? null : tier === 'standard' ? 'default' : tier);

function completionsResult(g: ReportGroup) {
  return {
    object: 'organization.usage.completions.result' as const,
    input_tokens: g.counts.input,
    input_cached_tokens: g.counts.cached,
    output_tokens: g.counts.output,
    input_audio_tokens: 0,
    output_audio_tokens: 0,
    num_model_requests: g.counts.requests,
    project_id: g.tenant,
    user_id: null,
    api_key_id: null,
    model: g.model,
    batch: g.batch,
    service_tier: tierName(g.tier),
  };
}

/** Embeddings: Gemini reports no usage for them, so their input tokens are Ferry's own count (what the answer's `usage` said). */
function embeddingsResult(g: ReportGroup) {
  return {
    object: 'organization.usage.embeddings.result' as const,
    input_tokens: g.counts.input,
    num_model_requests: g.counts.requests,
    project_id: g.tenant,
    user_id: null,
    api_key_id: null,
    model: g.model,
  };
}

/** A cost group split by line item (`<model>, input` …, the tier named unless standard), else one result. */
function costResults(g: ReportGroup, byLineItem: boolean) {
  const result = (value: number, lineItem: string | null) => ({
    object: 'organization.costs.result' as const,
    amount: { value, currency: 'usd' as const },
    line_item: lineItem,
    project_id: g.tenant,
  });
  const { input, cached, output, storage } = g.usd;
  if (!byLineItem) return [result(input + cached + output + storage, null)];
  const tier = g.tier && g.tier !== 'standard' ? ` (${g.tier})` : '';
  return [
    result(input, `${g.model}, input${tier}`),
    result(cached, `${g.model}, cached input${tier}`),
    result(output, `${g.model}, output${tier}`),
    result(storage, `${g.model}, cache storage`),
  ].filter((r) => r.amount.value > 0);
}

/** OpenAI's page of buckets. */
export function reportPage(kind: ReportKind, buckets: ReportBucket[], next: number | null, groupBy: Grouping[]) {
  return {
    object: 'page' as const,
    data: buckets.map((b) => ({
      object: 'bucket' as const,
      start_time: b.start,
      end_time: b.end,
      // A cache's storage is a cost with no model request: it shows in costs only.
      results:
        kind === 'costs'
          ? b.groups.flatMap((g) => costResults(g, groupBy.includes('line_item')))
          : b.groups.filter((g) => g.counts.requests > 0).map((g) => (kind === 'embeddings' ? embeddingsResult(g) : completionsResult(g))),
    })),
    has_more: next !== null,
    next_page: next === null ? null : String(next),
  };
}
