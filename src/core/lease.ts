/**
 * A lease in Redis: SET NX PX, renewed while held (the work it guards can outlast any short TTL),
 * released only by its owner. A holder that dies lets it lapse within the TTL.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { withScripts } from './scripts/index.js';

export class Lease {
  private readonly token = randomBytes(12).toString('hex');
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly ttlMs: number,
  ) {}

  async acquire(): Promise<boolean> {
    const ok = (await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK';
    if (ok) {
      this.timer = setInterval(() => {
        withScripts(this.redis)
          .ferryLockRenew(this.key, this.token, String(this.ttlMs))
          .catch(() => {});
      }, this.ttlMs / 3);
      this.timer.unref();
    }
    return ok;
  }

  /** Whether this holder still holds it (a renewal can fail, and then the lease lapses). */
  async mine(): Promise<boolean> {
    return (await this.redis.get(this.key)) === this.token;
  }

  /** Whether anyone holds it. */
  async held(): Promise<boolean> {
    return (await this.redis.exists(this.key)) === 1;
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await withScripts(this.redis)
      .ferryLockRelease(this.key, this.token)
      .catch(() => {});
  }
}
