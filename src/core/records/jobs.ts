/** Generation job records: what was asked, where it stands, and its result or error. */
import type { Redis } from 'ioredis';
import type { ErrorBody } from '../errors.js';
import type { Keys } from '../redis.js';
import { RecordStore } from './store.js';

export type JobStatus = 'queued' | 'waiting_for_files' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const FINAL_JOB_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];
export const OPEN_JOB_STATUSES: readonly JobStatus[] = ['queued', 'waiting_for_files', 'running'];

export interface JobRecord {
  id: string;
  tenant: string;
  type: 'chat.completion';
  status: JobStatus;
  model: string;
  /** The validated OpenAI request body. */
  request: Record<string, unknown>;
  file_ids: string[];
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
}

export const isFinalJob = (j: JobRecord) => FINAL_JOB_STATUSES.includes(j.status);

export class JobStore extends RecordStore<JobRecord> {
  constructor(redis: Redis, keys: Keys, retentionSeconds: number) {
    super(redis, keys, 'job', retentionSeconds);
  }
}
