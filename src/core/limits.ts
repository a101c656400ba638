/**
 * The caps on completions running at once: each tenant's across every worker process
 * (TenantSlots, in Redis, as leases so that a crashed worker's slot frees itself), and batch
 * lines in one process (BatchLineSlots, in memory). The per-model quota is core/admission.ts.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { sleep } from './retry.js';
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

/** What waking a parked line found: woken, gone (ended or removed), or not parked yet. */
export type WakeResult = 'woken' | 'gone' | 'not_yet';

/**
 * Batch lines one worker process runs at once, so that some of its
 * completion slots always stay free for interactive requests. A line that
 * finds them taken is parked (moved to the delayed set for `parkMs`) and
 * woken as soon as a line here ends; the delay only matters if this process dies.
 */
export class BatchLineSlots {
  readonly parkMs = 3000;
  private readonly held = new Set<string>();
  private readonly parked: string[] = [];
  constructor(
    private readonly max: number,
    private readonly wake: (jobId: string) => Promise<WakeResult>,
  ) {}
  async acquire(_tenant: string, jobId: string): Promise<boolean> {
    if (this.held.has(jobId)) return true;
    if (this.held.size >= this.max) {
      if (!this.parked.includes(jobId)) this.parked.push(jobId);
      return false;
    }
    this.held.add(jobId);
    return true;
  }
  async release(_tenant: string, jobId: string): Promise<void> {
    if (this.held.delete(jobId)) void this.wakeNext();
  }
  /** Wakes the longest-parked line; one still on its way to the delayed set is tried again shortly. */
  private async wakeNext(): Promise<void> {
    for (let next = this.parked.shift(), tries = 0; next !== undefined && tries < 40; tries++) {
      const result = await this.wake(next).catch((): WakeResult => 'gone');
      if (result === 'woken') return;
      if (result === 'gone') next = this.parked.shift();
      else await sleep(25);
    }
  }
}
