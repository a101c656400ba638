/**
 * The Gemini copy of a file, for every file a completion references.
 *
 * - `gemini` files: the copy made at upload while it is still there and not
 *   about to expire (Gemini keeps files 48 h); otherwise uploaded again from
 *   the retained staged bytes, or a clear error once those are gone.
 * - `azure_storage` files, FERRY_AZURE_HANDOFF=transfer (the default): the blob
 *   is streamed into the Gemini Files API on first use and the copy is cached
 *   on the record until it expires; then it is transferred again.
 * - `azure_storage` files, FERRY_AZURE_HANDOFF=signed_url: a short-lived
 *   read-only SAS URL that Gemini fetches itself, for files under Gemini's
 *   limit for external URLs; larger files are transferred.
 *
 * Uploads go through the same resumable uploader as the upload queue
 * (`sendToGemini`), so a transfer cut short resumes where it stopped. A short
 * Redis lease keeps two processes from transferring the same file at once; the
 * other waits, polling the record, and uses the copy the first one made.
 */
import { ConflictError, GoneError, UnavailableError, UpstreamError } from '../core/errors.js';
import { sleep } from '../core/retry.js';
import type { FileRecord } from '../core/records/files.js';
import { Lease } from '../core/lease.js';
import { fileUsability } from '../domain/files.js';
import { GEMINI_EXTERNAL_URL_MAX_BYTES } from '../providers/gemini/files.js';
import { registerCloudObject } from './source-url.js';
import { activeCopyFields, requireAzure, sendToGemini, stagedSource, type ByteSource, type UploadDeps } from './transfer.js';
import { nowSeconds } from '../core/time.js';

export interface GeminiCopy {
  fileUri: string;
  mimeType: string;
}

/** How long a signed URL handed to Gemini stays valid. */
const SIGNED_URL_TTL_MS = 30 * 60_000;
/** A copy this close to its expiry is replaced rather than used. */
const EXPIRY_MARGIN_SECONDS = 3600;
const LOCK_TTL_MS = 30_000;
const POLL_MS = 250;

/**
 * The Gemini copy of a processed file. `until` (unix seconds): the copy must still be there then,
 * as a batch run on Gemini Batch Mode needs; a signed URL, short-lived, is then not an option.
 */
export async function ensureGeminiCopy(deps: UploadDeps, fileRecord: FileRecord, until?: number): Promise<GeminiCopy> {
  const rec = fileRecord;
  const use = fileUsability(rec.id, rec, null);
  if (!use.usable) throw use.error;
  if (rec.status !== 'processed') {
    throw new ConflictError(`File '${rec.id}' is not ready for use (status "${rec.status}").`, { code: 'file_not_ready' });
  }
  // Named by an https URL that Gemini fetches itself (worker/source-url.ts): used as it is.
  if (rec.source_url && rec.gemini_uri === rec.source_url) return { fileUri: rec.source_url, mimeType: rec.mime_type };
  const { config } = deps.services;
  const signed = config.azure.handoff === 'signed_url' && until === undefined;
  if (rec.storage === 'azure_storage' && signed && rec.bytes <= GEMINI_EXTERNAL_URL_MAX_BYTES) {
    const fileUri = await requireAzure(deps).signedReadUrl(blobPath(rec), SIGNED_URL_TTL_MS);
    return { fileUri, mimeType: rec.mime_type };
  }
  return cachedOrTransferred(deps, rec, until ?? 0);
}

function blobPath(rec: FileRecord): string {
  if (!rec.azure_blob_path) throw new UpstreamError(`File '${rec.id}' has no blob recorded`, { upstreamStatus: null, retryable: false });
  return rec.azure_blob_path;
}

