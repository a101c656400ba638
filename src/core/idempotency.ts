/**
 * `Idempotency-Key`: the same key with the same body, within the retention
 * window, answers the original resource; the same key with a different body
 * is 422. Keys are scoped per tenant.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BadRequestError, ConflictError, UnprocessableError } from './errors.js';
import type { Keys } from './redis.js';

export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

interface Entry {
  fp: string;
  id: string | null;
}

export function fingerprint(...parts: unknown[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? p : JSON.stringify(p)).update('\0');
  return h.digest('hex');
}

export class Idempotency {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly ttlSeconds = IDEMPOTENCY_TTL_SECONDS,
  ) {}

  static keyOf(header: string | string[] | undefined): string | null {
    if (header === undefined) return null;
    const key = Array.isArray(header) ? header[0] : header;
    if (!key || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
      throw new BadRequestError('Idempotency-Key must be 1 to 255 visible ASCII characters.', {
        param: 'Idempotency-Key',
        code: 'invalid_idempotency_key',
      });
    }
    return key;
  }

  /**
   * Claims `key` for a request with fingerprint `fp`. Answers the id of the
   * resource an earlier identical request created, or null when this request
   * is the first (it must then call `complete` or `release`).
   */
  async claim(tenant: string, key: string, fp: string): Promise<string | null> {
    const k = this.keys.idempotency(tenant, key);
    const set = await this.redis.set(k, JSON.stringify({ fp, id: null } satisfies Entry), 'EX', this.ttlSeconds, 'NX');
    if (set === 'OK') return null;
    const raw = await this.redis.get(k);
    const prev = raw ? (JSON.parse(raw) as Entry) : null;
    if (!prev) return this.claim(tenant, key, fp);
    if (prev.fp !== fp) {
      throw new UnprocessableError('This Idempotency-Key was used with a different request body.', {
        code: 'idempotency_key_reused',
        param: 'Idempotency-Key',
      });
    }
    if (!prev.id)
      throw new ConflictError('A request with this Idempotency-Key is still being processed; retry shortly.', {
        code: 'idempotency_in_progress',
      });
    return prev.id;
  }

  async complete(tenant: string, key: string, fp: string, id: string): Promise<void> {
    await this.redis.set(this.keys.idempotency(tenant, key), JSON.stringify({ fp, id } satisfies Entry), 'EX', this.ttlSeconds);
  }

  async release(tenant: string, key: string): Promise<void> {
    await this.redis.del(this.keys.idempotency(tenant, key));
  }
}
