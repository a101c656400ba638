/** The one Redis connection factory (one Redis, or a Redis Cluster), and the key names Ferry's own records use. */
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';

export type RedisRole = 'client' | 'queue' | 'worker' | 'subscriber';

/** Where Redis is: REDIS_URL, or REDIS_CLUSTER_NODES (which wins when set). */
export interface RedisTarget {
  redisUrl: string;
  redisClusterNodes: string[] | null;
}

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
export function createRedis(target: RedisTarget, role: RedisRole = 'client', extra: RedisOptions = {}): Redis {
  const options = connectionOptions(role, extra);
  if (!target.redisClusterNodes) return new Redis(target.redisUrl, options);
  return createCluster(target.redisClusterNodes, options);
}

function connectionOptions(role: RedisRole, extra: RedisOptions): RedisOptions {
  const answers = role === 'client' || role === 'queue';
  return {
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
  };
}

/**
 * A Redis Cluster client from some of its nodes (it learns the rest). Typed as a Redis: the
 * commands and scripts Ferry uses are the same on both, each sent to the node of its key (every
 * multi-key command Ferry and BullMQ send keeps its keys in one slot, see Keys and queuePrefix).
 */
function createCluster(urls: string[], options: RedisOptions): Redis {
  const nodes: ClusterNode[] = urls.map((u) => {
    const url = new URL(u);
    return { host: url.hostname, port: Number(url.port || 6379) };
  });
  const first = new URL(urls[0]);
  const auth = {
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  const { enableAutoPipelining, retryStrategy, ...redisOptions } = options;
  const cluster = new Cluster(nodes, {
    redisOptions: { ...redisOptions, ...auth },
    enableAutoPipelining,
    clusterRetryStrategy: retryStrategy as (times: number) => number,
    enableReadyCheck: true,
    // A command sent while the slots are being learned waits for them rather than failing.
    enableOfflineQueue: true,
    slotsRefreshTimeout: 3000,
  });
  return cluster as unknown as Redis;
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
    private readonly target: RedisTarget,
    private readonly maxIdle = 32,
  ) {}
  take(): Redis {
    const r = this.idle.pop();
    if (r) return r;
    const fresh = createRedis(this.target, 'subscriber');
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
