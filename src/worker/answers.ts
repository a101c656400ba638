/**
 * One Gemini call for a job, answered in its type's shape: a chat completion (or its chunks), or a
 * response (or its events). A streamed answer goes through the job's Redis Stream as it comes; the
 * caller is told when the first part has gone out, after which the call cannot be tried again.
 */
import type { GenerateContentResponse, ServiceTier } from '@google/genai';
import { UpstreamError } from '../core/errors.js';
import { fileUrlParts } from './images.js';
import type { JobRecord, JobType } from '../core/records/jobs.js';
import type { Services } from '../core/services.js';
import { chatRequestOf, completionIds, embeddingRequestOf, responseRequestOf, wireTier } from '../domain/jobs.js';
import type { BilledTier } from '../core/prices.js';
import { encodeVector, type EmbeddingResult } from '../openai/embeddings.js';
import { embedTexts } from '../providers/gemini/embeddings.js';
import { jobStream } from '../domain/job-stream.js';
import { viaContextCache } from './context-cache.js';
import type { GeminiUsage } from '../domain/usage.js';
import { FINAL_EVENT, responseIdOf, responseObject, type ResponseEvent } from '../openai/response-object.js';
import { generate, generateStream } from '../providers/gemini/generate.js';
import type { GeminiProvider } from '../providers/gemini/index.js';
import {
  toChatCompletion,
  toChunks,
  toGeminiRequest,
  usageOf,
  type FetchedImage,
  type GeminiRequest,
} from '../providers/gemini/mapping.js';
import { OutputWriter, toGeminiResponseRequest, type ResponseInputs } from '../providers/gemini/responses.js';

/** What a job's parts reference, made ready for the call (a chat completion uses its files and images). */
export type Inputs = ResponseInputs;

export interface Answer {
  result: Record<string, unknown>;
  promptTokens: number | undefined;
  /** What the call is billed for (for embeddings, which Gemini reports no usage for, Ferry's own count). */
  usage?: GeminiUsage;
}

interface CallDeps {
  services: Services;
  gemini: GeminiProvider;
}

/** Gemini's request for a job, of whichever type, at `tier` (callTierOf decides it; Batch Mode lines go as standard). */
export function geminiRequestFor(rec: JobRecord, inputs: Inputs, tier: BilledTier): GeminiRequest {
  const items = [...(rec.context ?? []), ...(rec.input_items ?? [])];
  const request =
    rec.type !== 'response'
      ? toGeminiRequest(chatRequestOf(rec), inputs.files, inputs.images)
      : toGeminiResponseRequest(responseRequestOf(rec), items, inputs);
  return atTier(request, tier);
}

function atTier(request: GeminiRequest, tier: BilledTier): GeminiRequest {
  const config = { ...request.config };
  if (tier === 'flex' || tier === 'priority') config.serviceTier = tier as ServiceTier;
  else delete config.serviceTier;
  return { ...request, config };
}

/** A whole Gemini answer as the job's result: the chat completion, or the response's outcome. */
export async function resultFor(rec: JobRecord, r: GenerateContentResponse): Promise<Record<string, unknown>> {
  if (rec.type !== 'response') return toChatCompletion(r, completionIds(rec)) as unknown as Record<string, unknown>;
  const writer = outputWriter(rec);
  await writer.add(r);
  return { ...(await writer.finish()) };
}

function outputWriter(rec: JobRecord, emit?: (e: ResponseEvent) => Promise<void>): OutputWriter {
  const idBase = responseIdOf(rec.id).slice('resp_'.length);
  return new OutputWriter(idBase, emit, responseRequestOf(rec).parallel_tool_calls === false);
}

export async function answerChat(deps: CallDeps, rec: JobRecord, inputs: Inputs, tier: BilledTier, onFirst: () => void): Promise<Answer> {
  const request = geminiRequestFor(rec, inputs, tier);
  const ids = completionIds(rec);
  if (!rec.stream) {
    const r = await viaContextCache(deps, rec, request, (req) => generate(deps.gemini.ai, req));
    const result = { ...(await resultFor(rec, r)), service_tier: wireTier(tier) };
    return { result, promptTokens: r.usageMetadata?.promptTokenCount, usage: r.usageMetadata };
  }
  const stream = jobStream(deps.services);
  let last: GenerateContentResponse | undefined;
  let first = true;
  const onChunk = async (chunk: GenerateContentResponse) => {
    for (const c of toChunks(chunk, ids, first)) await stream.appendChunk(rec.id, c);
    if (first) onFirst();
    first = false;
    last = chunk;
  };
  await viaContextCache(deps, rec, request, (req) => generateStream(deps.gemini.ai, req, onChunk));
  const usage = last ? (usageOf(last) ?? null) : null;
  await stream.appendUsage(rec.id, usage);
  return { result: { streamed: true, usage }, promptTokens: last?.usageMetadata?.promptTokenCount, usage: last?.usageMetadata };
}

