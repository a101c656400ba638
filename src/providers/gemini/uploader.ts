/**
 * Gemini Files API resumable upload, spoken directly.
 *
 * Written by hand because `@google/genai`'s `files.upload` cannot resume: it
 * keeps the session URL in memory and restarts from byte 0 after any failure
 * or process restart. Here the session URL and confirmed offset are handed to
 * the caller after every acknowledged chunk (the worker keeps them in Redis),
 * and a later attempt, in any process, asks the session how much it holds
 * (`query`) and continues from there.
 *
 * Speed: each chunk is streamed from disk with an exact Content-Length over a
 * keep-alive connection, never buffered whole; memory stays flat whatever the
 * file size.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { GEMINI_CHUNK_GRANULARITY } from '../../core/config.js';
import { UpstreamError, isRetryableStatus } from '../../core/errors.js';
import { bytesUploaded, upstreamCalls } from '../../core/metrics.js';
import { isRetryable, retryDelayMs, sleep, withRetry, type RetryPolicy } from '../../core/retry.js';
import { geminiHttpError, toGeminiError } from './errors.js';
import type { GeminiFile } from './files.js';

export const DEFAULT_GEMINI_BASE_URL = 'https://generativelanguage.googleapis.com';

export interface UploadSession {
  url: string;
  offset: number;
}

export interface ResumableUploadInput {
  size: number;
  mimeType: string;
  displayName: string;
  /** Bytes [start, end] inclusive of the source: a stream, or slices each sent before the next is read. */
  source: (start: number, end: number) => Readable | AsyncIterable<Buffer>;
  /** A session from an earlier attempt, if any. */
  session: UploadSession | null;
  /**
   * Called with the session after it starts and after each acknowledged
   * chunk. Answering false stops the upload (the file was deleted meanwhile):
   * the session is cancelled and `UploadAbortedError` is thrown.
   */
  onProgress: (session: UploadSession) => Promise<boolean>;
  /** Resolves once the bytes before `end` can be read (a file still arriving); throwing stops the upload. */
  ready?: (end: number) => Promise<void>;
  signal?: AbortSignal;
}

export class UploadAbortedError extends Error {
  constructor() {
    super('upload stopped: the file was deleted');
  }
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type QueryResult = { state: 'active'; offset: number } | { state: 'final'; file: GeminiFile | null } | { state: 'gone' };

export class GeminiUploader {
  private readonly base: URL;
  private readonly agent: http.Agent;

