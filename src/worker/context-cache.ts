/**
 * A call through a context cache where one pays (domain/context-caches.ts): the request's shared
 * prefix is named as a Gemini cache, made here by whichever call finds it worth making first. A
 * cache that turns out gone is forgotten and the call made whole; a cache that cannot be made
 * leaves the call as it was. Caching never fails a call.
 */
import { modelIdOf } from '../core/models.js';
import type { JobRecord } from '../core/records/jobs.js';
import type { Services } from '../core/services.js';
import {
  CACHE_TTL_SECONDS,
  batchCaches,
  cacheMade,
  cacheUsedBy,
  dropBatchCaches,
  forgetCache,
  prefixLease,
  prefixTooSmall,
  sightPrefix,
  worthCaching,
} from '../domain/context-caches.js';
import { createCache, deleteCache, isCacheGone, isTooSmall, namingCache, splitForCache } from '../providers/gemini/caches.js';
import type { GeminiProvider } from '../providers/gemini/index.js';
import type { GeminiRequest } from '../providers/gemini/mapping.js';

interface Deps {
  services: Services;
  gemini: GeminiProvider;
}

type CacheUse = { request: GeminiRequest; cache: { name: string; digest: string } | null };

/** Makes the call with the request's prefix from a cache where there is (or should now be) one. */
export async function viaContextCache<T>(
  deps: Deps,
  rec: JobRecord,
  request: GeminiRequest,
  call: (r: GeminiRequest) => Promise<T>,
): Promise<T> {
  const use = await cacheFor(deps, rec, request);
  if (!use.cache) return call(request);
  try {
    return await call(use.request);
  } catch (err) {
    if (!isCacheGone(err)) throw err;
    await forgetCache(deps.services, rec.tenant, use.cache.digest, use.cache.name).catch(() => {});
    return call(request);
  }
}

async function cacheFor(deps: Deps, rec: JobRecord, request: GeminiRequest): Promise<CacheUse> {
  const { services } = deps;
  const split = services.config.contextCaching === 'off' ? null : splitForCache(request);
  if (!split) return { request, cache: null };
  const { tenant } = rec;
  try {
    const state = await sightPrefix(services, tenant, split.digest);
    if (state.cache) {
      if (rec.batch_id) await cacheUsedBy(services, rec.batch_id, tenant, split.digest, state.cache);
      return { request: namingCache(split.rest, state.cache), cache: { name: state.cache, digest: split.digest } };
    }
    const lease = prefixLease(services, tenant, split.digest);
    if (!worthCaching(services, modelIdOf(rec.model), state) || !(await lease.acquire())) return { request, cache: null };
    try {
      const made = await createCache(deps.gemini.ai, split.prefix, CACHE_TTL_SECONDS, `ferry ${tenant}`);
      await cacheMade(services, { tenant, digest: split.digest, model: modelIdOf(rec.model), batchId: rec.batch_id ?? null, ...made });
      return { request: namingCache(split.rest, made.name), cache: { name: made.name, digest: split.digest } };
    } finally {
      await lease.release();
    }
  } catch (err) {
    if (isTooSmall(err)) await prefixTooSmall(services, tenant, split.digest).catch(() => {});
    else services.logger.warn({ err, tenant, model: rec.model }, 'no context cache for this call: it is made without one');
    return { request, cache: null };
  }
}

/** Deletes the caches a batch's lines used, once it has ended (one left behind expires on its own). */
export async function releaseBatchCaches(deps: Deps, batchId: string): Promise<void> {
  for (const c of await batchCaches(deps.services, batchId)) {
    await deleteCache(deps.gemini.ai, c.name);
    await forgetCache(deps.services, c.tenant, c.digest, c.name);
  }
  await dropBatchCaches(deps.services, batchId);
}
