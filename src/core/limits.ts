/**
 * A cap on each tenant's jobs running at once, kept in Redis so it holds
 * across every worker process (leases, so a crashed worker's slot frees
 * itself). The per-model quota is core/admission.ts.
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
  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly max: number,
    private readonly leaseMs = 15 * 60_000,
  ) {
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
