/** generateContent and streamGenerateContent through `@google/genai`, with Ferry's error mapping and metrics. */
import type { GenerateContentParameters, GenerateContentResponse, GoogleGenAI } from '@google/genai';
import { measured } from './errors.js';

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
    // Aborted on the way out, so a stream left unread (onChunk threw) frees its connection.
    const done = new AbortController();
    const abortSignal = signal ? AbortSignal.any([signal, done.signal]) : done.signal;
    try {
      const stream = await ai.models.generateContentStream({ ...req, config: { ...req.config, abortSignal } });
      for await (const chunk of stream) await onChunk(chunk);
    } finally {
      done.abort();
    }
  });
}
