/**
 * Every Lua script Ferry runs, registered once on each records connection (createServices) as a
 * named command: one table of name, key count and source, and the typed commands it adds.
 * The sources live beside this file, a module per concern.
 */
import type { Redis } from 'ioredis';
import { ADMIT, REFUSED, SUCCEEDED } from './admission.js';
import { MARK_LINE, RAISE_FED } from './batches.js';
import { RECORD_SESSION } from './early-uploads.js';
import { CLAIM, FORGET, RELEASE_CLAIM, RENEW_CLAIM } from './idempotency.js';
import { ACQUIRE } from './limits.js';
import { RELEASE, RENEW } from './locks.js';
import { CREATE, TRANSITION, UPDATE_IF_EXISTS } from './records.js';
import { RECORD_USAGE } from './usage.js';

/** Every script names its keys (each in one slot of a cluster: see Keys). */
const COMMANDS: Record<string, { numberOfKeys: number; lua: string }> = {
  ferryCreate: { numberOfKeys: 1, lua: CREATE },
  ferryHsetIfExists: { numberOfKeys: 1, lua: UPDATE_IF_EXISTS },
  ferryTransition: { numberOfKeys: 1, lua: TRANSITION },
  ferryMarkLine: { numberOfKeys: 2, lua: MARK_LINE },
  ferryRaiseFed: { numberOfKeys: 1, lua: RAISE_FED },
  ferrySlotAcquire: { numberOfKeys: 1, lua: ACQUIRE },
  ferryAdmit: { numberOfKeys: 4, lua: ADMIT },
  ferryAdmitSucceeded: { numberOfKeys: 1, lua: SUCCEEDED },
  ferryAdmitRefused: { numberOfKeys: 1, lua: REFUSED },
  ferryLockRenew: { numberOfKeys: 1, lua: RENEW },
  ferryLockRelease: { numberOfKeys: 1, lua: RELEASE },
  ferryIdemClaim: { numberOfKeys: 1, lua: CLAIM },
  ferryIdemRenew: { numberOfKeys: 1, lua: RENEW_CLAIM },
  ferryIdemRelease: { numberOfKeys: 1, lua: RELEASE_CLAIM },
  ferryIdemForget: { numberOfKeys: 1, lua: FORGET },
  ferryEarlyRecord: { numberOfKeys: 1, lua: RECORD_SESSION },
  ferryRecordUsage: { numberOfKeys: 7, lua: RECORD_USAGE },
};

/** A connection with Ferry's scripts as commands. */
export type Scripted = Redis & {
  ferryCreate(key: string, ttlSeconds: number, token: string, ...fields: string[]): Promise<number>;
  ferryHsetIfExists(key: string, channel: string, ...args: string[]): Promise<number>;
  ferryTransition(
    key: string,
    channel: string,
    allowed: string,
    answer: '0' | '1',
    initialPairs: number,
    ...args: string[]
  ): Promise<number | string[]>;
  ferryMarkLine(done: string, lines: string, line: number, field: string): Promise<Array<string | number | null>>;
  ferryRaiseFed(lines: string, to: number): Promise<number>;
  ferrySlotAcquire(key: string, ...args: (string | number)[]): Promise<number>;
  ferryAdmit(h: string, waiters: string, tenants: string, tenantWaiters: string, ...args: (string | number)[]): Promise<number[]>;
  ferryAdmitSucceeded(h: string, ...args: (string | number)[]): Promise<number>;
  ferryAdmitRefused(h: string, ...args: (string | number)[]): Promise<number>;
  ferryLockRenew(key: string, token: string, ttlMs: string): Promise<number>;
  ferryLockRelease(key: string, token: string): Promise<number>;
  ferryEarlyRecord(key: string, url: string, offset: number, mime: string, ttlSeconds: number): Promise<string>;
  ferryIdemClaim(
    key: string,
    fp: string,
    id: string,
    owner: string,
    leaseMs: number,
    ttlSeconds: number,
  ): Promise<[string, string, number]>;
  ferryIdemRenew(key: string, owner: string, leaseMs: number): Promise<number>;
  ferryIdemRelease(key: string, owner: string): Promise<number>;
  ferryIdemForget(key: string, id: string): Promise<number>;
  ferryRecordUsage(call: string, day: string, hour: string, batch: string, month: string, ...args: (string | number)[]): Promise<number>;
};

/** Adds the scripts to a connection (once: a connection that has them is answered as it is). */
export function withScripts(redis: Redis): Scripted {
  if (!('ferryTransition' in redis)) {
    for (const [name, def] of Object.entries(COMMANDS)) redis.defineCommand(name, def);
  }
  return redis as Scripted;
}
