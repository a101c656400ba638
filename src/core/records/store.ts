/**
 * Records in Redis: one hash per record (each field JSON-encoded), a
 * per-tenant index for listing (ids sort by creation time, so the index is
 * lexicographic), optional secondary indexes, and a retention TTL. Index
 * entries whose record has expired are dropped as lists meet them.
 * Every change publishes on the record's topic so long-polls wake; the message
 * is the record's status after it (as stored, JSON), or "1" when it was removed.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { publishChange } from '../events.js';
import { NotFoundError } from '../errors.js';
import type { Keys } from '../keys.js';
import { withScripts, type Scripted } from '../scripts/index.js';

/** Record ids as Ferry makes them: a lowercase kind, `-` or `_`, then letters and digits. */
const RECORD_ID = /^[a-z]+[-_][0-9A-Za-z]{6,64}$/;

export interface BaseRecord {
  id: string;
  tenant: string;
  status: string;
}

/** A sorted set a new record's id joins, and its score there. */
export interface ScoredEntry {
  key: string;
  score: number;
}

/**
 * A resource's allowed status changes, its one table: for each status, the statuses a record may
 * enter it from. Every status change goes through `transition`, which applies it only from these.
 */
export type Lifecycle<S extends string> = Readonly<Record<S, readonly S[]>>;

export interface StoreOptions<T extends BaseRecord> {
  /** "file", "job", …: names keys, topics and not-found messages. */
  kind: string;
  retentionSeconds: number;
  lifecycle: Lifecycle<T['status']>;
  /** Secondary index names for a record (e.g. its purpose), each listed separately. */
  secondary?: (rec: T) => string[];
}

/** A status change: the patch with its new status, and optionally a narrower set of statuses to leave. */
export type StatusPatch<T extends BaseRecord> = Partial<T> & { status: T['status'] };
export interface TransitionOptions<T extends BaseRecord> {
  /** Only from these (each allowed by the lifecycle): the status the caller read, say. */
  from?: readonly T['status'][];
  /** Fields written only where the record has none yet (a first start time). */
  initial?: Partial<T>;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
}

export interface ListOptions {
  limit: number;
  after?: string;
  order: 'asc' | 'desc';
}

function encode(patch: object): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) args.push(k, JSON.stringify(v));
  return args;
}

/** Kept in the hash for `create` alone (scripts/records.ts), never part of the record. */
const CREATION_FIELD = '_creation';

function decode<T>(hash: Record<string, string>): T | null {
  if (!hash || Object.keys(hash).length === 0) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(hash)) if (k !== CREATION_FIELD) out[k] = JSON.parse(v);
  return out as T;
}

/** A record from a script's flat HGETALL reply (field, value, field, value …). */
function decodeFlat<T>(flat: string[]): T | null {
  if (flat.length === 0) return null;
  const out: Record<string, unknown> = {};
  for (let i = 0; i < flat.length; i += 2) if (flat[i] !== CREATION_FIELD) out[flat[i]] = JSON.parse(flat[i + 1]);
  return out as T;
}

export class RecordStore<T extends BaseRecord> {
  protected readonly redis: Scripted;

  readonly kind: string;
  protected readonly retentionSeconds: number;
  private readonly lifecycle: Lifecycle<T['status']>;
  private readonly secondary: (rec: T) => string[];

  constructor(
    redis: Redis,
    protected readonly keys: Keys,
    opts: StoreOptions<T>,
  ) {
    this.redis = withScripts(redis);
    this.kind = opts.kind;
    this.retentionSeconds = opts.retentionSeconds;
    this.lifecycle = opts.lifecycle;
    this.secondary = opts.secondary ?? (() => []);
  }

  key(id: string) {
    return this.keys.record(this.kind, id);
  }
  index(tenant: string, sub?: string) {
    return this.keys.tenantIndex(tenant, this.kind, sub);
  }
  topic(id: string) {
    return `${this.kind}:${id}`;
  }

  private channel(id: string) {
    return this.keys.channel(this.topic(id));
  }

  /**
   * Writes a new record, its id joining each of `scored` with the score given there (the pending
   * set of core/enqueue.ts, a file's content expiry), and the tenant's indexes. Those keys live in
   * other slots of a cluster than the record, so they are written first and the record last: a
   * crash in between leaves an id without a record, which lists and maintenance drop. Answers
   * false, writing no record, when one exists under the id already.
   */
  async create(rec: T, scored: ScoredEntry[] = []): Promise<boolean> {
    const indexes = [this.index(rec.tenant), ...this.secondary(rec).map((sub) => this.index(rec.tenant, sub))];
    await Promise.all([
      ...scored.map((e) => this.redis.zadd(e.key, e.score, rec.id)),
      ...indexes.map((index) => this.redis.zadd(index, 0, rec.id)),
    ]);
    const token = JSON.stringify(randomUUID());
    return (await this.redis.ferryCreate(this.key(rec.id), this.retentionOf(rec), token, ...encode(rec))) === 1;
  }

  /** How long a record is kept from its creation. */
  protected retentionOf(_rec: T): number {
    return this.retentionSeconds;
  }

  async get(id: string): Promise<T | null> {
    return decode<T>(await this.redis.hgetall(this.key(id)));
  }

