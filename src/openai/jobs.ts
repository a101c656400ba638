/** The Jobs API's wire contract (Ferry's own, for asynchronous requests): the job object and its events. */
import type { JobRecord } from '../core/records/jobs.js';
import { embeddingList, type EmbeddingRequest, type EmbeddingResult } from './embeddings.js';
import { responseObject } from './response-object.js';

/** A finished job's answer, as its endpoint answers it: the chat completion, the response, the embeddings list. */
export function answerOf(rec: JobRecord): Record<string, unknown> | null {
  if (!rec.result) return null;
  if (rec.type === 'response') return responseObject(rec);
  if (rec.type === 'embedding') {
    return embeddingList(rec.result as unknown as EmbeddingResult, rec.model, (rec.request as EmbeddingRequest).encoding_format);
  }
  return rec.result;
}

/** The job as the API shows it (and webhook events carry it). */
export function jobObject(rec: JobRecord) {
  return {
    id: rec.id,
    object: 'job' as const,
    type: rec.type,
    status: rec.status,
    model: rec.model,
    stream: rec.stream,
    attempts: rec.attempts,
    created_at: rec.created_at,
    started_at: rec.started_at,
    finished_at: rec.finished_at,
    file_ids: rec.file_ids,
    metadata: rec.metadata,
    result: answerOf(rec),
    error: rec.error ? { message: rec.error.message, type: rec.error.type, param: rec.error.param, code: rec.error.code } : null,
    batch_id: rec.batch_id,
    custom_id: rec.custom_id,
    webhook_url: rec.webhook_url,
  };
}

/** One job as `GET /v1/jobs/{id}` answers it: with the request it was asked (lists and events leave it out: it may be large). */
export function jobDetail(rec: JobRecord) {
  return { ...jobObject(rec), request: rec.request };
}

/** The webhook event for a job that reached a final status. */
export function jobEvent(rec: JobRecord) {
  const type = `job.${rec.status}` as 'job.succeeded' | 'job.failed' | 'job.cancelled';
  return { type, tenant: rec.tenant, objectId: rec.id, data: jobObject(rec) as Record<string, unknown>, webhookUrl: rec.webhook_url };
}