  constructor(
    private readonly apiKey: string,
    baseUrl: string | undefined,
    private readonly chunkBytes: number,
    private readonly policy: RetryPolicy,
  ) {
    if (chunkBytes % GEMINI_CHUNK_GRANULARITY !== 0) throw new Error('chunk size must be a multiple of 256 KiB');
    this.base = new URL(baseUrl ?? DEFAULT_GEMINI_BASE_URL);
    const Agent = this.base.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: 64 });
  }

  close(): void {
    this.agent.destroy();
  }

  async upload(input: ResumableUploadInput): Promise<GeminiFile> {
    return (await this.run(input, null)) as GeminiFile;
  }

  /**
   * Sends the whole chunks of the file up to `until` (a multiple of the chunk size) and stops
   * there, finalizing nothing: the session, to be finished by `upload` with the same session. For
   * a file whose bytes are still arriving (see `ready`).
   */
  async sendAhead(input: ResumableUploadInput, until: number): Promise<UploadSession | GeminiFile> {
    if (until % this.chunkBytes !== 0 || until > input.size)
      throw new Error(`sendAhead: ${until} is not a whole number of chunks of the file`);
    return this.run(input, until);
  }

  private async run(input: ResumableUploadInput, until: number | null): Promise<GeminiFile | UploadSession> {
    let session = input.session ? await this.resume(input) : null;
    if (session && 'file' in session) return session.file;
    let failures = 0;
    // Progress is recorded while the next chunk goes out; it is always settled before the next record.
    let pending: Promise<{ ok: boolean } | { err: unknown }> | null = null;
    const settle = async () => {
      const r = await pending;
      pending = null;
      if (r && 'err' in r) throw r.err;
      return r === null || r.ok;
    };
    const record = async (s: UploadSession) => {
      if (!(await settle())) return this.abort(s);
      pending = input.onProgress(s).then(
        (ok) => ({ ok }),
        (err) => ({ err }),
      );
    };
    for (;;) {
      if (!session) {
        session = { url: await this.start(input), offset: 0 };
        await record(session);
      }
      const { url, offset }: UploadSession = session;
      if (until !== null && offset >= until) {
        if (!(await settle())) return this.abort(session);
        return session;
      }
      const end = Math.min(offset + this.chunkBytes, input.size);
      const final = until === null && end === input.size;
      await input.ready?.(end);
      try {
        const answer = await this.send(url, final ? 'upload, finalize' : 'upload', offset, input, end);
        failures = 0;
        bytesUploaded.inc({ storage: 'gemini' }, end - offset);
        if (!(await settle())) return this.abort(session);
        if (final) return this.fileOf(answer);
        session = { url, offset: end };
        await record(session);
      } catch (err) {
        if (err instanceof UploadAbortedError) throw err;
        const e = toGeminiError(err);
        // A refused chunk may mean the session holds a different offset than we think: ask it.
        const refused = e.upstreamStatus === 400;
        if ((!isRetryable(e) && !refused) || ++failures >= this.policy.attempts || input.signal?.aborted) throw e;
        if (!refused) await sleep(retryDelayMs(e, failures, this.policy), input.signal);
        const resumed = await this.resume({ ...input, session });
        if (resumed && 'file' in resumed) return resumed.file;
        if (refused && resumed?.offset === session.offset) throw e;
        session = resumed;
        if (session) await record(session);
      }
    }
  }

  /** Asks a session what it holds: the offset to continue from, the finished file, or null to start over. */
  private async resume(input: ResumableUploadInput): Promise<UploadSession | { file: GeminiFile } | null> {
    const q = await this.query(input.session!.url, input.signal);
    if (q.state === 'active') return { url: input.session!.url, offset: q.offset };
    if (q.state === 'final' && q.file) return { file: q.file };
    return null;
  }

  private async query(url: string, signal?: AbortSignal): Promise<QueryResult> {
    return withRetry(
      { provider: 'gemini', operation: 'upload.query' },
      this.policy,
      async () => {
        const a = await this.request('upload.query', url, { 'X-Goog-Upload-Command': 'query' }, null, signal, true);
        if (isRetryableStatus(a.status)) throw geminiHttpError(a.status, a.body, a.headers['retry-after']);
        const state = String(a.headers['x-goog-upload-status'] ?? '');
        if (a.status === 200 && state === 'active') {
          return { state: 'active', offset: Number(a.headers['x-goog-upload-size-received'] ?? 0) };
        }
        if (a.status === 200 && state === 'final') {
          try {
            return { state: 'final', file: this.fileOf(a) };
          } catch {
            return { state: 'final', file: null };
          }
        }
        return { state: 'gone' };
      },
      signal,
    );
  }

  private async start(input: ResumableUploadInput): Promise<string> {
    return withRetry(
      { provider: 'gemini', operation: 'upload.start' },
      this.policy,
      async () => {
        const body = Buffer.from(
          JSON.stringify({ file: { displayName: input.displayName, mimeType: input.mimeType, sizeBytes: String(input.size) } }),
        );
        const a = await this.request(
          'upload.start',
          new URL('/upload/v1beta/files', this.base).toString(),
          {
            'X-Goog-Upload-Protocol': 'resumable',
            'X-Goog-Upload-Command': 'start',
            'X-Goog-Upload-Header-Content-Length': String(input.size),
            'X-Goog-Upload-Header-Content-Type': input.mimeType,
            'Content-Type': 'application/json',
          },
          body,
          input.signal,
        );
        const url = a.headers['x-goog-upload-url'];
        if (typeof url !== 'string')
          throw new UpstreamError('Gemini did not return an upload URL', { upstreamStatus: a.status, retryable: false });
        return this.rebase(url);
      },
      input.signal,
    );
  }

  private send(url: string, command: string, offset: number, input: ResumableUploadInput, end: number): Promise<Answer> {
    const length = end - offset;
    const body = length > 0 ? input.source(offset, end - 1) : Buffer.alloc(0);
    const op = command.includes('finalize') ? 'upload.finalize' : 'upload.chunk';
    return this.request(
      op,
      url,
      { 'X-Goog-Upload-Command': command, 'X-Goog-Upload-Offset': String(offset) },
      body,
      input.signal,
      false,
      length,
    );
  }

  /** Ends a session (best effort: an expired or unknown session needs no cancelling). */
  async cancel(url: string): Promise<void> {
    await this.request('upload.cancel', url, { 'X-Goog-Upload-Command': 'cancel' }, null, undefined, true).catch(() => {});
  }

  private async abort(session: UploadSession): Promise<never> {
    await this.cancel(session.url);
    throw new UploadAbortedError();
  }

  private fileOf(a: Answer): GeminiFile {
    const parsed = JSON.parse(a.body) as { file?: GeminiFile };
    if (!parsed.file?.name)
      throw new UpstreamError('Gemini finalized the upload without a file resource', { upstreamStatus: a.status, retryable: false });
    return parsed.file;
  }

  /**
   * Upload URLs name Google's host; behind a proxy or emulator (a base URL
   * override) the same path and query are sent to the configured host, as the
   * SDK does.
   */
  private rebase(url: string): string {
    const u = new URL(url);
    u.protocol = this.base.protocol;
    u.host = this.base.host;
    return u.toString();
  }

  private request(
    operation: string,
    url: string,
    headers: Record<string, string>,
    body: Readable | AsyncIterable<Buffer> | Buffer | null,
    signal?: AbortSignal,
    acceptAnyStatus = false,
    contentLength?: number,
  ): Promise<Answer> {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const length = contentLength ?? (Buffer.isBuffer(body) ? body.length : 0);
    // Slices share one buffer with the next request's, so a request settles only once its writer
    // has stopped: it asks for no more slices once an answer has come (an early refusal), and a
    // write still waiting then is cut off with the request.
    let answered = false;
    let writing: Promise<void> | null = null;
    let req!: http.ClientRequest;
    const answer = new Promise<Answer>((resolve, reject) => {
      req = lib.request(u, {
        method: 'POST',
        agent: this.agent,
        signal,
        headers: { ...headers, 'x-goog-api-key': this.apiKey, 'Content-Length': String(length) },
      });
      const fail = (err: unknown) => {
        answered = true;
        upstreamCalls.inc({ provider: 'gemini', operation, status: 'network' });
        reject(toGeminiError(err));
      };
      req.on('error', fail);
      req.on('response', (res) => {
        answered = true;
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(parts).toString('utf8');
          upstreamCalls.inc({ provider: 'gemini', operation, status: String(status) });
          if (!acceptAnyStatus && (status < 200 || status > 299)) {
            reject(geminiHttpError(status, text, res.headers['retry-after']));
          } else resolve({ status, headers: res.headers, body: text });
        });
      });
      if (body === null || Buffer.isBuffer(body)) req.end(body ?? undefined);
      else if (body instanceof Readable) {
        body.on('error', (e) => req.destroy(e));
        body.pipe(req);
      } else writing = writeSlices(req, body, () => answered).finally(() => (writing = null));
    });
    return answer.finally(async () => {
      if (!writing) return;
      req.destroy();
      await writing;
    });
  }
}

/**
 * Writes each slice and waits until the socket has taken it, since the next slice reuses its
 * memory. Asks for no more once `answered()`: that request is over, its body cut short.
 */
async function writeSlices(req: http.ClientRequest, slices: AsyncIterable<Buffer>, answered: () => boolean): Promise<void> {
  const it = slices[Symbol.asyncIterator]();
  try {
    for (;;) {
      const { value, done } = await it.next();
      if (done) break;
      if (answered()) return;
      await new Promise<void>((resolve, reject) => req.write(value, (err) => (err ? reject(err) : resolve())));
    }
    req.end();
  } catch (err) {
    req.destroy(err as Error);
  } finally {
    await it.return?.();
  }
}
