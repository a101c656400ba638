/**
 * generateContent and streamGenerateContent (SSE with ?alt=sse, else a JSON array) handlers, and the
 * admission every model call (generate or embed) goes through.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EmulatorContext, Handler, RequestInfo } from './context.js';
import { JSON_TYPE, readJson, sendJson, sleep } from './http.js';
import { buildReply, collectFacts, servedTier, type Candidate, type Reply } from './model.js';
import { requireMethod } from './models.js';
import { withCache } from './caches.js';

/** Streamed text goes out in this many chunks. */
const STREAM_CHUNKS = 3;
/** Inline data longer than this is elided from the recorded request bodies (kept small in memory). */
const RECORDED_INLINE_LIMIT = 64 * 1024;

export const handleGenerate: Handler = (ctx, req, res, info) => generate(ctx, req, res, info, false);
export const handleStreamGenerate: Handler = (ctx, req, res, info) => generate(ctx, req, res, info, true);

/**
 * countTokens: the prompt's size, files included. Gemini reads the files to count them, so an
 * external URL it cannot fetch refuses the count as it would the call. Not charged to the quota.
 */
export const handleCountTokens: Handler = async (ctx, req, res, { params }) => {
  requireMethod(params.model, 'countTokens');
  const body = (await readJson(req, ctx.opts.maxRequestBytes)) as { contents?: unknown; generateContentRequest?: { contents?: unknown } };
  const facts = collectFacts(ctx.files, params.model, { contents: body.contents ?? body.generateContentRequest?.contents ?? [] });
  await ctx.remoteFiles.resolve(facts);
  sendJson(res, 200, { totalTokens: facts.promptTokens });
};

async function generate(
  ctx: EmulatorContext,
  req: IncomingMessage,
  res: ServerResponse,
  { url, params }: RequestInfo,
  stream: boolean,
): Promise<void> {
  const model = params.model;
  requireMethod(model, 'generateContent');
  const raw = await readJson(req, ctx.opts.maxRequestBytes);
  ctx.stats.recordGenerateRequest({ model, stream, body: forRecord(raw) });
  // A request naming a cache stands for the cache's contents followed by its own.
  const { body, cachedTokens } = withCache(ctx, model, raw as Record<string, unknown>);
  const facts = collectFacts(ctx.files, model, body);
  // A URL that cannot be fetched makes the request invalid: fetched before the quota charges it.
  await ctx.remoteFiles.resolve(facts);
  // A shed Flex call is refused at once, before the quota counts it.
  const tier = servedTier(body);
  const flexWaitMs = ctx.tiers.admit(tier);
  await admitModelCall(ctx, model, facts.promptTokens);
  if (flexWaitMs > 0) await sleep(flexWaitMs);
  const reply = buildReply(facts, body as Record<string, unknown>);
  if (cachedTokens > 0) reply.usageMetadata.cachedContentTokenCount = cachedTokens;
  ctx.billing.billWhenSent(res, model, reply.usageMetadata, tier);
  if (!stream) return sendJson(res, 200, responseJson(reply));

  const chunks = streamChunks(reply);
  if (url.searchParams.get('alt') === 'sse') return sendSse(res, chunks);
  // Without alt=sse the real API streams one JSON array of the same chunks.
  res.writeHead(200, { 'Content-Type': JSON_TYPE });
  res.end(`[${chunks.map((c) => JSON.stringify(c)).join(',\r\n')}]`);
}

/**
 * Quota after validation (a request the API refuses as invalid is not charged), and the modelled
 * service time after the quota: a refused call answers at once, as Gemini's do.
 */
export async function admitModelCall(ctx: EmulatorContext, model: string, tokens: number): Promise<void> {
  ctx.quota.admit(model, tokens);
  const delayMs = ctx.latency.next();
  if (delayMs > 0) await sleep(delayMs);
}

async function sendSse(res: ServerResponse, chunks: object[]): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  for (const chunk of chunks) {
    if (res.destroyed) return;
    res.write(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  res.end();
}

/** A candidate, or its piece in a stream: the thought part (if any) goes first, in the first piece. */
function candidateJson(c: Candidate, text: string | undefined, last: boolean, first = true): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const parts: Record<string, unknown>[] = c.thought !== undefined && first ? [{ text: c.thought, thought: true }] : [];
  if (c.functionCall) parts.push({ functionCall: c.functionCall });
  else if (text !== undefined) parts.push({ text });
  if (parts.length) out.content = { parts, role: 'model' };
  if (last) {
    out.finishReason = c.finishReason;
    if (c.safetyRatings) out.safetyRatings = c.safetyRatings;
  }
  out.index = c.index;
  return out;
}

/** A GenerateContentResponse as Gemini writes it (also each response of a batch). */
export function responseJson(reply: Reply, candidates = reply.candidates.map((c) => candidateJson(c, c.text, true)), last = true) {
  return {
    ...(reply.promptFeedback ? { promptFeedback: reply.promptFeedback } : {}),
    ...(candidates.length ? { candidates } : {}),
    ...(last ? { usageMetadata: reply.usageMetadata } : {}),
    modelVersion: reply.modelVersion,
    responseId: reply.responseId,
  };
}

/** Text replies go out in STREAM_CHUNKS pieces; the last carries finishReason and usageMetadata. */
function streamChunks(reply: Reply): object[] {
  const texts = reply.candidates.map((c) => c.text);
  if (texts.length === 0 || texts.some((t) => t === undefined)) return [responseJson(reply)];
  const pieces = texts.map((t) => splitText(t as string, STREAM_CHUNKS));
  return Array.from({ length: STREAM_CHUNKS }, (_, i) => {
    const last = i === STREAM_CHUNKS - 1;
    const candidates = reply.candidates.map((c, k) => candidateJson(c, pieces[k][i], last, i === 0));
    return responseJson(reply, candidates, last);
  });
}

/** Splits text into `k` consecutive pieces, at word boundaries when there are enough words. */
export function splitText(text: string, k: number): string[] {
  const tokens = text.split(/(?<=\s)(?=\S)/);
  const units = tokens.length >= k ? tokens : [...text];
  const n = units.length;
  return Array.from({ length: k }, (_, i) => units.slice(Math.floor((i * n) / k), Math.floor(((i + 1) * n) / k)).join(''));
}

/** The request body as recorded in stats, with very large inline data elided. */
function forRecord(body: unknown): unknown {
  const contents = (body as { contents?: unknown } | undefined)?.contents;
  if (!Array.isArray(contents)) return body;
  const elide = (part: unknown) => {
    const data = (part as { inlineData?: { data?: unknown } } | null)?.inlineData?.data;
    if (typeof data !== 'string' || data.length <= RECORDED_INLINE_LIMIT) return part;
    const p = part as { inlineData: object };
    return { ...p, inlineData: { ...p.inlineData, data: `<${data.length} base64 characters elided>` } };
  };
  return {
    ...(body as object),
    contents: contents.map((c) =>
      Array.isArray((c as { parts?: unknown } | null)?.parts) ? { ...c, parts: (c as { parts: unknown[] }).parts.map(elide) } : c,
    ),
  };
}
