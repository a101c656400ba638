/**
 * File records in Redis: one hash per file (each field JSON-encoded), a
 * per-tenant index for listing, and a per-purpose index for `?purpose=`.
 * Records expire after the configured retention; index entries whose record
 * has gone are dropped as lists meet them.
 */
import type { Redis } from 'ioredis';
import { Keys } from '../redis.js';
import { publishChange } from '../events.js';
import { NotFoundError } from '../errors.js';

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
}

const FINAL: FileStatus[] = ['processed', 'error'];
export const isFinalFile = (r: FileRecord) => FINAL.includes(r.status);

const UPDATE_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`;

type WithUpdateCommand = Redis & { ferryHsetIfExists(key: string, ...args: string[]): Promise<number> };

function encode(patch: Partial<FileRecord>): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) args.push(k, JSON.stringify(v));
  return args;
}

function decode(hash: Record<string, string>): FileRecord | null {
  if (!hash || Object.keys(hash).length === 0) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(hash)) out[k] = JSON.parse(v);
  return out as unknown as FileRecord;
}

export interface ListOptions {
  limit: number;
  after?: string;
  order: 'asc' | 'desc';
  purpose?: string;
}

export class FileStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly retentionSeconds: number,
  ) {
    if (!('ferryHsetIfExists' in redis)) {
      (redis as Redis).defineCommand('ferryHsetIfExists', { numberOfKeys: 1, lua: UPDATE_IF_EXISTS });
    }
  }

  async create(rec: FileRecord): Promise<void> {
    const key = this.keys.file(rec.id);
    await this.redis
      .multi()
      .hset(key, ...encode(rec))
      .expire(key, this.retentionSeconds)
      .zadd(this.keys.tenantFiles(rec.tenant), 0, rec.id)
      .zadd(this.keys.tenantFilesByPurpose(rec.tenant, rec.purpose), 0, rec.id)
      .zadd(this.keys.contentExpiry(), rec.content_expires_at, rec.id)
      .exec();
  }

  async get(id: string): Promise<FileRecord | null> {
    return decode(await this.redis.hgetall(this.keys.file(id)));
  }

  /** The record if it belongs to the tenant (or the caller is admin); otherwise 404, never 403. */
  async getOwned(id: string, tenant: string, admin = false): Promise<FileRecord> {
    const rec = await this.get(id);
    if (!rec || (!admin && rec.tenant !== tenant)) throw new NotFoundError(`No such file: '${id}'`, 'file_id');
    return rec;
  }

  /** Applies a patch only while the record exists (a deleted file is never recreated). */
  async update(id: string, patch: Partial<FileRecord>): Promise<boolean> {
    const ok = (await (this.redis as WithUpdateCommand).ferryHsetIfExists(this.keys.file(id), ...encode(patch))) === 1;
    if (ok && (patch.status !== undefined || patch.bytes_uploaded !== undefined || patch.provider_state !== undefined)) {
      await publishChange(this.redis, this.keys, `file:${id}`);
    }
    return ok;
  }

  /** Removes the record and its index entries; answers the record as it was, or null. */
  async remove(id: string): Promise<FileRecord | null> {
    const rec = await this.get(id);
    if (!rec) return null;
    await this.redis
      .multi()
      .del(this.keys.file(id))
      .zrem(this.keys.tenantFiles(rec.tenant), id)
      .zrem(this.keys.tenantFilesByPurpose(rec.tenant, rec.purpose), id)
      .zrem(this.keys.contentExpiry(), id)
      .exec();
    await publishChange(this.redis, this.keys, `file:${id}`);
    return rec;
  }

  async list(tenant: string, opts: ListOptions): Promise<{ data: FileRecord[]; has_more: boolean }> {
    const index = opts.purpose ? this.keys.tenantFilesByPurpose(tenant, opts.purpose) : this.keys.tenantFiles(tenant);
    const data: FileRecord[] = [];
    let cursor = opts.after;
    // Loop because index entries of expired records are skipped (and dropped).
    for (;;) {
      const want = opts.limit + 1 - data.length;
      const ids =
        opts.order === 'asc'
          ? await this.redis.zrangebylex(index, cursor ? `(${cursor}` : '-', '+', 'LIMIT', 0, want)
          : await this.redis.zrevrangebylex(index, cursor ? `(${cursor}` : '+', '-', 'LIMIT', 0, want);
      if (ids.length === 0) break;
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hgetall(this.keys.file(id));
      const rows = (await pipe.exec()) ?? [];
      const gone: string[] = [];
      ids.forEach((id, i) => {
        const rec = decode(rows[i][1] as Record<string, string>);
        if (rec) data.push(rec);
        else gone.push(id);
      });
      if (gone.length) await this.redis.zrem(index, ...gone);
      cursor = ids[ids.length - 1];
      if (data.length > opts.limit || ids.length < want) break;
    }
    const has_more = data.length > opts.limit;
    return { data: data.slice(0, opts.limit), has_more };
  }

  /** Ids whose retained bytes are due for deletion. */
  async dueForContentDeletion(nowSeconds: number, max = 500): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.contentExpiry(), 0, nowSeconds, 'LIMIT', 0, max);
  }

  async forgetContentExpiry(id: string): Promise<void> {
    await this.redis.zrem(this.keys.contentExpiry(), id);
  }
}
