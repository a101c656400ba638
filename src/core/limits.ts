/**
 * A cap on each tenant's jobs running at once, kept in Redis so it holds
 * across every worker process (leases, so a crashed worker's slot frees
 * itself). The per-model quota is core/admission.ts.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';
import { withScripts, type Scripted } from './scripts/index.js';

export class TenantSlots {
  private readonly redis: Scripted;
  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly max: number,
    private readonly leaseMs = 15 * 60_000,
  ) {
    this.redis = withScripts(redis);
  }
  private key(tenant: string) {
    return this.keys.tenantRunning(tenant);
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
