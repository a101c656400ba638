/**
 * The resumable upload protocol: start, chunks (streamed, hashed and counted as they arrive, never
 * buffered), query and cancel.
 */

import type { Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, truncate, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { EmulatorContext, Handler } from './context.js';
import { invalidArgument, notFound, RpcError } from './errors.js';
import { faultError } from './faults.js';
import type { StoredFile } from './file-store.js';
import { drain, header, readJson, sendEmpty, sendError, sendJson } from './http.js';
import { discardPart, type UploadSession } from './upload-store.js';

/** Non-final chunks must be multiples of this (256 KiB). */
export const CHUNK_GRANULARITY = 256 * 1024;
const START_BODY_LIMIT = 1024 * 1024;
const STORE_HIGH_WATER_MARK = 1024 * 1024;

export type UploadCommand = 'start' | 'chunk' | 'query' | 'cancel' | 'unknown';

/** Reads X-Goog-Upload-Command ("start", "upload", "upload, finalize", "finalize", "query", "cancel"). */
export function parseUploadCommand(value: string | undefined): { command: UploadCommand; finalize: boolean } {
  const words = (value ?? '')
    .toLowerCase()
    .split(',')
    .map((w) => w.trim());
  const finalize = words.includes('finalize');
  if (words.includes('start')) return { command: 'start', finalize: false };
  if (words.includes('upload') || finalize) return { command: 'chunk', finalize };
  if (words.includes('query')) return { command: 'query', finalize: false };
  if (words.includes('cancel')) return { command: 'cancel', finalize: false };
  return { command: 'unknown', finalize: false };
}

const sessionUrl = (baseUrl: string, id: string) => `${baseUrl}/upload/v1beta/files?upload_id=${id}&upload_protocol=resumable`;

const statusHeaders = (session: UploadSession): Record<string, string> => ({
  'X-Goog-Upload-Status': session.status,
  'X-Goog-Upload-Size-Received': String(session.persisted),
});

function requireSession(ctx: EmulatorContext, url: URL): UploadSession {
  const session = ctx.uploads.get(url.searchParams.get('upload_id'));
  if (!session) throw notFound('Upload session not found. It may have expired or never existed.');
  return session;
}

function parseByteCount(raw: string | undefined, what: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw invalidArgument(`Invalid ${what}: "${raw}".`);
  return n;
}

export const handleUploadStart: Handler = async (ctx, req, res, { baseUrl }) => {
  const protocol = header(req, 'x-goog-upload-protocol')?.toLowerCase();
  if (protocol !== 'resumable') {
    throw invalidArgument(`Unsupported X-Goog-Upload-Protocol "${protocol ?? ''}": only "resumable" is supported.`);
  }
  if (parseUploadCommand(header(req, 'x-goog-upload-command')).command !== 'start') {
    throw invalidArgument('A new upload needs X-Goog-Upload-Command: start.');
  }
  const declaredSize = parseByteCount(header(req, 'x-goog-upload-header-content-length'), 'X-Goog-Upload-Header-Content-Length');
  if (declaredSize !== undefined && declaredSize > ctx.opts.maxFileBytes) {
    throw invalidArgument(`File size ${declaredSize} exceeds the maximum of ${ctx.opts.maxFileBytes} bytes.`);
  }
  const body = await readJson(req, START_BODY_LIMIT);
  const file = startFileFields(body);
  const requestedId = file.name?.replace(/^files\//, '');
  if (requestedId !== undefined) ctx.files.checkCustomId(requestedId);

  const session = ctx.uploads.create(
    {
      requestedId,
      displayName: file.displayName,
      mimeType: file.mimeType ?? header(req, 'x-goog-upload-header-content-type') ?? 'application/octet-stream',
      declaredSize,
      kept: ctx.opts.storeDir || (declaredSize ?? 0) > ctx.opts.maxKeptFileBytes ? undefined : [],
    },
    ctx.opts.storeDir,
  );
  if (session.storePath) await writeFile(session.storePath, '');
  const location = sessionUrl(baseUrl, session.id);
  sendEmpty(res, 200, {
    'X-Goog-Upload-URL': location,
    'X-Goog-Upload-Control-URL': location,
    'X-Goog-Upload-Status': 'active',
    'X-Goog-Upload-Chunk-Granularity': String(CHUNK_GRANULARITY),
  });
};

function startFileFields(body: unknown): { name?: string; displayName?: string; mimeType?: string } {
  if (body === undefined) return {};
  const file = typeof body === 'object' && body !== null ? (body as { file?: unknown }).file : null;
  if (file === undefined) return {};
  if (typeof file !== 'object' || file === null) throw invalidArgument('Invalid JSON payload: "file" must be an object.');
  const out: Record<string, string> = {};
  for (const key of ['name', 'displayName', 'mimeType'] as const) {
    const value = (file as Record<string, unknown>)[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw invalidArgument(`Invalid value at 'file.${key}': expected a string.`);
    out[key] = value;
  }
  return out;
}

export const handleUploadChunk: Handler = async (ctx, req, res, { url, baseUrl, fault }) => {
  const session = requireSession(ctx, url);
  const { finalize } = parseUploadCommand(header(req, 'x-goog-upload-command'));
  const countBytes = (n: number) => ctx.stats.addUploadBytes(session.id, n);
  const refuse = async (err: RpcError) => {
    await drain(req, countBytes);
    if (!res.destroyed) sendError(res, err, statusHeaders(session));
  };

  if (fault?.kind === 'reset') {
    const length = parseByteCount(header(req, 'content-length'), 'Content-Length');
    const limit = fault.resetAfterBytes ?? (length !== undefined ? Math.floor(length / 2) : Infinity);
    return cutConnection(req, limit, countBytes);
  }
  if (fault) return refuse(faultError(fault));
  if (session.status !== 'active') return refuse(invalidArgument(`The upload session is already ${session.status}.`));
  if (session.busy) {
    return refuse(new RpcError(409, 'Another chunk of this upload is still being received.', { status: 'ABORTED' }));
  }
  const offset = parseByteCount(header(req, 'x-goog-upload-offset'), 'X-Goog-Upload-Offset');
  if (offset === undefined) return refuse(invalidArgument('Missing X-Goog-Upload-Offset header.'));
  if (offset !== session.persisted) {
    return refuse(
      invalidArgument(
        `Invalid X-Goog-Upload-Offset ${offset}: the server holds ${session.persisted} bytes of this upload; query the session and resume from there.`,
      ),
    );
  }

  session.busy = true;
  let received: Received | undefined;
  try {
    received = await receiveChunk(session, req, offset, countBytes, ctx.opts.maxKeptFileBytes);
  } finally {
    session.busy = false;
  }
  if (!received) return; // the client went away mid-chunk: nothing is persisted
  if (received.storeFailed) return sendError(res, new RpcError(500, 'Failed to store the uploaded bytes.'), statusHeaders(session));

  const total = offset + received.bytes;
  const problem = chunkProblem(ctx, session, received.bytes, total, finalize);
  if (problem) return sendError(res, problem, statusHeaders(session));

  session.hash = received.hash;
  session.persisted = total;
  session.kept = received.parts && session.kept ? session.kept.concat(received.parts) : undefined;
  if (!finalize) return sendEmpty(res, 200, statusHeaders(session));
  const file = await finalizeSession(ctx, session);
  sendJson(res, 200, { file: ctx.files.toResource(file, baseUrl) }, statusHeaders(session));
};

/** Why a fully received chunk is refused (then it is not persisted), or undefined. */
function chunkProblem(ctx: EmulatorContext, session: UploadSession, bytes: number, total: number, finalize: boolean): RpcError | undefined {
  const declared = session.declaredSize;
  if (session.status !== 'active') return invalidArgument(`The upload session is already ${session.status}.`);
  if (!finalize && bytes % CHUNK_GRANULARITY !== 0) {
    return invalidArgument(`Chunk of ${bytes} bytes is not a multiple of ${CHUNK_GRANULARITY} bytes; only the final chunk may be shorter.`);
  }
  if (finalize && declared !== undefined && total !== declared) {
    return invalidArgument(`Upload finalized with ${total} bytes, but X-Goog-Upload-Header-Content-Length declared ${declared}.`);
  }
  if (declared !== undefined && total > declared) {
    return invalidArgument(`Upload of ${total} bytes exceeds the declared ${declared} bytes.`);
  }
  if (total > ctx.opts.maxFileBytes) {
    return invalidArgument(`File size ${total} exceeds the maximum of ${ctx.opts.maxFileBytes} bytes.`);
  }
  if (finalize && session.requestedId !== undefined && ctx.files.get(session.requestedId)) {
    return new RpcError(409, `File files/${session.requestedId} already exists.`);
  }
  return undefined;
}

async function finalizeSession(ctx: EmulatorContext, session: UploadSession): Promise<StoredFile> {
  const file = ctx.files.add({
    id: session.requestedId,
    displayName: session.displayName,
    mimeType: session.mimeType,
    sizeBytes: session.persisted,
    sha256Hex: session.hash.digest('hex'),
    content: session.kept,
  });
  session.kept = undefined;
  session.status = 'final';
  session.file = file;
  ctx.stats.linkSessionToFile(session.id, `files/${file.id}`);
  if (session.storePath && ctx.opts.storeDir) {
    // Refused chunks may have written past the accepted size.
    await truncate(session.storePath, session.persisted);
    const finalPath = join(ctx.opts.storeDir, file.id);
    await rename(session.storePath, finalPath);
    file.storePath = finalPath;
  }
  return file;
}

interface Received {
  bytes: number;
  hash: Hash;
  storeFailed: boolean;
  /** The chunk's pieces while the upload is still within `keepLimit` bytes (the session keeps its bytes). */
  parts?: Buffer[];
}

/**
 * Streams one chunk body: counts it, hashes it into a copy of the session hash (committed only if
 * the chunk is accepted) and, with a store directory, writes it at its offset. Resolves undefined
 * when the connection breaks off before the body ends.
 */
function receiveChunk(
  session: UploadSession,
  req: IncomingMessage,
  offset: number,
  countBytes: (n: number) => void,
  keepLimit: number,
): Promise<Received | undefined> {
  return new Promise((resolve) => {
    if (req.destroyed) return resolve(undefined);
    const hash = session.hash.copy();
    let parts = session.kept ? ([] as Buffer[]) : undefined;
    let bytes = 0;
    let ended = false;
    let storeFailed = false;
    let sink = session.storePath
      ? createWriteStream(session.storePath, { flags: 'r+', start: offset, highWaterMark: STORE_HIGH_WATER_MARK })
      : undefined;
    sink?.on('error', () => {
      storeFailed = true;
      sink = undefined;
      req.resume();
    });
    const resumeReq = () => req.resume();

    req.on('data', (buf: Buffer) => {
      bytes += buf.length;
      hash.update(buf);
      countBytes(buf.length);
      if (parts && offset + bytes > keepLimit) parts = undefined;
      parts?.push(buf);
      if (sink && !sink.write(buf)) {
        req.pause();
        sink.once('drain', resumeReq);
      }
    });
    req.once('end', () => {
      ended = true;
      const done = () => resolve({ bytes, hash, storeFailed, parts });
      if (sink) sink.end(done);
      else done();
    });
    const brokeOff = () => {
      if (ended) return;
      ended = true;
      sink?.destroy();
      resolve(undefined);
    };
    req.once('error', brokeOff);
    req.once('close', brokeOff);
  });
}

/** The 'reset' fault: counts `limit` body bytes, then destroys the socket; nothing is persisted. */
function cutConnection(req: IncomingMessage, limit: number, countBytes: (n: number) => void): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const cut = () => {
      req.removeAllListeners('data');
      req.socket.destroy();
      resolve();
    };
    if (limit <= 0 || req.destroyed) return cut();
    req.on('data', (buf: Buffer) => {
      const take = Math.min(buf.length, limit - seen);
      seen += take;
      countBytes(take);
      if (seen >= limit) cut();
    });
    req.once('end', cut); // the whole chunk arrived first: still cut before answering
    req.once('close', () => resolve());
  });
}

export const handleUploadQuery: Handler = async (ctx, _req, res, { url, baseUrl }) => {
  const session = requireSession(ctx, url);
  if (session.status === 'final' && session.file) {
    return sendJson(res, 200, { file: ctx.files.toResource(session.file, baseUrl) }, statusHeaders(session));
  }
  sendEmpty(res, 200, statusHeaders(session));
};

export const handleUploadCancel: Handler = async (ctx, _req, res, { url }) => {
  const session = requireSession(ctx, url);
  if (session.status === 'final') throw invalidArgument('The upload session is already final.', statusHeaders(session));
  if (session.status === 'active') {
    session.status = 'cancelled';
    session.kept = undefined;
    discardPart(session);
  }
  sendEmpty(res, 200, statusHeaders(session));
};

export const handleUnknownUploadCommand: Handler = async (_ctx, req) => {
  throw invalidArgument(`Unknown X-Goog-Upload-Command "${header(req, 'x-goog-upload-command') ?? ''}".`);
};
