/**
 * Shared limits kept in Redis, so they hold across every worker process:
 * a cap on each tenant's jobs running at once (leases, so a crashed worker's
 * slot frees itself) and a per-model requests-per-minute window.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';

const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

type Scripted = Redis & { ferrySlotAcquire(key: string, ...args: (string | number)[]): Promise<number> };

export class TenantSlots {
  private readonly redis: Scripted;
  constructor(redis: Redis, private readonly keys: Keys, private readonly max: number, private readonly leaseMs = 15 * 60_000) {
    if (!('ferrySlotAcquire' in redis)) redis.defineCommand('ferrySlotAcquire', { numberOfKeys: 1, lua: ACQUIRE });
    this.redis = redis as Scripted;
  }
  private key(tenant: string) {
    return `${this.keys.prefix}:running:${tenant}`;
  }
  /** True when the job may run now (always, with no cap). */
  async acquire(tenant: string, jobId: string): Promise<boolean> {
    if (this.max <= 0) return true;
    const now = Date.now();
    return (await this.redis.ferrySlotAcquire(this.key(tenant), now, now + this.leaseMs, jobId, this.max, this.leaseMs)) === 1;
  }
  async release(tenant: string, jobId: string): Promise<void> {
    if (this.max > 0) await this.redis.zrem(this.key(tenant), jobId);
  }
}

export class ModelRateLimit {
  constructor(private readonly redis: Redis, private readonly keys: Keys, private readonly rpm: number) {}
  /** 0 when a request to `model` may go now; otherwise milliseconds until the next window. */
  async delayFor(model: string): Promise<number> {
    if (this.rpm <= 0) return 0;
    const minute = Math.floor(Date.now() / 60_000);
    const key = `${this.keys.prefix}:rpm:${model}:${minute}`;
    const [[, count]] = (await this.redis.multi().incr(key).expire(key, 120).exec()) as [[null, number], unknown];
    return count <= this.rpm ? 0 : (minute + 1) * 60_000 - Date.now() + Math.floor(Math.random() * 1000);
  }
}
