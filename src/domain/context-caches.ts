/**
 * Automatic context caching, its rules: requests of a tenant that open with the same prefix (the
 * same documents, instructions and tools, on one model) are counted as they come; from the third
 * within SIGHTING_WINDOW_SECONDS, where the prices say the cached reads will pay for the storage,
 * one Gemini cache holds the prefix and the requests name it. The cache lives CACHE_TTL_SECONDS at
 * most (a batch deletes the ones it used when it ends); its storage is counted in the usage ledger
 * for that lifetime when it is made. A prefix Gemini finds too small is not tried again in the window.
 */
import { pricesFor } from '../core/prices.js';
import { nanoUsd, zeroCounts } from '../core/records/usage.js';
import type { Services } from '../core/services.js';
import { Lease } from '../core/lease.js';
import { recordCounts } from './usage.js';

/** Requests sharing a prefix are counted over this window (renewed by each). */
export const SIGHTING_WINDOW_SECONDS = 600;
/** A cache's lifetime: the most its storage can cost. */
export const CACHE_TTL_SECONDS = 900;
/** A cache is made for a prefix seen this often (the first two calls pay full price). */
const MIN_SIGHTINGS = 3;
/** A cache this close to its end is not handed out: a call naming it could find it gone. */
const MIN_LIFE_LEFT_MS = 60_000;

export interface PrefixState {
  sightings: number;
  /** The cache holding it, while it has MIN_LIFE_LEFT_MS to live. */
  cache: string | null;
  tooSmall: boolean;
}

/** Counts a request opening with the prefix `digest`, and answers what is known of it. */
export async function sightPrefix(services: Services, tenant: string, digest: string): Promise<PrefixState> {
  const key = services.keys.contextCache(tenant, digest);
  const [[, sightings], , [, h]] = (await services.redis
    .multi()
    .hincrby(key, 'sightings', 1)
    .expire(key, SIGHTING_WINDOW_SECONDS)
    .hgetall(key)
    .exec()) as [[unknown, number], unknown, [unknown, Record<string, string>]];
  const live = h.name && Number(h.expires_at) - Date.now() > MIN_LIFE_LEFT_MS;
  return { sightings, cache: live ? h.name : null, tooSmall: h.too_small === '1' };
}

/**
 * A cache pays when the calls after the first, reading the prefix at the cached price, save more
 * than its storage costs over its lifetime (per token: Gemini bills both by the prefix's tokens).
 */
export function worthCaching(services: Services, model: string, state: PrefixState): boolean {
  if (state.tooSmall || state.sightings < MIN_SIGHTINGS) return false;
  const p = pricesFor(services.config.prices, model);
  if (!p) return false;
  const savedPerCall = p.input - p.cachedInput;
  return (state.sightings - 1) * savedPerCall > p.cacheStoragePerHour * (CACHE_TTL_SECONDS / 3600);
}

/** Held by the one process making the prefix's cache (the others call without it meanwhile). */
export const prefixLease = (services: Services, tenant: string, digest: string) =>
  new Lease(services.redis, services.keys.contextCacheLock(tenant, digest), 30_000);

/**
 * Records a cache made for the prefix: its name for the next calls, the batch that uses it (to
 * delete it at the end), and its storage for its whole lifetime in the usage ledger (once: named by the cache).
 */
export async function cacheMade(
  services: Services,
  c: { tenant: string; digest: string; model: string; name: string; tokens: number; expiresAt: number; batchId: string | null },
): Promise<void> {
  await services.redis.hset(services.keys.contextCache(c.tenant, c.digest), { name: c.name, expires_at: c.expiresAt, tokens: c.tokens });
  if (c.batchId) await cacheUsedBy(services, c.batchId, c.tenant, c.digest, c.name);
  const p = pricesFor(services.config.prices, c.model);
  const hours = Math.max(0, c.expiresAt - Date.now()) / 3600_000;
  const counts = { ...zeroCounts(), cost_storage: nanoUsd(((p?.cacheStoragePerHour ?? 0) * c.tokens * hours) / 1e6) };
  const call = { tenant: c.tenant, model: c.model, tier: 'standard' as const, batchId: c.batchId, callId: `cache-storage:${c.name}` };
  await recordCounts(services, call, counts);
}

/** A batch using a cache that is already there: deleted with the batch too. */
export async function cacheUsedBy(services: Services, batchId: string, tenant: string, digest: string, name: string): Promise<void> {
  await services.redis.sadd(services.keys.batchContextCaches(batchId), `${tenant}|${digest}|${name}`);
}

/** Gemini refused the prefix as too small: not tried again within the window. */
export async function prefixTooSmall(services: Services, tenant: string, digest: string): Promise<void> {
  await services.redis.hset(services.keys.contextCache(tenant, digest), 'too_small', '1');
}

/** The cache is gone (expired, deleted): forgotten, so the next call makes another or goes without. */
export async function forgetCache(services: Services, tenant: string, digest: string, name: string): Promise<void> {
  const key = services.keys.contextCache(tenant, digest);
  if ((await services.redis.hget(key, 'name')) === name) await services.redis.hdel(key, 'name', 'expires_at', 'tokens');
}

/** The caches a batch used (to delete when it ends). */
export async function batchCaches(services: Services, batchId: string): Promise<Array<{ tenant: string; digest: string; name: string }>> {
  const members = await services.redis.smembers(services.keys.batchContextCaches(batchId));
  return members.map((m) => {
    const [tenant, digest, name] = m.split('|');
    return { tenant, digest, name };
  });
}

export async function dropBatchCaches(services: Services, batchId: string): Promise<void> {
  await services.redis.del(services.keys.batchContextCaches(batchId));
}
