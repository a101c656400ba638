/**
 * Embeddings as Gemini answers them: `models/{model}:embedContent` (one content) and
 * `models/{model}:batchEmbedContents` (at most 100 requests: what `@google/genai`'s
 * models.embedContent calls on the Developer API, one request per content), and the lines of an
 * embeddings batch (batches.ts).
 *
 * A vector is drawn from a generator seeded with the SHA-256 of the text, so the same text always
 * gets the same vector. The full vector (3072 values for gemini-embedding-001) has unit length; a
 * smaller outputDimensionality gets its prefix, not normalized again, as Gemini's Matryoshka
 * embeddings are ("the 3072 dimension embedding is normalized; for other dimensions you need to
 * normalize them"). The Developer API's answers carry no usageMetadata; the words of the texts
 * are still charged against the model's tpm quota, as generate prompts are.
 */

import { createHash } from 'node:crypto';
import type { Handler } from './context.js';
import { invalidArgument } from './errors.js';
import { admitModelCall } from './generate.js';
import { readJson, sendJson } from './http.js';
import { countWords } from './model.js';
import { modelEntry, requireMethod, type ModelEntry } from './models.js';
import type { EmbedInput } from './types.js';

/** Gemini: "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch". */
export const MAX_EMBED_REQUESTS = 100;
const DEFAULT_DIMENSIONS = 3072;
/** Values are sent with float32's precision, as Gemini sends them. */
const SIGNIFICANT_DIGITS = 9;
const TASK_TYPES = new Set([
  'TASK_TYPE_UNSPECIFIED',
  'RETRIEVAL_QUERY',
  'RETRIEVAL_DOCUMENT',
  'SEMANTIC_SIMILARITY',
  'CLASSIFICATION',
  'CLUSTERING',
  'QUESTION_ANSWERING',
  'FACT_VERIFICATION',
  'CODE_RETRIEVAL_QUERY',
]);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks one EmbedContentRequest for the model `entry`. `where` names it in messages; a request of
 * batchEmbedContents must name the model of the call (`modelRequired`), elsewhere the path names it.
 */
export function embedInput(entry: ModelEntry, request: unknown, where: string, modelRequired = false): EmbedInput {
  if (!isObject(request)) throw invalidArgument(`* ${where}: the request must be a JSON object.\n`);
  checkRequestModel(entry, request.model, where, modelRequired);
  const { taskType, outputDimensionality } = request;
  if (taskType !== undefined && !TASK_TYPES.has(taskType as string)) {
    throw invalidArgument(
      `Invalid value at '${where}.task_type' (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), ${JSON.stringify(taskType)}`,
    );
  }
  const text = contentText(request.content, where);
  return { text, dimensions: dimensionsOf(entry, outputDimensionality, where), tokens: countWords(text) };
}

/** A line of an embeddings batch of `model`: checked as embedContent checks a request. */
export function embedBatchInput(model: string, request: unknown): EmbedInput {
  return embedInput(requireMethod(model, 'asyncBatchEmbedContent') as ModelEntry, request, 'EmbedContentRequest');
}