/** An embeddings job's calls (Gemini embeds up to 100 texts a call): the vectors, as base64. */
export async function answerEmbedding(deps: CallDeps, rec: JobRecord): Promise<Answer> {
  const body = embeddingRequestOf(rec);
  const texts = typeof body.input === 'string' ? [body.input] : body.input;
  const vectors = await embedTexts(deps.gemini.ai, { model: rec.model, texts, dimensions: body.dimensions ?? undefined });
  const result: EmbeddingResult = { vectors: vectors.map(encodeVector), prompt_tokens: rec.input_tokens ?? 0 };
  // Gemini reports no usage for embeddings: the ledger counts the tokens the answer reports, Ferry's own count.
  return {
    result: { ...result },
    promptTokens: rec.input_tokens,
    usage: { promptTokenCount: rec.input_tokens ?? 0, candidatesTokenCount: 0 },
  };
}

/** The response's file URLs all fetched here, none left for Gemini to fetch. */
const fetchedUrlParts = (allowPrivate: boolean, rec: JobRecord, images: Map<string, FetchedImage>) =>
  fileUrlParts(allowPrivate, rec, images, { fetchAll: true });

/** How each type of job is answered. */
export const ANSWERS: Record<
  JobType,
  (deps: CallDeps, rec: JobRecord, inputs: Inputs, tier: BilledTier, onFirst: () => void) => Promise<Answer>
> = {
  'chat.completion': answerChat,
  response: answerResponse,
  embedding: answerEmbedding,
};

/**
 * A response's call. Its result is the outcome (output items, status, usage), from which the
 * response object is built at every read. Streamed, the events are numbered from 1: the API sends
 * `response.created` (0) itself from the record, and `response.in_progress` goes out with the
 * first part of the answer, so a quota wait before it leaves nothing sent.
 */
export async function answerResponse(
  deps: CallDeps,
  rec: JobRecord,
  inputs: Inputs,
  tier: BilledTier,
  onFirst: () => void,
): Promise<Answer> {
  let request = geminiRequestFor(rec, inputs, tier);
  let last: GenerateContentResponse | undefined;
  if (!rec.stream) {
    last = await viaContextCache(deps, rec, request, (req) => generate(deps.gemini.ai, req)).catch(async (err) => {
      if (!refusedUrl(err, inputs)) throw err;
      request = geminiRequestFor(
        rec,
        { ...inputs, urls: await fetchedUrlParts(deps.services.config.allowPrivateNetworks, rec, inputs.images) },
        tier,
      );
      return generate(deps.gemini.ai, request);
    });
    const result = { ...(await resultFor(rec, last)), service_tier: wireTier(tier) };
    return { result, promptTokens: last.usageMetadata?.promptTokenCount, usage: last.usageMetadata };
  }
  const events = new EventLog(deps.services, rec, onFirst);
  const writer = outputWriter(rec, (e) => events.send(e));
  const onChunk = async (chunk: GenerateContentResponse) => {
    last = chunk;
    await writer.add(chunk);
  };
  await viaContextCache(deps, rec, request, (req) => generateStream(deps.gemini.ai, req, onChunk));
  const outcome = { ...(await writer.finish()), service_tier: wireTier(tier) };
  await events.send({ type: FINAL_EVENT[outcome.status], response: responseObject(rec, outcome.status, outcome) });
  return { result: { ...outcome }, promptTokens: last?.usageMetadata?.promptTokenCount, usage: last?.usageMetadata };
}

/**
 * Gemini would not fetch a URL it was given (a host it cannot reach, a size it will not take: the
 * limits are not published), so the worker fetches the files itself and sends them inline.
 */
function refusedUrl(err: unknown, inputs: Inputs): boolean {
  const byUrl = [...inputs.urls.values()].some((p) => p.fileData);
  return byUrl && err instanceof UpstreamError && err.upstreamStatus === 400 && /url|fetch/i.test(err.message);
}

/** A response's stream events, numbered and appended to the job's stream; the first goes with `response.in_progress`. */
class EventLog {
  private sequence = 1;

  constructor(
    private readonly services: Services,
    private readonly rec: JobRecord,
    private readonly onFirst: () => void,
  ) {}

  async send(event: ResponseEvent): Promise<void> {
    if (this.sequence === 1) {
      await this.append({ type: 'response.in_progress', response: responseObject(this.rec, 'in_progress') });
      this.onFirst();
    }
    await this.append(event);
  }

  private append(event: ResponseEvent) {
    return jobStream(this.services).appendChunk(this.rec.id, { ...event, sequence_number: this.sequence++ });
  }
}
