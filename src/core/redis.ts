/** The one Redis connection factory, and the key names Ferry's own records use. */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';

export type RedisRole = 'client' | 'queue' | 'worker' | 'subscriber';

/**
 * Workers and subscribers block, so they need `maxRetriesPerRequest: null`
 * (BullMQ requires it for workers); `client` and `queue` connections answer
 * requests, which must get an answer instead of hanging.
 *
 * `client` (Ferry's records) auto-pipelines: commands issued in the same
 * event-loop turn by concurrent requests or jobs leave in one write and come
 * back in one read, which under load saves a system call and a wake-up of
 * Redis per command. BullMQ gets `queue` connections without it: its scripts
 * are few per job and it is not built or tested for auto-pipelining.
 */
export function createRedis(url: string, role: RedisRole = 'client', extra: RedisOptions = {}): Redis {
  const answers = role === 'client' || role === 'queue';
  return new Redis(url, {
    // While Redis is down a request must fail within seconds (a 503 the SDKs retry), not wait for
    // reconnects that back off ever longer: a command waiting for the connection fails when the
    // next reconnect attempt (at most a second apart) fails, and any command fails after
    // COMMAND_TIMEOUT_MS, as one sent to a host that went silent would otherwise wait forever.
    maxRetriesPerRequest: answers ? 0 : null,
    retryStrategy: (times) => Math.min(times * 100, 1000),
    connectTimeout: 3000,
    ...(answers ? { commandTimeout: COMMAND_TIMEOUT_MS } : {}),
    enableReadyCheck: true,
    connectionName: `ferry-${role}`,
    enableAutoPipelining: role === 'client',
    ...extra,
  });
}

/** The longest a record or queue command may take before it counts as Redis being unavailable. */
export const COMMAND_TIMEOUT_MS = 3000;

/** Whether an error says Redis cannot be reached (or is still loading its data), rather than a fault in the request. */
export function isRedisUnavailable(err: unknown): boolean {
  const e = err as { name?: string; message?: string; code?: string } | null;
  if (!e || typeof e !== 'object') return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND'].includes(e.code)) return true;
  return /^(Command timed out|Connection is closed|Stream isn't writeable|LOADING |MASTERDOWN|TRYAGAIN|CLUSTERDOWN)/.test(e.message ?? '');
}

/**
 * Logs the errors of a connection, queue or worker without flooding: while Redis is down each
 * one errors on every reconnect attempt, so the same message is written at most every 30 s.
 */
export function logErrors(emitter: { on(event: 'error', fn: (err: Error) => void): unknown }, logger: Logger, part: string): void {
  let last = '';
  let at = 0;
  emitter.on('error', (err: Error) => {
    const now = Date.now();
    if (err.message === last && now - at < 30_000) return;
    last = err.message;
    at = now;
    logger.warn({ err: err.message, part }, 'redis error');
  });
}

/**
 * Connections for blocking reads (XREAD BLOCK), reused: a streamed response holds one while it
 * relays, and a fresh one per response costs a connect, a name and a ready check. Only a reader
 * whose last read ended cleanly comes back; one given up mid-read is closed.
 */
export class BlockingReaders {
  private readonly idle: Redis[] = [];
  private closed = false;
  constructor(
    private readonly url: string,
    private readonly maxIdle = 32,
  ) {}
  take(): Redis {
    const r = this.idle.pop();
    if (r) return r;
    const fresh = createRedis(this.url, 'subscriber');
    fresh.on('error', () => {});
    return fresh;
  }
  give(r: Redis, clean: boolean): void {
    if (clean && !this.closed && r.status === 'ready' && this.idle.length < this.maxIdle) this.idle.push(r);
    else r.disconnect();
  }
  /** Closes the idle readers; one given back later is closed then. */
  close(): void {
    this.closed = true;
    for (const r of this.idle.splice(0)) r.disconnect();
  }
}

/**
 * Every key Ferry writes, named in one place (BullMQ's queues name their own, under the same
 * prefix). A prefix such as `{ferry}` is a Redis Cluster hash tag: all keys then live in one
 * slot, which BullMQ's multi-key scripts require.
 */
export class Keys {
  constructor(readonly prefix: string) {}
  /** A record's hash: `file`, `job`, `batch`, … and its id. */
  record(kind: string, id: string) {
    return `${this.prefix}:${kind}:${id}`;
  }
  /** A tenant's index of records of a kind, optionally one of its secondary indexes. */
  tenantIndex(tenant: string, kind: string, sub?: string) {
    return `${this.prefix}:tenant:${tenant}:${kind}s${sub ? `:${sub}` : ''}`;
  }
  /** A batch's line counters (fed, completed, failed) and its bitmap of counted lines. */
  batchLines(batchId: string) {
    return `${this.record('batch', batchId)}:lines`;
  }
  batchDone(batchId: string) {
    return `${this.record('batch', batchId)}:done`;
  }
  /** Ids whose record is written and whose job may not be queued yet (maintenance repairs them). */
  enqueuePending() {
    return `${this.prefix}:enqueue-pending`;
  }
  /** One tenant's running completions (leases). */
  tenantRunning(tenant: string) {
    return `${this.prefix}:running:${tenant}`;
  }
  /** The lock of whoever makes a file's Gemini copy. */
  geminiCopyLock(fileId: string) {
    return `${this.prefix}:lock:gemini-copy:${fileId}`;
  }
  /** A model's admission state under one Gemini project (a digest of its key), and its parts. */
  quota(project: string, model: string, part = '') {
    return `${this.prefix}:quota:${project}:${model}${part}`;
  }
  contentExpiry() {
    return `${this.prefix}:content-expiry`;
  }
  /** The Redis Stream a streaming job's chunks are relayed through. */
  jobStream(jobId: string) {
    return `${this.prefix}:stream:${jobId}`;
  }
  idempotency(tenant: string, key: string) {
    return `${this.prefix}:idem:${tenant}:${key}`;
  }
  channel(topic: string) {
    return `${this.prefix}:events:${topic}`;
  }
}

/** Deletes every key under a prefix (tests, and `ferry` maintenance). */
export async function deleteByPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) n += await redis.unlink(...keys);
  } while (cursor !== '0');
  return n;
}
