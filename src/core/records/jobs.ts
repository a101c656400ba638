/** Generation job records: what was asked, where it stands, and its result or error. */
import type { Redis } from 'ioredis';
import type { ErrorBody } from '../errors.js';
import type { ChatRequest } from '../../openai/chat.js';
import type { Keys } from '../keys.js';
import { RecordStore, type Lifecycle } from './store.js';

export type JobStatus = 'queued' | 'waiting_for_files' | 'waiting_for_quota' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const FINAL_JOB_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];
export const OPEN_JOB_STATUSES: readonly JobStatus[] = ['queued', 'waiting_for_files', 'waiting_for_quota', 'running'];

export interface JobRecord {
  id: string;
  tenant: string;
  type: 'chat.completion';
  status: JobStatus;
  model: string;
  /** The validated OpenAI request body. */
  request: ChatRequest;
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
  constructor(redis: Redis, keys: Keys, retentionSeconds: number) {
    super(redis, keys, { kind: 'job', retentionSeconds, lifecycle: JOB_LIFECYCLE });
  }
}
