/**
 * fileData parts naming an https URL: since January 2026 Gemini fetches public and signed URLs
 * itself. The emulator GETs each URL (following up to 5 redirects, https only), streams the body
 * through a counter and a hash without holding it, and completes the part's fact (mime type, size,
 * sha256) so that the reply shows the URL's bytes reached the model. A URL it cannot fetch, or that
 * answers other than 2xx, refuses the request with 400 INVALID_ARGUMENT as Gemini does.
 *
 * Tests serve such URLs over TLS with their own certificate authority: `fileUriTls.ca` (or
 * FERRY_EMULATOR_FILE_URI_CA, see env.ts) is trusted for these fetches only.
 */

import { createHash } from 'node:crypto';
import { Agent, get, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { rootCertificates } from 'node:tls';
import { invalidArgument, RpcError } from './errors.js';
import type { PromptFacts, RemoteFileRef } from './model.js';

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** A URL that sends nothing for this long is given up. */
const IDLE_TIMEOUT_MS = 30_000;

export interface RemoteFileOptions {
  ca?: string | Buffer;
  rejectUnauthorized?: boolean;
  /** The largest body fetched; a larger one refuses the request. */
  maxBytes: number;
}

interface Fetched {
  mimeType: string;
  sizeBytes: number;
  sha256: string;
}

const cannotFetch = (detail: string) => invalidArgument(`Cannot fetch content from the provided URL: ${detail}`);

export class RemoteFiles {
  private readonly agent: Agent;

  constructor(private readonly opts: RemoteFileOptions) {
    // An agent's `ca` replaces the roots: the given authority is added to them, so public URLs still fetch.
    const ca = opts.ca === undefined ? undefined : [...rootCertificates, opts.ca];
    this.agent = new Agent({ ca, rejectUnauthorized: opts.rejectUnauthorized ?? true, keepAlive: false });
  }

  /** Fetches every URL of the prompt (each distinct URL once) and completes its facts. */
  async resolve(facts: PromptFacts): Promise<void> {
    if (facts.remote.length === 0) return;
    const byUrl = new Map<string, Promise<Fetched>>();
    for (const ref of facts.remote) if (!byUrl.has(ref.url)) byUrl.set(ref.url, this.fetch(ref.url));
    // Settled all before the first failure is thrown: no fetch is left running unobserved.
    const results = await Promise.allSettled(byUrl.values());
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const ref of facts.remote) complete(ref, await (byUrl.get(ref.url) as Promise<Fetched>));
  }

  close(): void {
    this.agent.destroy();
  }

  private async fetch(url: string): Promise<Fetched> {
    let target = new URL(url);
    for (let hop = 0; ; hop++) {
      const res = await this.request(target);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (REDIRECT_STATUSES.has(status) && location) {
        res.resume();
        if (hop === MAX_REDIRECTS) throw cannotFetch(`more than ${MAX_REDIRECTS} redirects.`);
        target = new URL(location, target);
        if (target.protocol !== 'https:') throw cannotFetch(`a redirect led to ${target.protocol} (https only).`);
        continue;
      }
      if (status < 200 || status > 299) {
        res.resume();
        throw cannotFetch(`the server answered HTTP ${status}.`);
      }
      return this.digest(res);
    }
  }

  private request(url: URL): Promise<IncomingMessage> {
    const options: RequestOptions = { agent: this.agent, headers: { 'user-agent': 'gemini-emulator', accept: '*/*' } };
    return new Promise((resolve, reject) => {
      const req = get(url, options, resolve);
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${IDLE_TIMEOUT_MS} ms`)));
      req.once('error', (err) => reject(cannotFetch(`${err.message}.`)));
    });
  }

  /** Counts and hashes the body as it streams; past maxBytes the download is cut. */
  private digest(res: IncomingMessage): Promise<Fetched> {
    const { maxBytes } = this.opts;
    const tooLarge = () => cannotFetch(`the content is larger than ${maxBytes} bytes.`);
    if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
      res.destroy();
      return Promise.reject(tooLarge());
    }
    const hash = createHash('sha256');
    let size = 0;
    return new Promise((resolve, reject) => {
      res.on('data', (buf: Buffer) => {
        size += buf.length;
        if (size > maxBytes) return void res.destroy(tooLarge());
        hash.update(buf);
      });
      res.once('end', () => resolve({ mimeType: mimeOf(res), sizeBytes: size, sha256: hash.digest('hex') }));
      res.once('error', (err) => reject(err instanceof RpcError ? err : cannotFetch(`${err.message}.`)));
      // After 'end' this settles nothing; before it, the body was cut short.
      res.once('close', () => reject(cannotFetch('the connection closed before the content ended.')));
    });
  }
}

function mimeOf(res: IncomingMessage): string {
  const type = res.headers['content-type']?.split(';')[0].trim().toLowerCase();
  return type || 'application/octet-stream';
}

function complete(ref: RemoteFileRef, fetched: Fetched): void {
  if (!ref.mimeTypeGiven) ref.fact.mimeType = fetched.mimeType;
  ref.fact.sizeBytes = fetched.sizeBytes;
  ref.fact.sha256 = fetched.sha256;
}
