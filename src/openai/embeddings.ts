/**
 * The Embeddings API's wire contract: what Ferry accepts of `POST /v1/embeddings` (checked in the
 * API, and in batch validation for each line) and the list it answers. Vectors are kept as base64
 * of little-endian float32s, the encoding the SDKs ask for by default, so a job's record holds a
 * quarter of what JSON numbers would take; `encoding_format: "float"` decodes them on the way out.
 */
import { bad, given, isObj } from './fields.js';

/** OpenAI's limit on inputs per request. */
export const MAX_EMBEDDING_INPUTS = 2048;
/** Gemini embeds at most 2,048 tokens of a text (about this many characters). */
const MAX_INPUT_CHARS = 2048 * 8;

export interface EmbeddingRequest {
  model: string;
  input: string | string[];
  dimensions?: number | null;
  encoding_format?: 'float' | 'base64' | null;
  user?: string;
}

export interface ValidatedEmbedding {
  body: EmbeddingRequest;
  model: string;
  texts: string[];
  inputTokens: number;
}

/** A job's result: one base64 vector per text, and the tokens counted. */
export interface EmbeddingResult {
  vectors: string[];
  prompt_tokens: number;
}

const PARAMS = new Set(['model', 'input', 'dimensions', 'encoding_format', 'user']);

export function validateEmbeddingRequest(input: unknown): ValidatedEmbedding {
  if (!isObj(input)) bad('The body must be a JSON object, sent with "Content-Type: application/json".', 'body');
  for (const k of Object.keys(input)) if (!PARAMS.has(k)) bad(`Unsupported parameter "${k}": Ferry cannot pass it to Gemini.`, k);
  const { model, dimensions, encoding_format, user } = input;
  if (typeof model !== 'string' || !/^[\w.\-/:]{1,128}$/.test(model))
    bad('"model" must be a Gemini embedding model, e.g. "gemini-embedding-001".', 'model');
  const texts = textsOf(input.input);
  if (given(dimensions) && (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1 || dimensions > 65_536)) {
    bad('"dimensions" must be a whole number of at least 1 (gemini-embedding-001 takes up to 3072).', 'dimensions');
  }
  if (given(encoding_format) && encoding_format !== 'float' && encoding_format !== 'base64') {
    bad('"encoding_format" must be "float" or "base64".', 'encoding_format');
  }
  if (user !== undefined && typeof user !== 'string') bad('"user" must be a string.', 'user');
  const body = input as unknown as EmbeddingRequest;
  return { body, model, texts, inputTokens: texts.reduce((n, t) => n + Math.ceil(t.length / 4), 0) };
}

function textsOf(input: unknown): string[] {
  const list = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(list) || list.length === 0) bad('"input" must be a string or a non-empty array of strings.', 'input');
  if (list.length > MAX_EMBEDDING_INPUTS)
    bad(`"input" has ${list.length} items; send at most ${MAX_EMBEDDING_INPUTS} per request.`, 'input');
  list.forEach((t: unknown, i: number) => {
    if (typeof t !== 'string') {
      bad(`input[${i}] must be a string: Gemini embeds text, not OpenAI token arrays.`, `input[${i}]`);
    }
    if (t.trim() === '') bad(`input[${i}] is empty; every input must have text.`, `input[${i}]`);
    if (t.length > MAX_INPUT_CHARS)
      bad(`input[${i}] has ${t.length} characters; Gemini embeds up to 2,048 tokens of a text.`, `input[${i}]`);
  });
  return list as string[];
}

/**
 * A vector as base64 of little-endian float32s (what the SDKs decode), scaled to unit length:
 * OpenAI's vectors have it at any size (so a dot product is the cosine), Gemini's only at full size
 * (a smaller `dimensions` is the first values of the full vector).
 */
export function encodeVector(values: number[]): string {
  const norm = Math.hypot(...values) || 1;
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeFloatLE(v / norm, i * 4));
  return buf.toString('base64');
}

function decodeVector(b64: string): number[] {
  const buf = Buffer.from(b64, 'base64');
  return Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4));
}

/** The answer: OpenAI's list of embeddings, in the encoding the request asked for. */
export function embeddingList(result: EmbeddingResult, model: string, format: 'float' | 'base64' | null | undefined) {
  return {
    object: 'list' as const,
    data: result.vectors.map((v, index) => ({ object: 'embedding' as const, index, embedding: format === 'base64' ? v : decodeVector(v) })),
    model,
    usage: { prompt_tokens: result.prompt_tokens, total_tokens: result.prompt_tokens },
  };
}
