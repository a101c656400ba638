/**
 * The rules of a job's life that more than one layer applies: its record as created (by a request
 * or a batch line), the ids its answer carries, what happens when it becomes final (its webhook
 * event, or for a batch line its count and the next line), and cancelling.
 */
import { modelIdOf } from '../core/models.js';
import { isFinalJob, type JobRecord } from '../core/records/jobs.js';
import { jobEvent } from '../openai/jobs.js';
import type { WebhookEndpoint } from '../core/records/webhooks.js';
import { FerryError, UpstreamError } from '../core/errors.js';
import type { Services } from '../core/services.js';
import type { ChatRequest, ValidatedChat } from '../openai/chat.js';
import { referencesOf, type InputItem, type ResponseRequest, type ValidatedResponse } from '../openai/responses.js';
import type { EmbeddingRequest, ValidatedEmbedding } from '../openai/embeddings.js';
import { responseEvent } from '../openai/response-object.js';
import { emitSafely } from './webhooks.js';
import { onLineFinal } from './batches.js';
import { jobStream } from './job-stream.js';
import { nowSeconds } from '../core/time.js';
import type { BilledTier } from '../core/prices.js';

/**
 * The request a job's record keeps: the body as `validateChatRequest` checked it (records are
 * stored below the layer that knows the request's type, so it is typed again here, once).
 */
export const chatRequestOf = (rec: JobRecord): ChatRequest => rec.request as ChatRequest;
export const responseRequestOf = (rec: JobRecord): ResponseRequest => rec.request as ResponseRequest;

/**
 * The tier a job's call is made (and billed) at: standard once a shed Flex call fell back, Flex
 * for a line of a Flex batch, else the `service_tier` it asked for (standard for `auto`, `default`
 * and embeddings, which Gemini does not tier).
 */
export function callTierOf(rec: JobRecord, opts: { batchExecution?: string | null; fallback?: 'standard' } = {}): BilledTier {
  if (rec.type === 'embedding' || opts.fallback) return 'standard';
  if (opts.batchExecution === 'flex') return 'flex';
  const tier = (rec.request as { service_tier?: string | null } | undefined)?.service_tier;
  return tier === 'flex' || tier === 'priority' ? tier : 'standard';
}

/** A tier as OpenAI's answers name it (`service_tier`). */
export const wireTier = (tier: BilledTier) => (tier === 'standard' ? 'default' : tier);

export interface BatchLine {
  batchId: string;
  customId: string;
  index: number;
}

/** A new job's record, queued: for an interactive request, or for a batch's request line. */
export function newJobRecord(p: {
  id: string;
  tenant: string;
  chat: ValidatedChat;
  webhookUrl?: string | null;
  line?: BatchLine;
}): JobRecord {
  const { chat } = p;
  return {
    ...queuedRecord(p.id, p.tenant, p.line),
    type: 'chat.completion',
    model: modelIdOf(chat.model),
    request: chat.body,
    file_ids: chat.fileIds,
    image_urls: chat.imageUrls,
    inline_bytes: chat.inlineBytes,
    input_tokens: chat.inputTokens,
    // A batch line's answer goes to the output file, never to a stream.
    stream: p.line ? false : chat.stream,
    metadata: chat.body.metadata ?? null,
    webhook_url: p.webhookUrl ?? null,
  };
}

/** A new response's record, queued; `context` holds the turns of the response it continues. */
export function newResponseRecord(p: {
  id: string;
  tenant: string;
  response: ValidatedResponse;
  context?: InputItem[];
  line?: BatchLine;
}): JobRecord {
  const response = p.context?.length ? withContextReferences(p.response, p.context) : p.response;
  return {
    ...queuedRecord(p.id, p.tenant, p.line),
    type: 'response',
    model: modelIdOf(response.model),
    request: response.body,
    input_items: response.items,
    ...(p.context?.length ? { context: p.context } : {}),
    file_ids: response.fileIds,
    image_urls: response.imageUrls,
    ...(response.fileUrls.length ? { file_urls: response.fileUrls } : {}),
    inline_bytes: response.inlineBytes,
    input_tokens: response.inputTokens,
    stream: p.line ? false : response.stream,
    metadata: response.body.metadata ?? null,
    webhook_url: null,
  };
}

/** A response continuing a conversation references the files of its earlier turns too: they go to Gemini again. */
function withContextReferences(response: ValidatedResponse, context: InputItem[]): ValidatedResponse {
  const earlier = referencesOf(context);
  const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];
  return {
    ...response,
    fileIds: union(earlier.fileIds, response.fileIds),
    imageUrls: union(earlier.imageUrls, response.imageUrls),
    fileUrls: union(earlier.fileUrls, response.fileUrls),
    inlineBytes: earlier.inlineBytes + response.inlineBytes,
  };
}