  /** The record if it belongs to the tenant (or the caller is admin); otherwise 404, never 403, naming `param`: the request field that gave the id. */
  async getOwned(id: string, tenant: string, admin = false, param = `${this.kind}_id`): Promise<T> {
    // Only well-formed ids reach Redis: other names could meet keys that are not records.
    const rec = RECORD_ID.test(id) ? await this.get(id) : null;
    if (!rec || (!admin && rec.tenant !== tenant)) throw new NotFoundError(`No such ${this.kind}: '${id}'`, { param });
    return rec;
  }

  /** Applies a patch only while the record exists (a deleted record is never recreated); status changes go through `transition`. */
  async update(id: string, patch: Partial<Omit<T, 'status'>>): Promise<boolean> {
    return (await this.redis.ferryHsetIfExists(this.key(id), this.channel(id), ...encode(patch))) === 1;
  }

  /** Changes the record's status if the lifecycle allows it from the current one; answers whether it did. */
  async transition(id: string, patch: StatusPatch<T>, opts: TransitionOptions<T> = {}): Promise<boolean> {
    return (await this.runTransition(id, patch, opts, '0')) === 1;
  }

  /** As `transition`, in the same round trip answering the record as changed, or null if it did not apply. */
  async transitionGet(id: string, patch: StatusPatch<T>, opts: TransitionOptions<T> = {}): Promise<T | null> {
    return decodeFlat<T>((await this.runTransition(id, patch, opts, '1')) as string[]);
  }

  /** The statuses `to` may be entered from: the lifecycle's, narrowed to the caller's `from`. */
  allowedFrom(to: T['status'], from?: readonly T['status'][]): readonly T['status'][] {
    const allowed = this.lifecycle[to as T['status']];
    if (!from) return allowed;
    const stray = from.filter((s) => !allowed.includes(s));
    if (stray.length) throw new Error(`A ${this.kind} never goes from ${stray.join(', ')} to ${to}.`);
    return from;
  }

  private runTransition(id: string, patch: StatusPatch<T>, opts: TransitionOptions<T>, answer: '0' | '1') {
    const first = encode(opts.initial ?? {});
    return this.redis.ferryTransition(
      this.key(id),
      this.channel(id),
      JSON.stringify(this.allowedFrom(patch.status, opts.from)),
      answer,
      first.length / 2,
      ...first,
      ...encode(patch),
    );
  }

  /** Removes the record and its index entries; answers the record as it was, or null. */
  async remove(id: string): Promise<T | null> {
    const rec = await this.get(id);
    if (!rec) return null;
    // One command per key: on a cluster the record, its indexes and its parts live in different slots.
    const indexes = [this.index(rec.tenant), ...this.secondary(rec).map((sub) => this.index(rec.tenant, sub))];
    await Promise.all([
      ...[this.key(id), ...this.partsOf(rec)].map((key) => this.redis.del(key)),
      ...[...indexes, ...this.setsOf(rec)].map((set) => this.redis.zrem(set, id)),
    ]);
    await publishChange(this.redis, this.keys, this.topic(id));
    return rec;
  }

  /** Keys that belong to a record beside its hash, removed with it. */
  protected partsOf(_rec: T): string[] {
    return [];
  }

  /** Sorted sets besides its indexes that hold the record's id, which it leaves when removed. */
  protected setsOf(_rec: T): string[] {
    return [];
  }

  /**
   * A page of the tenants' records (of one secondary index if `sub` is given), optionally filtered.
   * Ids sort by creation time, so several tenants' pages merge into one by id: the first `limit`
   * of the merge are among each tenant's first `limit + 1`.
   */
  async list(tenants: string | readonly string[], opts: ListOptions & { sub?: string; where?: (rec: T) => boolean }): Promise<Page<T>> {
    if (typeof tenants === 'string') return this.listOne(tenants, opts);
    const pages = await Promise.all(tenants.map((t) => this.listOne(t, opts)));
    const merged = pages.flatMap((p) => p.data).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (opts.order === 'desc') merged.reverse();
    return { data: merged.slice(0, opts.limit), has_more: merged.length > opts.limit || pages.some((p) => p.has_more) };
  }

  private async listOne(tenant: string, opts: ListOptions & { sub?: string; where?: (rec: T) => boolean }): Promise<Page<T>> {
    const index = this.index(tenant, opts.sub);
    const data: T[] = [];
    let cursor = opts.after;
    for (;;) {
      const want = Math.max(opts.limit + 1 - data.length, 50);
      const ids =
        opts.order === 'asc'
          ? await this.redis.zrangebylex(index, cursor ? `(${cursor}` : '-', '+', 'LIMIT', 0, want)
          : await this.redis.zrevrangebylex(index, cursor ? `(${cursor}` : '+', '-', 'LIMIT', 0, want);
      if (ids.length === 0) break;
      // Sent together (the records connection pipelines them; on a cluster, per node).
      const rows = await Promise.all(ids.map((id) => this.redis.hgetall(this.key(id))));
      const gone: string[] = [];
      for (let i = 0; i < ids.length && data.length <= opts.limit; i++) {
        const rec = decode<T>(rows[i]);
        if (!rec) gone.push(ids[i]);
        else if (!opts.where || opts.where(rec)) data.push(rec);
        cursor = ids[i];
      }
      if (gone.length) await this.redis.zrem(index, ...gone);
      if (data.length > opts.limit || ids.length < want) break;
    }
    return { data: data.slice(0, opts.limit), has_more: data.length > opts.limit };
  }
}
