/**
 * `Idempotency-Key`: the same key with the same body, within the retention window, answers the
 * original resource; the same key with a different body is 422. Keys are scoped per tenant.
 *
 * A request claims its key under the id its record will have, as a short lease that it renews
 * while it works. A process that dies while accepting leaves that lease to lapse; the next request
 * with the key then takes it over under the same id, so it finds the record the first attempt
 * made, or makes it itself (records are created only where none exists: never a second one).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BadRequestError, ConflictError, UnprocessableError } from './errors.js';
import type { Keys } from './keys.js';
import { withScripts, type Scripted } from './scripts/index.js';

export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** How long a claim outlives its holder's last renewal: the longest a resend waits after a crash. */
export const IDEMPOTENCY_LEASE_MS = 10_000;

/**
 * What a claim found. `first`: nobody had the key; `resumed`: a holder's lease had lapsed and this
 * request takes over under its id (its record may exist). Both hold the key (`owner`) until
 * `complete` or `release`. `done`: the key's record was made, under `id`.
 */
export type Claim = { state: 'first' | 'resumed'; id: string; owner: string } | { state: 'done'; id: string };

export function fingerprint(...parts: unknown[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? p : JSON.stringify(p)).update('\0');
  return h.digest('hex');
}

export class Idempotency {
  private readonly redis: Scripted;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly leaseMs = IDEMPOTENCY_LEASE_MS,
    private readonly ttlSeconds = IDEMPOTENCY_TTL_SECONDS,
  ) {
    this.redis = withScripts(redis);
  }

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
   * Claims `key` for a request with fingerprint `fp`, proposing `id` for the record it would
   * make. Throws 422 for another body under the key, and 409 (with the time left on the lease)
   * while another live request holds it.
   */
  async claim(tenant: string, key: string, fp: string, id: string): Promise<Claim> {
    const owner = randomUUID();
    const [outcome, found, waitMs] = await this.redis.ferryIdemClaim(
      this.keys.idempotency(tenant, key),
      fp,
      id,
      owner,
      this.leaseMs,
      this.ttlSeconds,
    );
    if (outcome === 'mismatch') {
      throw new UnprocessableError('This Idempotency-Key was used with a different request body.', {
        code: 'idempotency_key_reused',
        param: 'Idempotency-Key',
      });
    }
    if (outcome === 'busy') {
      const seconds = Math.max(1, Math.ceil(Number(waitMs) / 1000));
      throw new ConflictError(`A request with this Idempotency-Key is still being processed; retry in ${seconds} s.`, {
        code: 'idempotency_in_progress',
        retryAfterSeconds: seconds,
      });
    }
    if (outcome === 'done') return { state: 'done', id: found };
    return { state: outcome === 'claimed' ? 'first' : 'resumed', id: found, owner };
  }

  /** Renews the claim every third of its lease until the answer is called. */
  hold(tenant: string, key: string, owner: string): () => void {
    const k = this.keys.idempotency(tenant, key);
    const timer = setInterval(
      () => {
        // A renewal that fails (Redis away) changes nothing: the claim lapses and a resend takes it over.
        this.redis.ferryIdemRenew(k, owner, this.leaseMs).catch(() => null);
      },
      Math.max(100, Math.floor(this.leaseMs / 3)),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  /** The key answers record `id` from now on. */
  async complete(tenant: string, key: string, fp: string, id: string): Promise<void> {
    await this.redis.set(this.keys.idempotency(tenant, key), JSON.stringify({ fp, id }), 'EX', this.ttlSeconds);
  }

  /** Forgets the key if it answers record `id`, which no longer exists: the next request starts afresh. */
  async forget(tenant: string, key: string, id: string): Promise<void> {
    await this.redis.ferryIdemForget(this.keys.idempotency(tenant, key), id);
  }

  /** Frees the key if `owner` still holds it (its request failed before making a record). */
  async release(tenant: string, key: string, owner: string): Promise<void> {
    await this.redis.ferryIdemRelease(this.keys.idempotency(tenant, key), owner);
  }
}
