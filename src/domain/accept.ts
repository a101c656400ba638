/**
 * Accepting a new file, job or batch: one sequence for all of them, so that a retried request and
 * a crash at any step behave the same whatever the resource.
 *
 * The steps, each one Redis write (or one atomic script): claim the `Idempotency-Key` under the
 * record's id, create the record (its id pending: core/enqueue.ts), complete the key, queue the
 * work, clear the pending id. A process that dies after any of them leaves something the next
 * step of someone else picks up:
 * - a claim without a record: its lease lapses and a resend with the key takes it over under the
 *   same id and accepts the request itself;
 * - a record whose key is not complete: the resend finds the record, queues its work if it still
 *   waits for it, and completes the key;
 * - a record whose work is not queued: maintenance queues it (the pending set), within seconds.
 * Records are created only where none exists, so two requests holding one id make one record.
 * A failure before the work is queued removes the record; the key is freed only while no record
 * can exist under its id (its lease lapses otherwise, and a resend finds what is there).
 */
import { UnavailableError } from '../core/errors.js';
import { fingerprint, type Claim } from '../core/idempotency.js';
import { crashPoint } from '../core/crash-points.js';
import { isPending, markEnqueued, pending } from '../core/enqueue.js';
import type { BaseRecord, RecordStore } from '../core/records/store.js';
import type { Services } from '../core/services.js';
import { overBudget } from './usage.js';

export interface Acceptance<T extends BaseRecord> {
  store: RecordStore<T>;
  /** The new record, under a fresh id; it takes the key's id instead when a resend takes over. */
  record: T;
  /** The request's `Idempotency-Key` (Idempotency.keyOf), or null. */
  idempotencyKey: string | null;
  /** What identifies the request under that key (its body, its bytes' hash and fields). */
  fingerprintOf: unknown[];
  /** Queues the record's work; null when it has none (a file that stays with Ferry). */
  enqueue: ((rec: T) => Promise<void>) | null;
  /** The work spends on Gemini: a new record is refused once the tenant's monthly budget is spent. */
  budgeted?: boolean;
}

/** The record that answers the request, and whether this request made it. */
export interface Accepted<T> {
  record: T;
  created: boolean;
}

/** The points between acceptance's writes, where a test has the process die (core/crash-points.ts). */
export const ACCEPT_STEPS = ['accept.claimed', 'accept.created', 'accept.completed', 'accept.enqueued'] as const;

export async function acceptOnce<T extends BaseRecord>(services: Services, a: Acceptance<T>): Promise<Accepted<T>> {
  const key = a.idempotencyKey;
  if (!key) return createAndEnqueue(services, a, a.record, null);
  const { idempotency } = services;
  const tenant = a.record.tenant;
  const fp = fingerprint(...a.fingerprintOf);
  const claim = await claimKey(services, a, key, fp);
  if (claim.state === 'done') {
    // The first attempt may have died before queuing its work: a job id queues once, so ask again.
    await resumeWork(services, a, claim.record);
    return { record: claim.record, created: false };
  }
  crashPoint('accept.claimed');
  const stopRenewing = idempotency.hold(tenant, key, claim.owner);
  const complete = (id: string) => idempotency.complete(tenant, key, fp, id);
  // Once a record may exist under the claim's id (found, or its create sent, whatever Redis
  // answered), the key is never freed: a resend must find that record, not make a second one.
  let recordMayExist = claim.state === 'resumed';
  try {
    const made = claim.state === 'resumed' ? await a.store.get(claim.id) : null;
    recordMayExist = true;
    if (!made) return await createAndEnqueue(services, a, { ...a.record, id: claim.id }, complete);
    await resumeWork(services, a, made);
    await complete(made.id);
    return { record: made, created: false };
  } catch (err) {
    if (!recordMayExist) await idempotency.release(tenant, key, claim.owner).catch(() => null);
    throw err;
  } finally {
    stopRenewing();
  }
}

type HeldClaim = Exclude<Claim, { state: 'done' }>;

/**
 * Claims the key under the new record's id. A key whose record is gone (deleted, or past its
 * retention) is forgotten and claimed afresh: the request makes a new one.
 */
async function claimKey<T extends BaseRecord>(
  services: Services,
  a: Acceptance<T>,
  key: string,
  fp: string,
): Promise<HeldClaim | { state: 'done'; record: T }> {
  const { idempotency } = services;
  const tenant = a.record.tenant;
  for (;;) {
    const claim = await idempotency.claim(tenant, key, fp, a.record.id);
    if (claim.state !== 'done') return claim;
    const record = await a.store.get(claim.id);
    if (record) return { state: 'done', record };
    await idempotency.forget(tenant, key, claim.id);
  }
}

/** The record the first attempt made still waits for its work, which may never have been queued. */
async function resumeWork<T extends BaseRecord>(services: Services, a: Acceptance<T>, made: T): Promise<void> {
  if (!a.enqueue || made.status !== a.record.status || !(await isPending(services, made.id))) return;
  await a.enqueue(made);
  await markEnqueued(services, made.id);
}

async function createAndEnqueue<T extends BaseRecord>(
  services: Services,
  a: Acceptance<T>,
  record: T,
  complete: ((id: string) => Promise<void>) | null,
): Promise<Accepted<T>> {
  const { store, enqueue } = a;
  const refusal = a.budgeted ? await overBudget(services, record.tenant) : null;
  if (refusal) throw refusal;
  if (!(await store.create(record, enqueue ? pending(services) : []))) return answerExisting(services, a, record.id, complete);
  crashPoint('accept.created');
  try {
    await complete?.(record.id);
    crashPoint('accept.completed');
    await enqueue?.(record);
    crashPoint('accept.enqueued');
  } catch (err) {
    // Should this fail too (Redis gone), the id is still pending: maintenance queues the work later.
    await store.remove(record.id).catch(() => null);
    throw new UnavailableError(`The ${store.kind} could not be queued: ${(err as Error).message}`);
  }
  if (enqueue) await markEnqueued(services, record.id);
  return { record, created: true };
}

/** Another request holding the same key made the record first (a lapsed lease, taken over): its answer is ours. */
async function answerExisting<T extends BaseRecord>(
  services: Services,
  a: Acceptance<T>,
  id: string,
  complete: ((id: string) => Promise<void>) | null,
): Promise<Accepted<T>> {
  const existing = await a.store.get(id);
  if (!existing) throw new UnavailableError(`The ${a.store.kind} '${id}' changed while this request was accepted; send it again.`);
  await complete?.(id);
  return { record: existing, created: false };
}
