/**
 * Embeddings lines on Gemini Batch Mode. Gemini's embeddings batch embeds one content per input
 * line, where an OpenAI embeddings line may carry many texts: each text goes as a line of its own,
 * keyed `<custom_id>\n<k>`, and the answers are gathered per line in Redis (answers arrive in
 * chunks, possibly after a worker's death), so the line ends once, with its vectors in order, when
 * its last text's answer is in.
 */
import type { JobRecord } from '../core/records/jobs.js';
import type { Services } from '../core/services.js';
import { embeddingRequestOf } from '../domain/jobs.js';
import { encodeVector, type EmbeddingResult } from '../openai/embeddings.js';

/** Gathered answers are kept this long: a batch's collection ends well within it. */
const PARTS_TTL_SECONDS = 7 * 86400;

const textsOf = (rec: JobRecord) => {
  const { input } = embeddingRequestOf(rec);
  return typeof input === 'string' ? [input] : input;
};

/** The key of text `k` of a line. */
export const partKey = (customId: string, k: number) => `${customId}\n${k}`;

/** The keys Gemini answers a line's texts under. */
export const partKeys = (rec: JobRecord) => textsOf(rec).map((_, k) => partKey(String(rec.custom_id), k));

/** Gemini's input lines for an embeddings line: an EmbedContentRequest per text. */
export function embeddingInputLines(rec: JobRecord): string[] {
  const { dimensions } = embeddingRequestOf(rec);
  return textsOf(rec).map((text, k) =>
    JSON.stringify({
      key: partKey(String(rec.custom_id), k),
      request: { content: { parts: [{ text }] }, ...(dimensions ? { outputDimensionality: dimensions } : {}) },
    }),
  );
}

/** Records the vector of one text; answers the line's result once every text's vector is in. */
export async function gatherEmbedding(
  services: Services,
  batchId: string,
  index: number,
  rec: JobRecord,
  key: string,
  values: number[],
): Promise<EmbeddingResult | null> {
  const k = Number(key.slice(key.lastIndexOf('\n') + 1));
  const n = textsOf(rec).length;
  const parts = services.keys.batchEmbeddingParts(batchId, index);
  const [, , [, got]] = (await services.redis
    .multi()
    .hset(parts, String(k), encodeVector(values))
    .expire(parts, PARTS_TTL_SECONDS)
    .hlen(parts)
    .exec()) as [unknown, unknown, [unknown, number]];
  if (got < n) return null;
  const all = await services.redis.hgetall(parts);
  return { vectors: Array.from({ length: n }, (_, i) => all[String(i)]), prompt_tokens: rec.input_tokens ?? 0 };
}

/** Drops a line's gathered answers once it has ended. */
export async function forgetGathered(services: Services, batchId: string, index: number): Promise<void> {
  await services.redis.del(services.keys.batchEmbeddingParts(batchId, index));
}
