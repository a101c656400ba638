/**
 * Upload records (OpenAI's Uploads API): a file sent in parts, pending until completed with its
 * parts in order, cancelled, or expired an hour after creation. Its parts are a hash beside it.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { RecordStore, type Lifecycle, type ScoredEntry } from './store.js';

/** OpenAI's: an upload expires an hour after it is created. */
export const UPLOAD_TTL_SECONDS = 3600;

export type UploadStatus = 'pending' | 'completed' | 'cancelled' | 'expired';

export interface UploadRecord {
  id: string;
  tenant: string;
  status: UploadStatus;
  filename: string;
  purpose: string;
  bytes: number;
  mime_type: string;
  target_storage: 'gemini' | 'azure_storage';
  target_model_names: string[];
  /** The file's own `expires_after.seconds`, once it is made; null for the default. */
  file_expires_after_seconds: number | null;
  created_at: number;
  expires_at: number;
  /** The file that completing makes: named at creation, so a retried completion makes the same one. */
  file_id: string;
}

/** A part as stored: its staging key and size. */
export interface UploadPart {
  id: string;
  bytes: number;
  created_at: number;
  staging_key: string;
}

export const UPLOAD_LIFECYCLE: Lifecycle<UploadStatus> = {
  pending: [],
  completed: ['pending'],
  cancelled: ['pending'],
  expired: ['pending'],
};

export class UploadStore extends RecordStore<UploadRecord> {
  constructor(redis: Redis, keys: Keys, retentionSeconds: number) {
    super(redis, keys, { kind: 'upload', retentionSeconds, lifecycle: UPLOAD_LIFECYCLE });
  }

  /** The record and its expiry entry (maintenance removes the parts of one left pending). */
  override async create(rec: UploadRecord, scored: ScoredEntry[] = []): Promise<boolean> {
    return super.create(rec, [...scored, { key: this.keys.uploadExpiry(), score: rec.expires_at }]);
  }

  protected override setsOf(): string[] {
    return [this.keys.uploadExpiry()];
  }

  /** Records a staged part; its hash lives as long as the upload's record. */
  async addPart(uploadId: string, part: UploadPart): Promise<void> {
    const key = this.keys.uploadParts(uploadId);
    await this.redis.multi().hset(key, part.id, JSON.stringify(part)).expire(key, this.retentionSeconds).exec();
  }

  async parts(uploadId: string): Promise<Map<string, UploadPart>> {
    const all = await this.redis.hgetall(this.keys.uploadParts(uploadId));
    return new Map(Object.entries(all).map(([id, v]) => [id, JSON.parse(v) as UploadPart]));
  }

  async forgetParts(uploadId: string): Promise<void> {
    await this.redis.del(this.keys.uploadParts(uploadId));
  }

  /** Ids of uploads whose hour has passed. */
  async dueForExpiry(nowSeconds: number, max = 500): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.uploadExpiry(), 0, nowSeconds, 'LIMIT', 0, max);
  }

  async forgetExpiry(id: string): Promise<void> {
    await this.redis.zrem(this.keys.uploadExpiry(), id);
  }
}
