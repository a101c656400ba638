/**
 * Embeddings through `@google/genai`. On the Developer API `ai.models.embedContent` sends one
 * `models/{model}:batchEmbedContents` call with a request per text, and Gemini refuses more than
 * 100 requests in one call ("at most 100 requests can be in one batch"): longer lists go in chunks
 * of 100, one after another, so the vectors come back in the order of the texts.
 */
import type { GoogleGenAI } from '@google/genai';
import { UpstreamError } from '../../core/errors.js';
import { measured } from './errors.js';

/** The most texts Gemini embeds in one batchEmbedContents call. */
export const MAX_TEXTS_PER_CALL = 100;

export interface EmbedParams {
  model: string;
  texts: string[];
  /** outputDimensionality; the model's full size when absent. */
  dimensions?: number;
}

/** One vector per text, in the order of the texts; failures are UpstreamErrors. */
export async function embedTexts(ai: GoogleGenAI, p: EmbedParams, signal?: AbortSignal): Promise<number[][]> {
  const vectors: number[][] = [];
  for (let from = 0; from < p.texts.length; from += MAX_TEXTS_PER_CALL) {
    const texts = p.texts.slice(from, from + MAX_TEXTS_PER_CALL);
    vectors.push(...(await embedChunk(ai, p.model, texts, p.dimensions, signal)));
  }
  return vectors;
}

async function embedChunk(ai: GoogleGenAI, model: string, texts: string[], dimensions?: number, signal?: AbortSignal): Promise<number[][]> {
  const res = await measured('embed', () =>
    ai.models.embedContent({ model, contents: texts, config: { outputDimensionality: dimensions, abortSignal: signal } }),
  );
  const values = (res.embeddings ?? []).map((e) => e.values ?? []);
  // A short answer would shift every later vector onto the wrong text.
  if (values.length !== texts.length || values.some((v) => v.length === 0)) {
    throw new UpstreamError(`Gemini answered ${values.length} embeddings for ${texts.length} texts.`, {
      upstreamStatus: 200,
      retryable: false,
    });
  }
  return values;
}