function checkRequestModel(entry: ModelEntry, model: unknown, where: string, required: boolean): void {
  if (model === undefined) {
    if (required) throw invalidArgument(`* ${where}.model: model is required.\n`);
    return;
  }
  if (typeof model !== 'string' || model.replace(/^models\//, '') !== entry.id) {
    throw invalidArgument(`* ${where}.model: ${JSON.stringify(model)} is not the model of the call, models/${entry.id}.\n`);
  }
}

/** Only the text parts are embedded (the SDK: "Only the `parts.text` fields will be counted"). */
function contentText(content: unknown, where: string): string {
  if (!isObject(content) || !Array.isArray(content.parts) || content.parts.length === 0) {
    throw invalidArgument(`* ${where}.content: content is not specified or has no parts.\n`);
  }
  const text = content.parts.flatMap((p) => (isObject(p) && typeof p.text === 'string' ? [p.text] : [])).join(' ');
  if (!text.trim()) throw invalidArgument('The text content is empty.');
  return text;
}

function dimensionsOf(entry: ModelEntry, given: unknown, where: string): number {
  const full = entry.embeddingDimensions ?? DEFAULT_DIMENSIONS;
  if (given === undefined || given === null) return full;
  if (typeof given !== 'number' || !Number.isInteger(given) || given < 1 || given > full) {
    throw invalidArgument(`* ${where}.output_dimensionality: must be an integer between 1 and ${full}, not ${JSON.stringify(given)}.\n`);
  }
  return given;
}

/** The vector of `input`: the prefix of the text's unit-length full vector. */
export function embeddingValues(input: EmbedInput, full = DEFAULT_DIMENSIONS): number[] {
  const random = xoshiro128(createHash('sha256').update(input.text, 'utf8').digest());
  const values = new Float64Array(Math.max(full, input.dimensions));
  let norm = 0;
  for (let i = 0; i < values.length; i++) {
    values[i] = random() * 2 - 1;
    norm += values[i] * values[i];
  }
  const scale = 1 / Math.sqrt(norm);
  return Array.from(values.subarray(0, input.dimensions), (v) => Number((v * scale).toPrecision(SIGNIFICANT_DIGITS)));
}

/** xoshiro128**: 128 bits of state from the digest, so distinct texts do not share a stream. Uniform in [0, 1). */
function xoshiro128(seed: Buffer): () => number {
  let [a, b, c, d] = [0, 4, 8, 12].map((at) => seed.readUInt32LE(at));
  if ((a | b | c | d) === 0) a = 1;
  return () => {
    const t = b << 9;
    let r = Math.imul(b, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
    return (r >>> 0) / 4294967296;
  };
}

/**
 * An embed answer: `{embedding:{values}}` (EmbedContentResponse; a line of a responses file). Inline
 * batch output is a SingleEmbedContentResponse, which also carries the text's tokenCount (int64, a string).
 */
export function embedResponseJson(input: EmbedInput, model: string, withTokenCount = false): Json {
  const full = modelEntry(model)?.embeddingDimensions ?? DEFAULT_DIMENSIONS;
  return { embedding: { values: embeddingValues(input, full) }, ...(withTokenCount ? { tokenCount: String(input.tokens) } : {}) };
}

export const handleEmbedContent: Handler = async (ctx, req, res, { params }) => {
  const entry = requireMethod(params.model, 'embedContent') as ModelEntry;
  const input = embedInput(entry, await readJson(req, ctx.opts.maxRequestBytes), 'EmbedContentRequest');
  await admitModelCall(ctx, params.model, input.tokens);
  sendJson(res, 200, embedResponseJson(input, entry.id));
};

export const handleBatchEmbedContents: Handler = async (ctx, req, res, { params }) => {
  const entry = requireMethod(params.model, 'embedContent') as ModelEntry;
  const body = await readJson(req, ctx.opts.maxRequestBytes);
  const requests = isObject(body) ? body.requests : undefined;
  if (!Array.isArray(requests) || requests.length === 0) {
    throw invalidArgument('* BatchEmbedContentsRequest.requests: requests is not specified.\n');
  }
  if (requests.length > MAX_EMBED_REQUESTS) {
    throw invalidArgument(`* BatchEmbedContentsRequest.requests: at most ${MAX_EMBED_REQUESTS} requests can be in one batch\n`);
  }
  const inputs = requests.map((r, i) => embedInput(entry, r, `BatchEmbedContentsRequest.requests[${i}]`, true));
  await admitModelCall(
    ctx,
    params.model,
    inputs.reduce((sum, i) => sum + i.tokens, 0),
  );
  sendJson(res, 200, { embeddings: inputs.map((i) => embedResponseJson(i, entry.id).embedding) });
};
