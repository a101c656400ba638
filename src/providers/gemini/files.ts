/** Gemini Files API operations other than upload, through `@google/genai`. */
import type { GoogleGenAI } from '@google/genai';
import { GoogleAuth } from 'google-auth-library';
import { UpstreamError } from '../../core/errors.js';
import { sleep, withRetry, type RetryPolicy } from '../../core/retry.js';
import { measured } from './errors.js';

/**
 * Gemini fetches external URLs (public or signed, e.g. an Azure SAS) of up to
 * 100 MB per file: "Input method comparison" in Google's "File input methods"
 * guide (https://ai.google.dev/gemini-api/docs/file-input-methods), and the
 * announcement https://blog.google/innovation-and-ai/technology/developers-tools/gemini-api-new-file-limits.
 * Larger files go through the Files API (2 GB).
 */
export const GEMINI_EXTERNAL_URL_MAX_BYTES = 100 * 1000 * 1000;

export interface GeminiFile {
  name: string;
  uri?: string;
  displayName?: string;
  mimeType?: string;
  sizeBytes?: string;
  sha256Hash?: string;
  state?: string;
  createTime?: string;
  expirationTime?: string;
  error?: { code?: number; message?: string };
}

/** Gemini reports sha256Hash as base64 of either the raw digest or its hex text; answers the hex digest. */
export function geminiSha256Hex(sha256Hash: string | undefined): string | null {
  if (!sha256Hash) return null;
  const raw = Buffer.from(sha256Hash, 'base64');
  if (raw.length === 32) return raw.toString('hex');
  const text = raw.toString('utf8');
  return /^[0-9a-f]{64}$/i.test(text) ? text.toLowerCase() : null;
}

/**
 * The OAuth credentials registering a Cloud Storage object takes (an API key is not enough): any
 * file google-auth-library reads (service account, external account, authorized user). The
 * objects' bucket must let the Gemini API's service agent read them.
 */
export function cloudStorageAuth(keyFile: string): GoogleAuth {
  return new GoogleAuth({ keyFile, scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
}

export class GeminiFiles {
  constructor(
    private readonly ai: GoogleGenAI,
    private readonly policy: RetryPolicy,
    private readonly storageAuth: GoogleAuth | null = null,
  ) {}

  /** Whether Cloud Storage objects can be registered (credentials are configured). */
  get registers(): boolean {
    return this.storageAuth !== null;
  }

  /**
   * Registers the Cloud Storage object `uri` (gs://bucket/object) as a Gemini file: no byte is
   * uploaded. Null when Gemini may not read it (401, 403, 404: credentials or the bucket's grant).
   */
  async register(uri: string, signal?: AbortSignal): Promise<GeminiFile | null> {
    const auth = this.storageAuth;
    if (!auth) return null;
    try {
      const answer = await this.call('files.register', () => this.ai.files.registerFiles({ uris: [uri], auth }), signal);
      return ((answer.files ?? [])[0] as GeminiFile | undefined) ?? null;
    } catch (err) {
      if (err instanceof UpstreamError && [401, 403, 404].includes(err.upstreamStatus ?? 0)) return null;
      throw err;
    }
  }

  private call<T>(operation: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetry({ provider: 'gemini', operation }, this.policy, () => measured(operation, fn), signal);
  }

  async get(name: string, signal?: AbortSignal): Promise<GeminiFile | null> {
    try {
      return (await this.call('files.get', () => this.ai.files.get({ name }), signal)) as GeminiFile;
    } catch (err) {
      if (err instanceof UpstreamError && (err.upstreamStatus === 404 || err.upstreamStatus === 403)) return null;
      throw err;
    }
  }

  /** Deletes a file; one already gone counts as deleted. */
  async delete(name: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.call('files.delete', () => this.ai.files.delete({ name }), signal);
    } catch (err) {
      if (err instanceof UpstreamError && err.upstreamStatus === 404) return;
      throw err;
    }
  }

  /** Polls until the file leaves PROCESSING, with backoff; answers the file (ACTIVE or FAILED). */
  async waitUntilProcessed(name: string, timeoutMs: number, signal?: AbortSignal): Promise<GeminiFile> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; ; i++) {
      const f = await this.get(name, signal);
      if (!f) throw new UpstreamError(`Gemini file ${name} vanished while processing`, { upstreamStatus: 404, retryable: false });
      if (f.state !== 'PROCESSING' && f.state !== 'STATE_UNSPECIFIED') return f;
      if (Date.now() > deadline) {
        throw new UpstreamError(`Gemini file ${name} still PROCESSING after ${Math.round(timeoutMs / 1000)} s`, {
          upstreamStatus: null,
          retryable: true,
        });
      }
      await sleep(Math.min(250 * 1.6 ** i, 10_000), signal);
    }
  }

  /**
   * Whether Gemini reads the file at `url` itself: a token count of a prompt holding only it (Gemini
   * must fetch the file to count it, and a count is not charged to the generate quota). False when
   * Gemini answers that it cannot fetch it; other failures are thrown as any call's are.
   */
  async fetchesUrl(model: string, url: string, mimeType: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.call(
        'countTokens',
        () => this.ai.models.countTokens({ model, contents: [{ role: 'user', parts: [{ fileData: { fileUri: url, mimeType } }] }] }),
        signal,
      );
      return true;
    } catch (err) {
      if (err instanceof UpstreamError && err.upstreamStatus === 400 && /url|fetch/i.test(err.message)) return false;
      throw err;
    }
  }
}
