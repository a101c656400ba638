/**
 * Gemini's explicit context caches: a request's shared prefix (system instruction, tools, the
 * documents it opens with) stored once, named by later requests as `cachedContent` and billed at
 * the cached-input price. `splitForCache` cuts a request into that prefix and the rest.
 */
import { createHash } from 'node:crypto';
import type { Content, GoogleGenAI, Part } from '@google/genai';
import { UpstreamError } from '../../core/errors.js';
import { measured } from './errors.js';
import type { GeminiRequest } from './mapping.js';

/** What a cache holds: everything a request has before its own question. */
export interface CachePrefix {
  model: string;
  systemInstruction?: unknown;
  tools?: unknown;
  toolConfig?: unknown;
  /** The documents (file and inline parts) the first turn opens with. */
  contents: Content[];
}

/**
 * The request cut in two: the prefix a cache can hold (with a digest that names it) and the request
 * that names the cache instead. Null when there is nothing worth caching: no documents and no system
 * instruction, or nothing left to ask once they are taken out.
 */
export function splitForCache(req: GeminiRequest): { prefix: CachePrefix; digest: string; rest: GeminiRequest } | null {
  const [first, ...others] = req.contents;
  const parts = first?.role === 'user' || first?.role === undefined ? (first?.parts ?? []) : [];
  let docs = 0;
  while (docs < parts.length && isDocument(parts[docs])) docs++;
  const { systemInstruction, tools, toolConfig, ...config } = req.config;
  if (docs === 0 && !systemInstruction) return null;
  const remaining = parts.slice(docs);
  const contents = remaining.length ? [{ ...first, parts: remaining }, ...others] : others;
  if (contents.length === 0) return null;
  const prefix: CachePrefix = {
    model: req.model,
    ...(systemInstruction ? { systemInstruction } : {}),
    ...(tools ? { tools } : {}),
    ...(toolConfig ? { toolConfig } : {}),
    contents: docs ? [{ role: 'user', parts: parts.slice(0, docs) }] : [],
  };
  const digest = createHash('sha256').update(JSON.stringify(prefix)).digest('hex').slice(0, 32);
  return { prefix, digest, rest: { ...req, contents, config } };
}

const isDocument = (p: Part) => p.fileData !== undefined || p.inlineData !== undefined;

/** The request naming `cache` in place of its prefix. */
export const namingCache = (rest: GeminiRequest, cache: string): GeminiRequest => ({
  ...rest,
  config: { ...rest.config, cachedContent: cache },
});

export interface CreatedCache {
  name: string;
  tokens: number;
  expiresAt: number;
}

export async function createCache(ai: GoogleGenAI, prefix: CachePrefix, ttlSeconds: number, displayName: string): Promise<CreatedCache> {
  const c = await measured('caches.create', () =>
    ai.caches.create({
      model: prefix.model,
      config: {
        contents: prefix.contents,
        systemInstruction: prefix.systemInstruction as never,
        tools: prefix.tools as never,
        toolConfig: prefix.toolConfig as never,
        ttl: `${ttlSeconds}s`,
        displayName,
      },
    }),
  );
  if (!c.name) throw new UpstreamError('Gemini created a cache with no name', { upstreamStatus: 502, retryable: false });
  return {
    name: c.name,
    tokens: c.usageMetadata?.totalTokenCount ?? 0,
    expiresAt: Date.parse(c.expireTime ?? '') || Date.now() + ttlSeconds * 1000,
  };
}

/** Deletes a cache; one already gone (expired, deleted) is no error. */
export async function deleteCache(ai: GoogleGenAI, name: string): Promise<void> {
  try {
    await measured('caches.delete', () => ai.caches.delete({ name }));
  } catch (err) {
    if (!(err instanceof UpstreamError && (err.upstreamStatus === 404 || err.upstreamStatus === 403))) throw err;
  }
}

/** Gemini refused a cache below the model's minimum size. */
export const isTooSmall = (err: unknown) =>
  err instanceof UpstreamError && err.upstreamStatus === 400 && /too small|min_total_token_count/i.test(err.message);

/** A call naming a cache that is gone (expired, deleted): 403 or 404, as Gemini answers it. */
export const isCacheGone = (err: unknown) =>
  err instanceof UpstreamError && (err.upstreamStatus === 403 || err.upstreamStatus === 404) && /cached ?content/i.test(err.message);
