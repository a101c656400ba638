/** generateContent and streamGenerateContent through `@google/genai`, with Ferry's error mapping and metrics. */
import type { GenerateContentParameters, GenerateContentResponse, GoogleGenAI } from '@google/genai';
import { upstreamCalls } from '../../core/metrics.js';
import { toGeminiError } from './errors.js';

async function measured<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    const out = await fn();
    upstreamCalls.inc({ provider: 'gemini', operation, status: '200' });
    return out;
  } catch (err) {
    const e = toGeminiError(err);
    upstreamCalls.inc({ provider: 'gemini', operation, status: String(e.upstreamStatus ?? 'network') });
    throw e;
  }
}

export function generate(ai: GoogleGenAI, req: GenerateContentParameters, signal?: AbortSignal): Promise<GenerateContentResponse> {
  return measured('generate', () => ai.models.generateContent({ ...req, config: { ...req.config, abortSignal: signal } }));
}

/** Calls `onChunk` for each streamed answer; errors (before or during the stream) are UpstreamErrors. */
export function generateStream(
  ai: GoogleGenAI,
  req: GenerateContentParameters,
  onChunk: (r: GenerateContentResponse) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  return measured('stream', async () => {
    const stream = await ai.models.generateContentStream({ ...req, config: { ...req.config, abortSignal: signal } });
    for await (const chunk of stream) await onChunk(chunk);
  });
}
