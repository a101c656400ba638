/**
 * The upload queue: moves staged bytes to the file's target storage, and
 * removes everything a deleted file left upstream.
 *
 * Every step is safe to repeat: a job retried or picked up after a crash
 * reads the record, skips what is done (a Gemini name already recorded),
 * and resumes a started upload from the offset the session confirms.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { FerryError, UpstreamError } from '../core/errors.js';
import { isRetryable } from '../core/retry.js';
import type { FileRecord } from '../core/records/files.js';
import type { Services } from '../core/services.js';
import { UPLOAD_JOBS } from '../core/queues.js';
import { geminiSha256Hex, type GeminiFile } from '../providers/gemini/files.js';
import { UploadAbortedError } from '../providers/gemini/uploader.js';
import type { GeminiProvider } from '../providers/gemini/index.js';

export interface UploadJobData {
  fileId: string;
}

/** What a removal needs, captured when the record is deleted. */
export interface RemoveJobData {
  fileId: string;
  staging_key: string;
  storage: FileRecord['storage'];
  gemini_name: string | null;
  upload_url: string | null;
  azure_blob_path: string | null;
}

export interface UploadDeps {
  services: Services;
  gemini: GeminiProvider;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export function uploadProcessor(deps: UploadDeps) {
  return async (job: Job): Promise<unknown> => {
    if (job.name === UPLOAD_JOBS.remove) return removeUpstream(deps, job.data as RemoveJobData);
    return upload(deps, job);
  };
}

async function upload(deps: UploadDeps, job: Job): Promise<unknown> {
  const { files, logger } = deps.services;
  const { fileId } = job.data as UploadJobData;
  const rec = await files.get(fileId);
  if (!rec) return { skipped: 'deleted' };
  if (rec.status !== 'uploaded') return { skipped: rec.status };
  const log = logger.child({ file_id: fileId, tenant: rec.tenant, job_id: job.id, attempt: job.attemptsMade + 1 });
  await files.update(fileId, { attempts: job.attemptsMade + 1, status_details: null });
  try {
    if (rec.storage === 'gemini') return await uploadToGemini(deps, rec, job);
    throw new UnrecoverableError(`storage ${rec.storage} is not handled by this worker`);
  } catch (err) {
    if (err instanceof UploadAbortedError) return { skipped: 'deleted' };
    const message = err instanceof Error ? err.message : String(err);
    const lastTry = !isRetryable(err) || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (lastTry) {
      log.warn({ err: message }, 'upload failed');
      await markFailed(deps.services, fileId, message);
      throw new UnrecoverableError(message);
    }
    log.info({ err: message }, 'upload attempt failed; will retry');
    await files.update(fileId, { status_details: `retrying after: ${message}` });
    throw err;
  }
}

export async function markFailed(services: Services, fileId: string, message: string): Promise<void> {
  await services.files.update(fileId, { status: 'error', provider_state: 'failed', status_details: message });
}

async function uploadToGemini(deps: UploadDeps, rec: FileRecord, job: Job): Promise<unknown> {
  const { files, staging } = deps.services;
  const { uploader, files: geminiFiles } = deps.gemini;
  let name = rec.gemini_name;
  // A name recorded by an earlier attempt that has since vanished upstream: upload again.
  if (name && !(await geminiFiles.get(name))) name = null;
  if (!name) {
    await files.update(rec.id, { provider_state: 'uploading' });
    const staged = await staging.size(rec.staging_key);
    if (staged !== rec.bytes) {
      throw new UnrecoverableError('The uploaded bytes are no longer retained, so the upload cannot be completed.');
    }
    const file = await uploader.upload({
      size: rec.bytes,
      mimeType: rec.mime_type,
      displayName: rec.display_name,
      source: (start, end) => staging.read(rec.staging_key, { start, end }),
      session: rec.upload_url ? { url: rec.upload_url, offset: rec.upload_offset } : null,
      onProgress: async (s) => {
        const alive = await files.update(rec.id, { upload_url: s.url, upload_offset: s.offset, bytes_uploaded: s.offset });
        if (alive) await job.updateProgress(rec.bytes ? Math.floor((100 * s.offset) / rec.bytes) : 0);
        return alive;
      },
    });
    name = file.name;
    const alive = await files.update(rec.id, {
      gemini_name: file.name,
      gemini_uri: file.uri ?? null,
      bytes_uploaded: rec.bytes,
      upload_offset: rec.bytes,
      provider_state: 'processing',
    });
    if (!alive) {
      await geminiFiles.delete(file.name);
      return { skipped: 'deleted' };
    }
  }
  const file = await geminiFiles.waitUntilProcessed(name, deps.services.config.activeWaitSeconds * 1000);
  return finishGemini(deps, rec, file);
}

async function finishGemini(deps: UploadDeps, rec: FileRecord, file: GeminiFile): Promise<unknown> {
  const { files } = deps.services;
  if (file.state === 'FAILED') {
    await markFailed(deps.services, rec.id, `Gemini could not process the file: ${file.error?.message ?? 'state FAILED'}`);
    return { state: 'FAILED' };
  }
  const upstreamSha = geminiSha256Hex(file.sha256Hash);
  if (upstreamSha && upstreamSha !== rec.sha256) {
    await deps.gemini.files.delete(file.name);
    await files.update(rec.id, { gemini_name: null, gemini_uri: null, upload_url: null, upload_offset: 0 });
    throw new UpstreamError(`Gemini holds different bytes (sha256 ${upstreamSha}) than were uploaded`, null, true);
  }
  const expires = file.expirationTime ? Math.floor(Date.parse(file.expirationTime) / 1000) : null;
  const alive = await files.update(rec.id, {
    status: 'processed',
    provider_state: 'active',
    status_details: null,
    gemini_uri: file.uri ?? null,
    gemini_expires_at: expires,
    upload_url: null,
    processed_at: nowSeconds(),
  });
  if (!alive) await deps.gemini.files.delete(file.name);
  return { state: file.state, name: file.name };
}

/** Removes what a deleted file left: staged bytes, an open upload session, the Gemini copy. */
async function removeUpstream(deps: UploadDeps, data: RemoveJobData): Promise<unknown> {
  await deps.services.staging.delete(data.staging_key);
  if (data.upload_url) await deps.gemini.uploader.cancel(data.upload_url);
  if (data.gemini_name) await deps.gemini.files.delete(data.gemini_name);
  return { removed: data.fileId };
}

/** A job that will not run again (retries spent, stalled too often): the file says so. */
export async function onUploadJobFailedForGood(services: Services, job: Job, err: Error): Promise<void> {
  if (job.name !== UPLOAD_JOBS.upload) return;
  const rec = await services.files.get((job.data as UploadJobData).fileId);
  if (rec && rec.status === 'uploaded') {
    await markFailed(services, rec.id, err instanceof FerryError ? err.message : `upload failed: ${err.message}`);
  }
}
