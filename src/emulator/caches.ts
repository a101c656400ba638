/**
 * Explicit context caching (`cachedContents`) routes: create, get, list, update the TTL, delete; a
 * generateContent naming one sees its contents first, bills them as `cachedContentTokenCount`
 * (inside `promptTokenCount`, as Gemini reports it), and refuses its own system instruction or
 * tools. A cache below the model's minimum (1,024 tokens, 4,096 for Pro) is refused; storage is
 * billed per token-hour for as long as a cache lives.
 */
import { randomBytes } from 'node:crypto';
import type { EmulatorContext, Handler } from './context.js';
import { invalidArgument, notFound, RpcError } from './errors.js';
import { readJson, sendJson } from './http.js';
import { collectFacts } from './model.js';
import { requireMethod } from './models.js';
import type { CachedContent } from './cache-store.js';

type Json = Record<string, unknown>;

const DEFAULT_TTL_MS = 3600_000;
const minTokens = (model: string) => (/pro/i.test(model) ? 4096 : 1024);

function ttlMs(body: Json): number {
  if (typeof body.expireTime === 'string') {
    const at = Date.parse(body.expireTime);
    if (!Number.isFinite(at)) throw invalidArgument("Invalid value at 'cached_content.expire_time': not a timestamp.");
    return at - Date.now();
  }
  if (body.ttl === undefined) return DEFAULT_TTL_MS;
  const m = typeof body.ttl === 'string' ? /^(\d+(?:\.\d+)?)s$/.exec(body.ttl) : null;
  if (!m)
    throw invalidArgument(
      `Invalid value at 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), ${JSON.stringify(body.ttl)}`,
    );
  return Number(m[1]) * 1000;
}

const resource = (c: CachedContent) => ({
  name: c.name,
  model: c.model,
  ...(c.displayName ? { displayName: c.displayName } : {}),
  createTime: new Date(c.createdAt).toISOString(),
  updateTime: new Date(c.createdAt).toISOString(),
  expireTime: new Date(c.expiresAt).toISOString(),
  usageMetadata: { totalTokenCount: c.tokens },
});

export const handleCreateCache: Handler = async (ctx, req, res) => {
  const body = (await readJson(req, ctx.opts.maxRequestBytes)) as Json;
  if (typeof body.model !== 'string' || !body.model)
    throw invalidArgument('* CreateCachedContentRequest.cached_content.model: model is required.\n');
  const model = body.model.startsWith('models/') ? body.model : `models/${body.model}`;
  requireMethod(model, 'createCachedContent');
  const contents = Array.isArray(body.contents) ? body.contents : [];
  const facts = collectFacts(ctx.files, model, {
    contents: contents.length ? contents : [{ role: 'user', parts: [{ text: '' }] }],
    systemInstruction: body.systemInstruction,
  });
  await ctx.remoteFiles.resolve(facts);
  const min = minTokens(model);
  if (facts.promptTokens < min) {
    throw invalidArgument(`Cached content is too small. total_token_count=${facts.promptTokens}, min_total_token_count=${min}`);
  }
  const now = Date.now();
  const cache: CachedContent = {
    name: `cachedContents/${randomBytes(9).toString('hex')}`,
    model,
    displayName: typeof body.displayName === 'string' ? body.displayName : undefined,
    contents,
    systemInstruction: body.systemInstruction,
    tools: body.tools,
    toolConfig: body.toolConfig,
    tokens: facts.promptTokens,
    createdAt: now,
    expiresAt: now + ttlMs(body),
  };
  ctx.caches.add(cache);
  sendJson(res, 200, resource(cache));
};

const found = (ctx: EmulatorContext, id: string) => {
  const c = ctx.caches.get(`cachedContents/${id}`);
  if (!c) throw notFound('CachedContent not found (or permission denied)');
  return c;
};

export const handleGetCache: Handler = async (ctx, _req, res, { params }) => sendJson(res, 200, resource(found(ctx, params.id)));

export const handleListCaches: Handler = async (ctx, _req, res) => sendJson(res, 200, { cachedContents: ctx.caches.list().map(resource) });

/** Only the expiry may change (`ttl` or `expireTime`). */
export const handleUpdateCache: Handler = async (ctx, req, res, { params }) => {
  const c = found(ctx, params.id);
  const body = (await readJson(req, ctx.opts.maxRequestBytes)) as Json;
  const other = Object.keys(body).find((k) => k !== 'ttl' && k !== 'expireTime' && k !== 'name');
  if (other) throw invalidArgument(`Only ttl or expire_time can be updated; "${other}" cannot.`);
  c.expiresAt = Date.now() + ttlMs(body);
  sendJson(res, 200, resource(c));
};

export const handleDeleteCache: Handler = async (ctx, _req, res, { params }) => {
  if (!ctx.caches.delete(`cachedContents/${params.id}`)) throw notFound('CachedContent not found (or permission denied)');
  sendJson(res, 200, {});
};

/**
 * The request a generateContent naming `cachedContent` stands for (the cache's contents first, its
 * system instruction and tools), and how many of its tokens the cache holds; the body as it is without one.
 */
export function withCache(ctx: EmulatorContext, model: string, body: Json): { body: Json; cachedTokens: number } {
  if (body.cachedContent === undefined) return { body, cachedTokens: 0 };
  const c = typeof body.cachedContent === 'string' ? ctx.caches.get(body.cachedContent) : undefined;
  if (!c) throw new RpcError(403, 'CachedContent not found (or permission denied)', { status: 'PERMISSION_DENIED' });
  if (c.model.replace(/^models\//, '') !== model.replace(/^models\//, '')) {
    throw invalidArgument(`Model used by GenerateContent request (${model}) and CachedContent (${c.model}) has to be the same.`);
  }
  if (body.systemInstruction !== undefined || body.tools !== undefined || body.toolConfig !== undefined) {
    throw invalidArgument(
      'CachedContent can not be used with GenerateContent request setting system_instruction, tools or tool_config.\n\nProposed fix: move those values to CachedContent from GenerateContent request.',
    );
  }
  const contents = [...c.contents, ...(Array.isArray(body.contents) ? body.contents : [])];
  const merged: Json = { ...body, contents, systemInstruction: c.systemInstruction, tools: c.tools, toolConfig: c.toolConfig };
  delete merged.cachedContent;
  return { body: merged, cachedTokens: c.tokens };
}
