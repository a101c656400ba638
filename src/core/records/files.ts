/** File records: the generic record store plus a per-purpose index and the content-retention schedule. */
import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { RecordStore, type Lifecycle, type ListOptions, type ScoredEntry } from './store.js';
import { nowSeconds } from '../time.js';

export type FileStatus = 'uploaded' | 'processed' | 'error';
export type Storage = 'gemini' | 'azure_storage' | 'local';
export type ProviderState = 'queued' | 'uploading' | 'processing' | 'active' | 'failed' | 'stored';

export interface FileRecord {
  id: string;
  tenant: string;
  filename: string;
  purpose: string;
  bytes: number;
  created_at: number;
  mime_type: string;
  sha256: string;
  storage: Storage;
  target_model_names: string[];
  display_name: string;
  status: FileStatus;
  status_details: string | null;
  provider_state: ProviderState;
  bytes_uploaded: number;
  attempts: number;
  staging_key: string;
  content_expires_at: number;
  content_deleted: boolean;
  processed_at: number | null;
  /** Resumable session on Gemini, and the offset it confirmed. */
  upload_url: string | null;
  upload_offset: number;
  gemini_name: string | null;
  gemini_uri: string | null;
  gemini_expires_at: number | null;
  azure_url: string | null;
  azure_blob_path: string | null;
  /** A per-upload webhook target for this file's events. */
  webhook_url: string | null;
  /** When the client asked the file to be gone (`expires_after`): deleted everywhere then. Null: the default retention. */
  expires_at?: number | null;
  /**
   * Where the file is, when it was named by URL (`url`) rather than sent: Gemini reads it there
   * when it can (`gemini_uri` is then this URL, or a registered Cloud Storage file), else the worker
   * fetches it into staging and it travels as an upload does.
   */
  source_url?: string | null;
  /** Where the API staged its bytes (StagingStore.location): a worker that cannot see them there says so. */
  staged_at?: string | null;
}

/** A new file's record: `local` files (batch input and output) are ready at once, others wait for their upload. */
export function newFileRecord(f: {
  id: string;
  tenant: string;
  filename: string;
  purpose: string;
  bytes: number;
  sha256: string;
  mime_type: string;
  storage: Storage;
  contentRetentionSeconds: number;
  target_model_names?: string[];
  display_name?: string;
  webhook_url?: string | null;
  /** Seconds until the file is deleted everywhere, as the client set it; null for the default. */
  expiresAfterSeconds?: number | null;
  source_url?: string | null;
  staged_at?: string | null;
}): FileRecord {
  const now = nowSeconds();
  const local = f.storage === 'local';
  const expiresAt = f.expiresAfterSeconds ? now + f.expiresAfterSeconds : null;
  return {
    id: f.id,
    tenant: f.tenant,
    filename: f.filename,
    purpose: f.purpose,
    bytes: f.bytes,
    created_at: now,
    mime_type: f.mime_type,
    sha256: f.sha256,
    storage: f.storage,
    target_model_names: f.target_model_names ?? [],
    display_name: (f.display_name ?? f.filename).slice(0, 512),
    status: local ? 'processed' : 'uploaded',
    status_details: null,
    provider_state: local ? 'stored' : 'queued',
    bytes_uploaded: 0,
    attempts: 0,
    staging_key: f.id,
    content_expires_at: Math.min(now + f.contentRetentionSeconds, expiresAt ?? Infinity),
    content_deleted: false,
    processed_at: local ? now : null,
    upload_url: null,
    upload_offset: 0,
    gemini_name: null,
    gemini_uri: null,
    gemini_expires_at: null,
    azure_url: null,
    azure_blob_path: null,
    webhook_url: f.webhook_url ?? null,
    expires_at: expiresAt,
    source_url: f.source_url ?? null,
    staged_at: f.staged_at ?? null,
  };
}

const FINAL: FileStatus[] = ['processed', 'error'];
export const isFinalFile = (r: FileRecord) => FINAL.includes(r.status);

/**
 * A file's life: uploaded (staged), then processed or error. "processed" may be written again
 * by a twin of the upload job that finished second; an error is never turned into success.
 */
export const FILE_LIFECYCLE: Lifecycle<FileStatus> = {
  uploaded: [],
  processed: ['uploaded', 'processed'],
  error: ['uploaded'],
};

export class FileStore extends RecordStore<FileRecord> {
  constructor(redis: Redis, keys: Keys, retentionSeconds: number) {
    super(redis, keys, { kind: 'file', retentionSeconds, lifecycle: FILE_LIFECYCLE, secondary: (rec) => [rec.purpose] });
  }

  /** The record and its content-expiry entry in one step (and its expiry, when the client set one). */
  override async create(rec: FileRecord, scored: ScoredEntry[] = []): Promise<boolean> {
    const expiry = rec.expires_at ? [{ key: this.keys.fileExpiry(), score: rec.expires_at }] : [];
    return super.create(rec, [...scored, { key: this.keys.contentExpiry(), score: rec.content_expires_at }, ...expiry]);
  }

  /** A file the client set to expire is kept until then (and an hour more, for the sweep to delete its copies). */
  protected override retentionOf(rec: FileRecord): number {
    if (!rec.expires_at) return this.retentionSeconds;
    return Math.min(this.retentionSeconds, Math.max(rec.expires_at - nowSeconds(), 0) + 3600);
  }

  protected override setsOf(): string[] {
    return [this.keys.contentExpiry(), this.keys.fileExpiry()];
  }

  /** Ids of files whose client-set expiry has passed: deleted everywhere. */
  async dueForExpiry(nowSeconds: number, max = 500): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.fileExpiry(), 0, nowSeconds, 'LIMIT', 0, max);
  }

  async forgetExpiry(id: string): Promise<void> {
    await this.redis.zrem(this.keys.fileExpiry(), id);
  }

  listFiles(tenant: string | readonly string[], opts: ListOptions & { purpose?: string }) {
    return this.list(tenant, { ...opts, sub: opts.purpose });
  }

  /** Ids whose retained bytes are due for deletion. */
  async dueForContentDeletion(nowSeconds: number, max = 500): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.contentExpiry(), 0, nowSeconds, 'LIMIT', 0, max);
  }

  async forgetContentExpiry(id: string): Promise<void> {
    await this.redis.zrem(this.keys.contentExpiry(), id);
  }
}