/** The recorded copy if Gemini still holds it ACTIVE and it will not expire soon (nor before `until`). */
async function liveCopy(deps: UploadDeps, rec: FileRecord, until: number): Promise<GeminiCopy | null> {
  const needed = Math.max(nowSeconds() + EXPIRY_MARGIN_SECONDS, until);
  if (!rec.gemini_name || !rec.gemini_expires_at || rec.gemini_expires_at < needed) return null;
  const file = await deps.gemini.files.get(rec.gemini_name);
  const fileUri = file?.uri ?? rec.gemini_uri;
  return file?.state === 'ACTIVE' && fileUri ? { fileUri, mimeType: rec.mime_type } : null;
}

async function cachedOrTransferred(deps: UploadDeps, first: FileRecord, until: number): Promise<GeminiCopy> {
  const { files, config } = deps.services;
  const lock = new Lease(deps.services.redis, deps.services.keys.geminiCopyLock(first.id), LOCK_TTL_MS);
  const deadline = Date.now() + config.activeWaitSeconds * 1000;
  let rec = first;
  for (;;) {
    const live = await liveCopy(deps, rec, until);
    if (live) return live;
    if (await lock.acquire()) {
      try {
        // Someone may have finished a copy between our look and the lock.
        const current = await files.get(rec.id);
        if (!current) throw new GoneError(`File '${rec.id}' was deleted.`);
        return (await liveCopy(deps, current, until)) ?? (await transfer(deps, current));
      } finally {
        await lock.release();
      }
    }
    // Another process is copying: wait for its result on the record, or for its lock to go.
    const stale = rec.gemini_name;
    for (;;) {
      if (Date.now() > deadline) throw new UnavailableError(`Timed out waiting for the Gemini copy of '${rec.id}'.`);
      await sleep(POLL_MS);
      const current = await files.get(rec.id);
      if (!current) throw new GoneError(`File '${rec.id}' was deleted.`);
      rec = current;
      if ((rec.gemini_name && rec.gemini_name !== stale && rec.gemini_expires_at) || !(await lock.held())) break;
    }
  }
}

/** Uploads the file's bytes to Gemini again (from the blob or the staged bytes) and records the new copy. */
async function transfer(deps: UploadDeps, rec: FileRecord): Promise<GeminiCopy> {
  const { files } = deps.services;
  const registered = await registerCloudObject(deps, rec);
  if (registered) return registered;
  const source = await sourceOf(deps, rec);
  // A copy still alive may be what a running Gemini batch or a call in flight reads: it expires on its own.
  const alive = rec.gemini_expires_at !== null && rec.gemini_expires_at > nowSeconds();
  if (rec.gemini_name && !alive) await deps.gemini.files.delete(rec.gemini_name).catch(() => {});
  await files.update(rec.id, { gemini_name: null, gemini_uri: null, gemini_expires_at: null });
  const file = await sendToGemini(deps, rec, source);
  if (!file) throw new GoneError(`File '${rec.id}' was deleted.`);
  if (file.state === 'FAILED') {
    throw new UpstreamError(`Gemini could not process file '${rec.id}': ${file.error?.message ?? 'state FAILED'}`, {
      upstreamStatus: null,
      retryable: false,
    });
  }
  const fields = activeCopyFields(file);
  await files.update(rec.id, fields);
  if (!fields.gemini_uri) throw new UpstreamError(`Gemini answered no uri for ${file.name}`, { upstreamStatus: null, retryable: true });
  return { fileUri: fields.gemini_uri, mimeType: rec.mime_type };
}

async function sourceOf(deps: UploadDeps, rec: FileRecord): Promise<ByteSource> {
  if (rec.storage === 'azure_storage') {
    const azure = requireAzure(deps);
    const path = blobPath(rec);
    return (start, end) => azure.readRange(path, start, end);
  }
  const staged = await stagedSource(deps.services, rec);
  if (!staged) {
    throw new GoneError(
      `The Gemini copy of file '${rec.id}' has expired and its bytes are no longer retained, so it cannot be sent again; upload the file again.`,
    );
  }
  return staged;
}
