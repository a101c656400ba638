/**
 * Accepting a new file, job or batch: one sequence for all three, so that a retried request and
 * a crash at any step behave the same whatever the resource.
 *
 * With an `Idempotency-Key`, an earlier request with the same key and body answers the resource
 * it made. Otherwise: the record (its id pending until its work is queued: core/enqueue.ts), then
 * the key's answer, then the work. A crash after the record leaves work that maintenance queues
 * again, and a retry with the same key finds the record; a failure before the work is queued
 * removes the record and frees the key, so nothing half-made stays behind.
 */
import { UnavailableError } from '../core/errors.js';
import { fingerprint } from '../core/idempotency.js';
import { markEnqueued, pending } from '../core/enqueue.js';
import type { BaseRecord, RecordStore } from '../core/records/store.js';
import type { Services } from '../core/services.js';

export interface Acceptance<T extends BaseRecord> {
  store: RecordStore<T>;
  record: T;
  /** The request's `Idempotency-Key` (Idempotency.keyOf), or null. */
  idempotencyKey: string | null;
  /** What identifies the request under that key (its body, its bytes' hash and fields). */
  fingerprintOf: unknown[];
  /** Queues the record's work; null when it has none (a file that stays with Ferry). */
  enqueue: ((rec: T) => Promise<void>) | null;
}

/** The record that answers the request, and whether this request made it. */
export interface Accepted<T> {
  record: T;
  created: boolean;
}

export async function acceptOnce<T extends BaseRecord>(services: Services, a: Acceptance<T>): Promise<Accepted<T>> {
  const key = a.idempotencyKey;
  const fp = key ? fingerprint(...a.fingerprintOf) : '';
  const priorId = key ? await services.idempotency.claim(a.record.tenant, key, fp) : null;
  const prior = priorId ? await a.store.get(priorId) : null;
  if (prior) return { record: prior, created: false };
  try {
    await createAndEnqueue(services, a, key ? (id) => services.idempotency.complete(a.record.tenant, key, fp, id) : null);
  } catch (err) {
    if (key) await services.idempotency.release(a.record.tenant, key);
    throw err;
  }
  return { record: a.record, created: true };
}

async function createAndEnqueue<T extends BaseRecord>(
  services: Services,
  a: Acceptance<T>,
  remember: ((id: string) => Promise<void>) | null,
) {
  const { store, record, enqueue } = a;
  await store.create(record, enqueue ? pending(services) : []);
  try {
    await remember?.(record.id);
    await enqueue?.(record);
  } catch (err) {
    // Should this fail too (Redis gone), the id is still pending: maintenance queues the work later.
    await store.remove(record.id).catch(() => null);
    throw new UnavailableError(`The ${store.kind} could not be queued: ${(err as Error).message}`);
  }
  if (enqueue) await markEnqueued(services, record.id);
}
