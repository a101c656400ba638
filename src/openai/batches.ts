/**
 * The Batch API's wire contract: what `POST /v1/batches` takes (checked, typed) and the batch
 * object and event it answers with.
 */
import type { BatchExecution } from '../core/config.js';
import { BadRequestError } from '../core/errors.js';
import { expiresAfter } from './files.js';
import type { BatchRecord, RequestCounts } from '../core/records/batches.js';

/** The endpoints a batch's lines may call. */
const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/responses', '/v1/embeddings'];

/** Each way a batch's lines may run, as its refusal describes it (every execution named: the compiler checks). */
const EXECUTIONS: Record<BatchExecution, string> = {
  direct: 'each line a live call',
  gemini_batch: 'Gemini Batch Mode, half price, up to 24 h',
  flex: "each line a live call at Gemini's Flex tier, half price, minutes",
};

const PARAMS = ['input_file_id', 'endpoint', 'completion_window', 'metadata', 'execution', 'output_expires_after'];

/** `POST /v1/batches`, checked. */
export interface BatchCreateParams {
  input_file_id: string;
  endpoint: string;
  completion_window: string;
  /** `completion_window` in seconds. */
  windowSeconds: number;
  metadata: Record<string, string> | null;
  execution: BatchExecution;
  /** Seconds the output and error files are kept from their creation (`output_expires_after`), or null for the default. */
  outputExpiresAfterSeconds: number | null;
}

/** Checks a create body; `defaultExecution` stands in for an absent `execution` (FERRY_BATCH_EXECUTION). */
export function checkBatchCreate(body: Record<string, unknown>, defaultExecution: BatchExecution): BatchCreateParams {
  const unknown = Object.keys(body).find((k) => !PARAMS.includes(k));
  if (unknown) throw new BadRequestError(`Unsupported parameter "${unknown}".`, { param: unknown });
  if (typeof body.input_file_id !== 'string' || !body.input_file_id)
    throw new BadRequestError('"input_file_id" is required.', { param: 'input_file_id' });
  if (typeof body.endpoint !== 'string' || !BATCH_ENDPOINTS.includes(body.endpoint)) {
    throw new BadRequestError(`"endpoint" must be one of: ${BATCH_ENDPOINTS.join(', ')}.`, { param: 'endpoint' });
  }
  const windowSecs = windowSeconds(body.completion_window);
  return {
    input_file_id: body.input_file_id,
    endpoint: body.endpoint,
    completion_window: body.completion_window as string,
    windowSeconds: windowSecs,
    execution: batchExecution(body.execution, defaultExecution),
    metadata: checkMetadata(body.metadata),
    outputExpiresAfterSeconds: expiresAfter(body.output_expires_after, 'output_expires_after'),
  };
}

/** `execution`: how the lines run. */
function batchExecution(v: unknown, fallback: BatchExecution): BatchExecution {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'string' && Object.hasOwn(EXECUTIONS, v)) return v as BatchExecution;
  const choices = Object.entries(EXECUTIONS).map(([name, what]) => `"${name}" (${what})`);
  throw new BadRequestError(`"execution" must be ${choices.join(' or ')}.`, { param: 'execution' });
}

function checkMetadata(v: unknown): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  const ok =
    typeof v === 'object' &&
    !Array.isArray(v) &&
    Object.keys(v).length <= 16 &&
    Object.entries(v).every(([k, val]) => k.length <= 64 && typeof val === 'string' && val.length <= 512);
  if (!ok)
    throw new BadRequestError('"metadata" must be an object of up to 16 string values (keys up to 64, values up to 512 characters).', {
      param: 'metadata',
    });
  return v as Record<string, string>;
}

const MAX_WINDOW_SECONDS = 24 * 3600;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** The batch as the API shows it (and webhook events carry it). */
export function batchObject(rec: BatchRecord, counts: RequestCounts, costUsd?: number) {
  return {
    id: rec.id,
    object: 'batch' as const,
    endpoint: rec.endpoint,
    errors: rec.errors,
    input_file_id: rec.input_file_id,
    completion_window: rec.completion_window,
    status: rec.status,
    output_file_id: rec.output_file_id,
    error_file_id: rec.error_file_id,
    created_at: rec.created_at,
    in_progress_at: rec.in_progress_at,
    expires_at: rec.expires_at,
    finalizing_at: rec.finalizing_at,
    completed_at: rec.completed_at,
    failed_at: rec.failed_at,
    expired_at: rec.expired_at,
    cancelling_at: rec.cancelling_at,
    cancelled_at: rec.cancelled_at,
    request_counts: counts,
    metadata: rec.metadata,
    ...(rec.output_expires_after_seconds
      ? { output_expires_after: { anchor: 'created_at' as const, seconds: rec.output_expires_after_seconds } }
      : {}),
    usage: rec.usage,
    ...(costUsd !== undefined ? { cost: { value: costUsd, currency: 'usd' as const } } : {}),
    execution: rec.execution ?? 'direct',
    ...(rec.gemini_batches ? { gemini_batches: rec.gemini_batches.map((g) => ({ model: g.model, name: g.name, state: g.state })) } : {}),
  };
}

/** The webhook event for a batch that reached a final status. */
export function batchEvent(rec: BatchRecord, counts: RequestCounts) {
  const type = `batch.${rec.status}` as 'batch.completed' | 'batch.failed' | 'batch.expired' | 'batch.cancelled';
  return { type, tenant: rec.tenant, objectId: rec.id, data: batchObject(rec, counts) as Record<string, unknown>, webhookUrl: null };
}

/** A batch's `completion_window` ("24h", or shorter: "30m", "90s") in seconds; anything else is a 400 naming it. */
export function windowSeconds(value: unknown): number {
  const m = typeof value === 'string' ? /^(\d{1,6})([smh])$/.exec(value) : null;
  const seconds = m ? Number(m[1]) * UNIT_SECONDS[m[2]] : 0;
  if (seconds < 1 || seconds > MAX_WINDOW_SECONDS) {
    throw new BadRequestError('"completion_window" must be "24h" (or a shorter duration such as "1h", "30m" or "90s").', {
      param: 'completion_window',
    });
  }
  return seconds;
}
