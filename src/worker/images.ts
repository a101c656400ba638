/** Fetches an http(s) image named in a chat request, through the SSRF guard, to send it inline. */
import { BadRequestError, isRetryableStatus, PayloadTooLargeError, UpstreamError } from '../core/errors.js';
import type { JobRecord } from '../core/records/jobs.js';
import { fetch } from 'undici';
import { BlockedAddressError, guardedAgent } from '../core/ssrf.js';
import type { FetchedImage } from '../providers/gemini/mapping.js';
import { INLINE_LIMIT_BYTES } from '../openai/chat.js';

const agents = new Map<boolean, ReturnType<typeof guardedAgent>>();

export async function fetchImage(url: string, allowPrivate: boolean): Promise<FetchedImage> {
  let agent = agents.get(allowPrivate);
  if (!agent) agents.set(allowPrivate, (agent = guardedAgent(allowPrivate)));
  let res;
  try {
    // The guarded agent checks every connection, redirect hops included.
    res = await fetch(url, { dispatcher: agent, redirect: 'follow', signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause;
    if (cause instanceof BlockedAddressError) {
      throw new BadRequestError(`Image URL ${url} is not allowed: ${cause.message}`, { param: 'messages', code: 'url_not_allowed' });
    }
    if (/redirect count exceeded/.test(cause?.message ?? '')) {
      throw new BadRequestError(`Image URL ${url} redirects too often (a loop?); give the image's own address.`, {
        param: 'messages',
        code: 'image_url_unreadable',
      });
    }
    throw new UpstreamError(`Image URL ${url} could not be fetched: ${cause?.message ?? (err as Error).message}`, {
      upstreamStatus: null,
      retryable: true,
      provider: 'http',
    });
  }
  const type = (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (!res.ok || !type.startsWith('image/')) {
    // An answer not read is let go, not left holding its connection.
    await res.body?.cancel().catch(() => {});
    if (!res.ok) return refused(url, res.status);
    throw new BadRequestError(`Image URL ${url} is not an image (${type || 'no content type'}).`, { param: 'messages' });
  }
  return { mimeType: type, data: (await bodyOf(url, res.body)).toString('base64') };
}

/** A status the image's server answered: its own trouble is tried again; a refusal is the request's. */
function refused(url: string, status: number): never {
  if (isRetryableStatus(status)) {
    throw new UpstreamError(`Image URL ${url} answered ${status}`, { upstreamStatus: status, retryable: true, provider: 'http' });
  }
  throw new BadRequestError(`Image URL ${url} answered ${status}: give an address that serves the image without credentials.`, {
    param: 'messages',
    code: 'image_url_unreadable',
  });
}

async function bodyOf(url: string, body: AsyncIterable<Uint8Array> | null): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of body ?? []) {
      size += c.length;
      if (size > INLINE_LIMIT_BYTES)
        throw new BadRequestError(`Image URL ${url} is larger than ${INLINE_LIMIT_BYTES} bytes.`, { param: 'messages' });
      chunks.push(Buffer.from(c));
    }
  } catch (err) {
    if (err instanceof BadRequestError) throw err;
    // Cut off midway (the server closed early or sent less than it said): tried again later.
    throw new UpstreamError(`Image URL ${url} stopped sending: ${(err as Error).message}`, {
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
  let total = rec.inline_bytes;
  for (const url of rec.image_urls) {
    const img = await fetchImage(url, allowPrivate);
    total += Math.floor((img.data.length * 3) / 4);
    if (total > INLINE_LIMIT_BYTES) {
      throw new PayloadTooLargeError(
        `The request's images and inline data exceed Gemini's ${INLINE_LIMIT_BYTES}-byte request limit; upload them with POST /v1/files.`,
        { param: 'messages' },
      );
    }
    out.set(url, img);
  }
  return out;
}
