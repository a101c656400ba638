/**
 * Gemini Batch Mode, spoken over REST: create a batch from an uploaded JSONL file, read it, find
 * it by display name, cancel and delete it, and read its responses file line by line.
 *
 * Written against the REST surface rather than through `@google/genai`'s `batches`: the SDK's
 * answer drops `batchStats` (the progress Ferry shows as `request_counts`), and its
 * `files.download` writes to a local path, where the responses must stream into Ferry's files.
 * The request and answer shapes are those the SDK sends and reads (the emulator checks both).
 */
import type { GenerateContentResponse } from '@google/genai';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { UpstreamError } from '../../core/errors.js';
import { upstreamCalls } from '../../core/metrics.js';
import { withRetry, type RetryPolicy } from '../../core/retry.js';
import { geminiHttpError, toGeminiError } from './errors.js';
import { DEFAULT_GEMINI_BASE_URL } from './uploader.js';

export type GeminiBatchState = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'EXPIRED' | 'UNSPECIFIED';

export const FINAL_GEMINI_BATCH_STATES: readonly GeminiBatchState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED'];

export interface GeminiBatch {
  name: string;
  displayName: string | null;
  state: GeminiBatchState;
  requests: number;
  succeeded: number;
  failed: number;
  /** The responses file (`files/…`), once the batch has succeeded. */
  responsesFile: string | null;
}

/** One line of a responses file: the request's key and Gemini's answer or error. */
export interface GeminiBatchLine {
  key: string;
  /** Parsed JSON: its plain fields (candidates, usageMetadata, …), not the SDK's getters; an embeddings batch's has `embedding`. */
  response?: GenerateContentResponse & { embedding?: { values?: number[] } };
  error?: { code?: number; message?: string; status?: string };
}

type Json = Record<string, unknown>;

/** `BATCH_STATE_RUNNING` (REST) or `JOB_STATE_RUNNING` (the SDK's spelling) → `RUNNING`. */
export function batchStateOf(raw: unknown): GeminiBatchState {
  const s = String(raw ?? '').replace(/^(BATCH|JOB)_STATE_/, '');
  return (['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED'] as const).find((k) => k === s) ?? 'UNSPECIFIED';
}

/** A batch from a get or list answer (an Operation) or a create answer. */
export function batchOf(op: Json): GeminiBatch {
  const meta = (op.metadata as Json | undefined) ?? op;
  const stats = (meta.batchStats as Json | undefined) ?? {};
  const output = ((meta.output as Json | undefined) ?? (op.response as Json | undefined) ?? {}) as Json;
  return {
    name: String(op.name ?? meta.name),
    displayName: typeof meta.displayName === 'string' ? meta.displayName : null,
    state: batchStateOf(meta.state),
    requests: Number(stats.requestCount ?? 0),
    succeeded: Number(stats.successfulRequestCount ?? 0),
    failed: Number(stats.failedRequestCount ?? 0),
    responsesFile: typeof output.responsesFile === 'string' ? output.responsesFile : null,
  };
}

export class GeminiBatches {
  private readonly base: URL;
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });

  constructor(
    private readonly apiKey: string,
    baseUrl: string | undefined,
    private readonly policy: RetryPolicy,
  ) {
    this.base = new URL(baseUrl ?? DEFAULT_GEMINI_BASE_URL);
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  /**
   * Creates a batch of `model` from an uploaded input file: of generate requests, or (`embed`)
   * of embed requests, as `ai.batches.createEmbeddings` makes one. Not idempotent and so never retried
   * here: a caller that does not know whether it was made looks it up by display name first.
   */
  async create(model: string, inputFile: string, displayName: string, kind: 'generate' | 'embed' = 'generate'): Promise<GeminiBatch> {
    const method = kind === 'embed' ? 'asyncBatchEmbedContent' : 'batchGenerateContent';
    const path = `v1beta/models/${encodeURIComponent(model)}:${method}`;
    const body = { batch: { displayName, inputConfig: { fileName: inputFile } } };
    return batchOf(await this.json('batches.create', 'POST', path, body));
  }

  /** The batch, or null when Gemini no longer has it. */
  async get(name: string): Promise<GeminiBatch | null> {
    return this.retried('batches.get', async () => {
      try {
        return batchOf(await this.json('batches.get', 'GET', `v1beta/${name}`));
      } catch (err) {
        if (err instanceof UpstreamError && err.upstreamStatus === 404) return null;
        throw err;
      }
    });
  }

  /** The most recent batch with this display name, if any (a create whose answer was lost). */
  async findByDisplayName(displayName: string): Promise<GeminiBatch | null> {
    let pageToken = '';
    for (let page = 0; page < 100; page++) {
      const query = `pageSize=100${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ''}`;
      const answer = await this.retried('batches.list', () => this.json('batches.list', 'GET', `v1beta/batches?${query}`));
      const found = ((answer.operations as Json[] | undefined) ?? []).map(batchOf).find((b) => b.displayName === displayName);
      if (found) return found;
      pageToken = typeof answer.nextPageToken === 'string' ? answer.nextPageToken : '';
      if (!pageToken) return null;
    }
    return null;
  }

  /** Asks Gemini to cancel; a batch already final or gone needs nothing. */
  async cancel(name: string): Promise<void> {
    await this.retried('batches.cancel', () => this.json('batches.cancel', 'POST', `v1beta/${name}:cancel`, {})).catch((err) => {
      if (!(err instanceof UpstreamError && (err.upstreamStatus === 404 || err.upstreamStatus === 400))) throw err;
    });
  }

  /** Deletes the batch; one already gone counts as deleted. */
  async delete(name: string): Promise<void> {
    await this.retried('batches.delete', () => this.json('batches.delete', 'DELETE', `v1beta/${name}`)).catch((err) => {
      if (!(err instanceof UpstreamError && err.upstreamStatus === 404)) throw err;
    });
  }

  /** The responses file, line by line as it arrives: never held whole. */
  async *responses(fileName: string): AsyncGenerator<GeminiBatchLine> {
    const res = await this.send('files.download', 'GET', `download/v1beta/${fileName}:download?alt=media`);
    const lines = createInterface({ input: res.body, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.trim()) yield JSON.parse(line) as GeminiBatchLine;
      }
    } finally {
      // A reader that stops early (its work failed) leaves no download holding a connection.
      lines.close();
      res.body.destroy();
    }
  }

  private retried<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withRetry({ provider: 'gemini', operation }, this.policy, fn);
  }

  private async json(operation: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<Json> {
    const res = await this.send(operation, method, path, body);
    const text = await res.body.text();
    return text ? (JSON.parse(text) as Json) : {};
  }

  private async send(operation: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(new URL(path, this.base), {
        method,
        dispatcher: this.agent,
        headers: { 'x-goog-api-key': this.apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      upstreamCalls.inc({ provider: 'gemini', operation, status: 'network' });
      throw toGeminiError(err);
    }
    upstreamCalls.inc({ provider: 'gemini', operation, status: String(res.statusCode) });
    if (res.statusCode >= 300) throw geminiHttpError(res.statusCode, await res.body.text(), res.headers['retry-after']);
    return res;
  }
}
