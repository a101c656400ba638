/** Everything Ferry uses of Gemini, built once per worker process. */
import type { GoogleGenAI } from '@google/genai';
import type { RetryPolicy } from '../../core/retry.js';
import { GeminiBatches } from './batches.js';
import { createGenAI } from './client.js';
import { cloudStorageAuth, GeminiFiles } from './files.js';
import { GeminiUploader } from './uploader.js';

export interface GeminiProvider {
  ai: GoogleGenAI;
  files: GeminiFiles;
  batches: GeminiBatches;
  uploader: GeminiUploader;
  close(): void;
}

export function createGeminiProvider(opts: {
  apiKey: string;
  baseUrl?: string;
  chunkBytes: number;
  policy: RetryPolicy;
  /** Google credentials for registering Cloud Storage objects; without them, none is registered. */
  credentialsFile?: string;
}): GeminiProvider {
  const { ai, close } = createGenAI({ apiKey: opts.apiKey, baseUrl: opts.baseUrl });
  const uploader = new GeminiUploader(opts.apiKey, opts.baseUrl, opts.chunkBytes, opts.policy);
  const batches = new GeminiBatches(opts.apiKey, opts.baseUrl, opts.policy);
  return {
    ai,
    files: new GeminiFiles(ai, opts.policy, opts.credentialsFile ? cloudStorageAuth(opts.credentialsFile) : null),
    batches,
    uploader,
    close: () => {
      uploader.close();
      batches.close().catch(() => {});
      close().catch(() => {});
    },
  };
}