/** A new embeddings job's record, queued. */
export function newEmbeddingRecord(p: { id: string; tenant: string; embedding: ValidatedEmbedding; line?: BatchLine }): JobRecord {
  const { embedding } = p;
  return {
    ...queuedRecord(p.id, p.tenant, p.line),
    type: 'embedding',
    model: modelIdOf(embedding.model),
    request: embedding.body,
    file_ids: [],
    image_urls: [],
    inline_bytes: 0,
    input_tokens: embedding.inputTokens,
    stream: false,
    metadata: null,
    webhook_url: null,
  };
}

export const embeddingRequestOf = (rec: JobRecord): EmbeddingRequest => rec.request as EmbeddingRequest;

/** The request field that holds a job's parts (files, images): what its errors name. */
export const inputParamOf = (rec: Pick<JobRecord, 'type'>) => (rec.type === 'response' ? 'input' : 'messages');

/** What every new job's record starts with. */
function queuedRecord(id: string, tenant: string, line?: BatchLine) {
  return {
    id,
    tenant,
    status: 'queued' as const,
    attempts: 0,
    created_at: nowSeconds(),
    started_at: null,
    finished_at: null,
    result: null,
    error: null,
    batch_id: line?.batchId ?? null,
    custom_id: line?.customId ?? null,
    ...(line ? { batch_line: line.index } : {}),
  };
}

/** The ids a job's chat.completion (and its chunks) carry: derived from the job, so a retry answers the same. */
export function completionIds(rec: JobRecord) {
  return { id: `chatcmpl-${rec.id.slice('job-'.length)}`, model: rec.model, created: rec.created_at };
}

/** A job that reached a final status: its event, or for a batch line its count (a batch has events of its own). */
export async function announceJobFinal(services: Services, rec: JobRecord, endpoints?: WebhookEndpoint[]): Promise<void> {
  if (rec.batch_id) return onLineFinal(services, rec);
  services.activity.count('completions', rec.tenant);
  if (rec.type !== 'response') await emitSafely(services, { ...jobEvent(rec), endpoints });
  // As OpenAI does, only background responses announce themselves: the others were answered.
  else if (responseRequestOf(rec).background) await emitSafely(services, { ...responseEvent(rec), endpoints });
}

/** Announces the job as its record now stands, if final (repeated announcements are deduplicated by event ids). */
export async function announceIfFinal(services: Services, jobId: string): Promise<JobRecord | null> {
  const rec = await services.jobs.get(jobId);
  if (rec && isFinalJob(rec)) await announceJobFinal(services, rec);
  return rec;
}

/**
 * Cancels an open job: a queued or waiting one leaves the queue and never runs; a running one
 * finishes and its result is discarded (its final transition finds it cancelled). Answers false
 * when the job was no longer open.
 */
export async function cancelJob(services: Services, rec: JobRecord): Promise<boolean> {
  const cancelled = await services.jobs.transition(rec.id, {
    status: 'cancelled',
    finished_at: nowSeconds(),
  });
  if (!cancelled) return false;
  await services.queues.generate
    .of(rec.id)
    .remove(rec.id)
    .catch(() => 0);
  if (rec.stream) await jobStream(services).end(rec.id, { kind: 'cancelled' });
  await announceIfFinal(services, rec.id);
  return true;
}

/**
 * A job's failure as the API shows it: Gemini's own verdict on the request (400, 403, 404) is the
 * caller's to see; exhausted transient failures are a 502; anything else an internal error.
 */
export function failureOf(err: unknown): FerryError {
  if (err instanceof UpstreamError) {
    const s = err.upstreamStatus;
    if (s !== null && s >= 400 && s < 500 && s !== 408 && s !== 429) {
      return new FerryError(err.message, {
        status: s,
        type: s === 403 ? 'permission_error' : 'invalid_request_error',
        code: err.code,
        param: null,
      });
    }
    return err;
  }
  if (err instanceof FerryError) return err;
  return new FerryError(`The job failed: ${(err as Error)?.message ?? String(err)}`, {
    status: 500,
    type: 'server_error',
    code: 'internal_error',
  });
}

/** The error a job record keeps: the API's error body and its HTTP status. */
export function jobErrorOf(err: unknown): NonNullable<JobRecord['error']> {
  const e = failureOf(err);
  return { ...e.toBody().error, status: e.status };
}
