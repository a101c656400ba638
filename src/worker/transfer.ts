/**
 * Moving a file's bytes: its staged copy read as a byte source, and the resumable upload to Gemini
 * that both the upload job (a file's own upload) and the Gemini copy of a file stored elsewhere
 * (gemini-copy.ts) use. What the record keeps of a Gemini copy is decided here too.
 */
import type { Readable } from 'node:stream';
import { UnrecoverableError, type Job } from 'bullmq';
import { UpstreamError } from '../core/errors.js';
import type { FileRecord } from '../core/records/files.js';
import type { Services } from '../core/services.js';
import { describeMissing, missingAzureSettings, type AzureBlobStore } from '../providers/azure/index.js';
import { geminiSha256Hex, type GeminiFile } from '../providers/gemini/files.js';
import type { GeminiProvider } from '../providers/gemini/index.js';

export interface UploadDeps {
  services: Services;
  gemini: GeminiProvider;
  /** Null when the Azure settings are incomplete (the API then refuses azure_storage uploads). */
  azure: AzureBlobStore | null;
}

/** Bytes [start, end] (inclusive) of a file; `close` ends it once the upload is over. */
export type ByteSource = ((start: number, end: number) => Readable | AsyncIterable<Buffer>) & { close?: () => Promise<void> };

/** Reused for every read of one upload (see SequentialReader). */
const READ_BUFFER_BYTES = 1 << 20;

/** The Azure provider, or an unrecoverable error naming the settings this worker lacks. */
export function requireAzure(deps: UploadDeps): AzureBlobStore {
  if (deps.azure) return deps.azure;
  throw new UnrecoverableError(describeMissing(missingAzureSettings(deps.services.config.azure)));
}

/**
 * Counts a tenant's bytes sent upstream (the activity's upload rate) from an upload's progress:
 * each offset reported adds what it moved past the last one.
 */
export function uploadedBytesCounter(services: Services, tenant: string | undefined, from = 0): (offset: number) => void {
  let last = from;
  return (offset) => {
    if (tenant && offset > last) services.activity.count('upload_bytes', tenant, offset - last);
    last = Math.max(last, offset);
  };
}

export const stagedBytesRetained = async (services: Services, rec: FileRecord) =>
  (await services.staging.size(rec.staging_key)) === rec.bytes;

/** The staged bytes of a file, for one sequential upload at a time, or null when they are no longer retained. */
export async function stagedSource(services: Services, rec: FileRecord): Promise<ByteSource | null> {
  if (!(await stagedBytesRetained(services, rec))) return null;
  const reader = services.staging.reader(rec.staging_key, Buffer.allocUnsafe(READ_BUFFER_BYTES));
  return Object.assign((start: number, end: number) => reader.read({ start, end }), { close: () => reader.close() });
}

export const NOT_RETAINED = 'The uploaded bytes are no longer retained, so the upload cannot be completed.';

/**
 * Where a file's bytes are when this worker cannot see them because another process staged them
 * somewhere else (its own directory on another host, another checkout's): null when they are
 * here, or were staged here and are gone (not retained).
 */
export async function stagedOutOfSight(services: Services, rec: FileRecord): Promise<string | null> {
  if (!rec.staged_at || rec.staged_at === services.staging.location) return null;
  return (await stagedBytesRetained(services, rec)) ? null : rec.staged_at;
}

export const outOfSightMessage = (at: string, here: string) =>
  `The uploaded bytes were staged at ${at}, the FERRY_STAGING_DIR of the API process that took the upload, and no worker that reads them took the upload; this one stages at ${here}. Run workers that see that directory (the same one, shared), or set FERRY_STAGING_CONTAINER for the API and the workers alike.`;

export async function requireStaged(services: Services, rec: FileRecord): Promise<ByteSource> {
  const source = await stagedSource(services, rec);
  if (!source) throw new UnrecoverableError(NOT_RETAINED);
  return source;
}

export const percent = (rec: FileRecord, done: number) => (rec.bytes ? Math.floor((100 * done) / rec.bytes) : 0);

/**
 * Uploads a file's bytes to Gemini through the resumable uploader (resuming
 * the session recorded on the file, in any process), records the new Gemini
 * name, and answers the file once Gemini has processed it (ACTIVE or FAILED),
 * or null when the record was deleted meanwhile. Shared by the upload job
 * (`job` given: the file's own upload, its progress is the file's) and the
 * hand-off of Azure-stored or expired files (see gemini-copy.ts).
 */
export async function sendToGemini(deps: UploadDeps, rec: FileRecord, source: ByteSource, job?: Job): Promise<GeminiFile | null> {
  const { files } = deps.services;
  const own = job !== undefined;
  const uploaded = uploadedBytesCounter(deps.services, rec.tenant, rec.upload_url ? rec.upload_offset : 0);
  const file = await deps.gemini.uploader
    .upload({
      size: rec.bytes,
      mimeType: rec.mime_type,
      displayName: rec.display_name,
      source,
      session: rec.upload_url ? { url: rec.upload_url, offset: rec.upload_offset } : null,
      onProgress: async (s) => {
        uploaded(s.offset);
        const progress = own ? { bytes_uploaded: s.offset } : {};
        const alive = await files.update(rec.id, { upload_url: s.url, upload_offset: s.offset, ...progress });
        if (alive && job) await job.updateProgress(percent(rec, s.offset));
        return alive;
      },
    })
    .finally(() => source.close?.().catch(() => {}));
  uploaded(rec.bytes);
  const alive = await files.update(rec.id, {
    gemini_name: file.name,
    gemini_uri: file.uri ?? null,
    upload_offset: rec.bytes,
    ...(own ? { bytes_uploaded: rec.bytes, provider_state: 'processing' as const } : {}),
  });
  if (!alive) {
    await deps.gemini.files.delete(file.name);
    return null;
  }
  return processedGeminiCopy(deps, rec, file.name);
}

/** Waits until Gemini has processed `name`, and checks that it holds the file's bytes. */
export async function processedGeminiCopy(deps: UploadDeps, rec: FileRecord, name: string): Promise<GeminiFile> {
  const file = await deps.gemini.files.waitUntilProcessed(name, deps.services.config.activeWaitSeconds * 1000);
  const upstreamSha = geminiSha256Hex(file.sha256Hash);
  if (upstreamSha && upstreamSha !== rec.sha256) {
    await deps.gemini.files.delete(file.name);
    await deps.services.files.update(rec.id, { gemini_name: null, gemini_uri: null, upload_url: null, upload_offset: 0 });
    throw new UpstreamError(`Gemini holds different bytes (sha256 ${upstreamSha}) than were uploaded`, {
      upstreamStatus: null,
      retryable: true,
    });
  }
  return file;
}

/** What the record keeps of a processed Gemini copy. */
export function activeCopyFields(file: GeminiFile): Partial<FileRecord> {
  return {
    gemini_uri: file.uri ?? null,
    gemini_expires_at: file.expirationTime ? Math.floor(Date.parse(file.expirationTime) / 1000) : null,
    upload_url: null,
  };
}
