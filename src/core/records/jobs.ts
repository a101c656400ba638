/** Generation job records: what was asked, where it stands, and its result or error. */
import type { Redis } from 'ioredis';
import type { ErrorBody } from '../errors.js';
import type { ChatRequest } from '../../openai/chat.js';
import type { InputItem, ResponseRequest } from '../../openai/responses.js';
import type { EmbeddingRequest } from '../../openai/embeddings.js';
import type { Keys } from '../keys.js';
import { RecordStore, type Lifecycle } from './store.js';

export type JobType = 'chat.completion' | 'response' | 'embedding';
export const JOB_TYPES: readonly JobType[] = ['chat.completion', 'response', 'embedding'];
export type JobStatus = 'queued' | 'waiting_for_files' | 'waiting_for_quota' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const FINAL_JOB_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];
export const OPEN_JOB_STATUSES: readonly JobStatus[] = ['queued', 'waiting_for_files', 'waiting_for_quota', 'running'];

export interface JobRecord {
  id: string;
  tenant: string;
  /** What the job answers: a chat completion, a response (whose id is the job's, `resp_` for `job-`), or embeddings. */
  type: JobType;
  status: JobStatus;
  model: string;
  /** The validated OpenAI request body (of the job's type). */
  request: ChatRequest | ResponseRequest | EmbeddingRequest;
  /** A response's input as items, each with its id (what input_items lists). */
  input_items?: InputItem[];
  /** A response's earlier turns (from `previous_response_id`): their input and output items, in order. */
  context?: InputItem[];
  /** Files a response names by URL: Gemini fetches https ones itself, the worker the rest. */
  file_urls?: string[];
  file_ids: string[];
  /** http(s) image URLs the worker fetches, and the request's inline bytes (both from validation). */
  image_urls: string[];
  inline_bytes: number;
  /** Estimated input tokens (validation's), which the token quota is charged before the call. */
  input_tokens?: number;
  stream: boolean;
  metadata: Record<string, string> | null;
  attempts: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  result: Record<string, unknown> | null;
  /** The error as the API answers it, and the HTTP status it maps to. */
  error: (ErrorBody['error'] & { status: number }) | null;
  batch_id: string | null;
  custom_id: string | null;
  /** A batch line's 0-based index among the batch's requests. */
  batch_line?: number;
  webhook_url: string | null;
}

export const isFinalJob = (j: JobRecord) => FINAL_JOB_STATUSES.includes(j.status);

const WAITING: readonly JobStatus[] = ['queued', 'waiting_for_files', 'waiting_for_quota'];

/**
 * A job's life. It waits (for its files, the quota or capacity) only before it runs or after a
 * quota 429 while running; a retry puts a running job back in the queue; it runs again after a
 * stall; a final status is never left.
 */
export const JOB_LIFECYCLE: Lifecycle<JobStatus> = {
  queued: [...WAITING, 'running'],
  waiting_for_files: WAITING,
  waiting_for_quota: [...WAITING, 'running'],
  running: OPEN_JOB_STATUSES,
  succeeded: ['running'],
  failed: OPEN_JOB_STATUSES,
  cancelled: OPEN_JOB_STATUSES,
};

export class JobStore extends RecordStore<JobRecord> {
  constructor(
    redis: Redis,
    keys: Keys,
    retentionSeconds: number,
    private readonly responseRetentionSeconds = retentionSeconds,
  ) {
    super(redis, keys, { kind: 'job', retentionSeconds, lifecycle: JOB_LIFECYCLE });
  }

  /** A stored response is kept as long as its conversation may be continued. */
  protected override retentionOf(rec: JobRecord): number {
    return rec.type === 'response' ? this.responseRetentionSeconds : super.retentionOf(rec);
  }
}
