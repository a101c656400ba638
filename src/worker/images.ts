/** Fetches an http(s) image or file named in a request, through the SSRF guard, to send it inline. */
import { BadRequestError, isRetryableStatus, PayloadTooLargeError, UpstreamError } from '../core/errors.js';
import type { JobRecord } from '../core/records/jobs.js';
import { fetch } from 'undici';
import { BlockedAddressError, guardedAgent } from '../core/ssrf.js';
import type { FetchedImage } from '../providers/gemini/mapping.js';
import { isGeminiMimeType, mimeTypeOfName } from '../providers/gemini/mime.js';
import type { Part } from '@google/genai';
import { inputParamOf } from '../domain/jobs.js';
import { INLINE_LIMIT_BYTES } from '../openai/chat.js';

const agents = new Map<boolean, ReturnType<typeof guardedAgent>>();

/** What a fetch is for: the word its errors use, the request field they name, the types it takes. */
export interface Wanted {
  label: string;
  param: string;
  accepts: (type: string) => boolean;
  /** For the whole fetch, body included (default 15 s). */
  timeoutMs?: number;
}

const image = (param: string): Wanted => ({ label: 'Image URL', param, accepts: (t) => t.startsWith('image/') });

export async function fetchImage(url: string, allowPrivate: boolean, wanted: Wanted = image('messages')): Promise<FetchedImage> {
  const { mimeType, body } = await openUrl(url, allowPrivate, wanted);
  return { mimeType, data: (await bodyOf(wanted, url, body)).toString('base64') };
}

export interface OpenedUrl {
  mimeType: string;
  /** Content-Length, when the server gave one. */
  length: number | null;
  body: AsyncIterable<Uint8Array> | null;
  /** Lets the answer go unread. */
  close(): Promise<void>;
}

/**
 * GETs `url` through the SSRF guard: its type and its body, not yet read, when it answers 2xx with
 * a type `wanted` takes. A refusal is the request's error (400), the server's own trouble is tried again.
 */
export async function openUrl(url: string, allowPrivate: boolean, wanted: Wanted): Promise<OpenedUrl> {
  const { label, param } = wanted;
  let agent = agents.get(allowPrivate);
  if (!agent) agents.set(allowPrivate, (agent = guardedAgent(allowPrivate)));
  let res;
  try {
    // The guarded agent checks every connection, redirect hops included.
    res = await fetch(url, { dispatcher: agent, redirect: 'follow', signal: AbortSignal.timeout(wanted.timeoutMs ?? 15_000) });
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause;
    if (cause instanceof BlockedAddressError) {
      throw new BadRequestError(`${label} ${url} is not allowed: ${cause.message}`, { param, code: 'url_not_allowed' });
    }
    if (/redirect count exceeded/.test(cause?.message ?? '')) {
      throw new BadRequestError(`${label} ${url} redirects too often (a loop?); give its own address.`, {
        param,
        code: 'image_url_unreadable',
      });
    }
    throw new UpstreamError(`${label} ${url} could not be fetched: ${cause?.message ?? (err as Error).message}`, {
      upstreamStatus: null,
      retryable: true,
      provider: 'http',
    });
  }
  const type = (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (!res.ok || !wanted.accepts(type)) {
    // An answer not read is let go, not left holding its connection.
    await res.body?.cancel().catch(() => {});
    if (!res.ok) return refused(wanted, url, res.status);
    throw new BadRequestError(`${label} ${url} serves ${type || 'no content type'}, which Gemini does not take.`, { param });
  }
  const length = res.headers.get('content-length') === null ? NaN : Number(res.headers.get('content-length'));
  const body = res.body;
  return {
    mimeType: type,
    length: Number.isSafeInteger(length) && length >= 0 ? length : null,
    body,
    close: async () => void (await body?.cancel().catch(() => {})),
  };
}

/** A status the image's server answered: its own trouble is tried again; a refusal is the request's. */
function refused({ label, param }: Wanted, url: string, status: number): never {
  if (isRetryableStatus(status)) {
    throw new UpstreamError(`${label} ${url} answered ${status}`, { upstreamStatus: status, retryable: true, provider: 'http' });
  }
  throw new BadRequestError(`${label} ${url} answered ${status}: give an address that serves it without credentials.`, {
    param,
    code: 'image_url_unreadable',
  });
}

async function bodyOf({ label, param }: Wanted, url: string, body: AsyncIterable<Uint8Array> | null): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of body ?? []) {
      size += c.length;
      if (size > INLINE_LIMIT_BYTES)
        throw new BadRequestError(`${label} ${url} is larger than ${INLINE_LIMIT_BYTES} bytes: upload it with POST /v1/files.`, { param });
      chunks.push(Buffer.from(c));
    }
  } catch (err) {
    if (err instanceof BadRequestError) throw err;
    // Cut off midway (the server closed early or sent less than it said): tried again later.
    throw new UpstreamError(`${label} ${url} stopped sending: ${(err as Error).message}`, {
      upstreamStatus: null,
      retryable: true,
      provider: 'http',
    });
  }
  return Buffer.concat(chunks);
}

/** Fetches a request's http(s) images; with its inline parts they must stay under Gemini's request limit. */
export async function fetchImages(allowPrivate: boolean, rec: JobRecord): Promise<Map<string, FetchedImage>> {
  const out = new Map<string, FetchedImage>();
  const param = inputParamOf(rec);
  let total = rec.inline_bytes;
  for (const url of rec.image_urls) {
    const img = await fetchImage(url, allowPrivate, image(param));
    total += Math.floor((img.data.length * 3) / 4);
    if (total > INLINE_LIMIT_BYTES) {
      throw new PayloadTooLargeError(
        `The request's images and inline data exceed Gemini's ${INLINE_LIMIT_BYTES}-byte request limit; upload them with POST /v1/files.`,
        { param },
      );
    }
    out.set(url, img);
  }
  return out;
}

const FILE: Wanted = { label: 'File URL', param: 'input', accepts: isGeminiMimeType };

/**
 * A response's file URLs as Gemini parts. Gemini fetches public and signed https URLs itself, so
 * one whose name says a type Gemini takes is passed as it is; any other (http, or a name that says
 * nothing) is fetched here, through the SSRF guard, and sent inline within the request's limit.
 */
export async function fileUrlParts(
  allowPrivate: boolean,
  rec: JobRecord,
  images: Map<string, FetchedImage>,
  opts: { fetchAll?: boolean } = {},
): Promise<Map<string, Part>> {
  const out = new Map<string, Part>();
  let total = rec.inline_bytes + [...images.values()].reduce((n, img) => n + Math.floor((img.data.length * 3) / 4), 0);
  for (const url of rec.file_urls ?? []) {
    const mimeType = url.startsWith('https://') && !opts.fetchAll ? mimeTypeOfName(new URL(url).pathname) : null;
    if (mimeType) {
      out.set(url, { fileData: { fileUri: url, mimeType } });
      continue;
    }
    const file = await fetchImage(url, allowPrivate, FILE);
    total += Math.floor((file.data.length * 3) / 4);
    if (total > INLINE_LIMIT_BYTES) {
      throw new PayloadTooLargeError(
        `The request's fetched files and inline data exceed Gemini's ${INLINE_LIMIT_BYTES}-byte request limit; upload them with POST /v1/files.`,
        { param: 'input' },
      );
    }
    out.set(url, { inlineData: file });
  }
  return out;
}
