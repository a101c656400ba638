/**
 * The upload queue: moves staged bytes to the file's target storage (Gemini
 * or an Azure block blob), and removes everything a deleted file left upstream.
 *
 * Every step is safe to repeat: a job retried or picked up after a crash
 * reads the record, skips what is done (a Gemini name already recorded, a
 * blob already committed), and resumes a started upload from what the
 * upstream confirms (the Gemini session's offset, the blob's uncommitted blocks).
 */
import { crashPoint } from '../core/crash-points.js';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { nowSeconds } from '../core/time.js';
import { FerryError } from '../core/errors.js';
import { isLastAttempt, isTransient } from '../core/attempts.js';
import type { FileRecord } from '../core/records/files.js';
import { emitFileFinal, failFileIfUploading, markFailed, markProcessed } from '../domain/files.js';
import type { Services } from '../core/services.js';
import { UPLOAD_JOBS } from '../core/queues.js';
import type { QueueData, RemoveJobData, UploadJobData } from '../core/queues.js';
import { blobMetadataOf, blobPathOf } from '../providers/azure/index.js';
import type { GeminiFile } from '../providers/gemini/files.js';
import { UploadAbortedError } from '../providers/gemini/uploader.js';
import {
  activeCopyFields,
  NOT_RETAINED,
  percent,
  processedGeminiCopy,
  requireAzure,
  requireStaged,
  sendToGemini,
  outOfSightMessage,
  stagedBytesRetained,
  stagedOutOfSight,
  type UploadDeps,
  uploadedBytesCounter,
} from './transfer.js';
import { takeFromUrl } from './source-url.js';
import { reap, takeEarlySession } from './early-upload.js';

export function uploadProcessor(deps: UploadDeps) {
  return async (job: Job<QueueData['upload']>, token?: string): Promise<unknown> => {
    if (isRemoval(job)) return removeUpstream(deps, job.data);
    return upload(deps, job as Job<UploadJobData>, token);
  };
}

/** The upload queue carries two jobs; the name says which data a job holds. */
const isRemoval = (job: Job<QueueData['upload']>): job is Job<RemoveJobData> => job.name === UPLOAD_JOBS.remove;

async function upload(deps: UploadDeps, job: Job<UploadJobData>, token?: string): Promise<unknown> {
  const { files, logger } = deps.services;
  const { fileId } = job.data;
  const rec = await files.get(fileId);
  if (!rec) return { skipped: 'deleted' };
  if (rec.status !== 'uploaded') {
    // Final already (a retry after a crash): make sure its event went out; ids dedupe it.
    await emitFileFinal(deps.services, fileId);
    return { skipped: rec.status };
  }
  const log = logger.child({ file_id: fileId, tenant: rec.tenant, job_id: job.id, attempt: job.attemptsMade + 1 });
  await handBackIfOutOfSight(deps, job, rec, token);
  await files.update(fileId, { attempts: job.attemptsMade + 1, status_details: null });
  try {
    const out = await uploadTo(deps, rec, job);
    crashPoint('upload.stored');
    await emitFileFinal(deps.services, fileId);
    return out;
  } catch (err) {
    if (err instanceof UploadAbortedError) return { skipped: 'deleted' };
    const message = err instanceof Error ? err.message : String(err);
    const lastTry = !isTransient(err) || isLastAttempt(job);
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

/**
 * Bytes staged where this worker cannot see them: the job goes back to the queue (spending no
 * attempt) for a worker that can, until FERRY_STAGING_HANDBACK_SECONDS after the upload; then the
 * file fails, naming where its bytes are and what to change.
 */
async function handBackIfOutOfSight(deps: UploadDeps, job: Job<UploadJobData>, rec: FileRecord, token?: string): Promise<void> {
  const { services } = deps;
  const at = await stagedOutOfSight(services, rec);
  if (!at) return;
  if (nowSeconds() - rec.created_at < services.config.stagingHandbackSeconds) {
    await job.moveToDelayed(Date.now() + 500 + Math.random() * 1500, token);
    throw new DelayedError();
  }
  const message = outOfSightMessage(at, services.staging.location);
  services.logger.warn(
    { file_id: rec.id, staged_at: at, here: services.staging.location },
    'upload failed: its bytes are staged out of sight',
  );
  await markFailed(services, rec.id, message);
  throw new UnrecoverableError(message);
}

async function uploadTo(deps: UploadDeps, named: FileRecord, job: Job): Promise<unknown> {
  let rec = named;
  if (rec.source_url) {
    const from = await takeFromUrl(deps, rec, rec.source_url);
    if ('registered' in from) return from.registered;
    rec = from.staged;
  }
  if (rec.storage === 'gemini') return uploadToGemini(deps, rec, job);
  if (rec.storage === 'azure_storage') return uploadToAzure(deps, rec, job);
  throw new UnrecoverableError(`storage ${rec.storage} is not handled by this worker`);
}

async function uploadToAzure(deps: UploadDeps, rec: FileRecord, job: Job): Promise<unknown> {
  const { files, staging } = deps.services;
  const azure = requireAzure(deps);
  if (!(await stagedBytesRetained(deps.services, rec))) throw new UnrecoverableError(NOT_RETAINED);
  // Recorded first, so that a file deleted mid-upload has its blob removed too.
  const path = rec.azure_blob_path ?? blobPathOf(rec);
  await files.update(rec.id, { provider_state: 'uploading', azure_blob_path: path });
  const uploaded = uploadedBytesCounter(deps.services, rec.tenant);
  const target = {
    size: rec.bytes,
    contentType: rec.mime_type,
    metadata: blobMetadataOf(rec),
    onProgress: async (done: number) => {
      uploaded(done);
      const alive = await files.update(rec.id, { bytes_uploaded: done });
      if (alive) await job.updateProgress(percent(rec, done));
      return alive;
    },
  };
  const sourceUrl = staging.copySourceIn?.(azure.account, rec.staging_key) ?? null;
  // Otherwise blocks go out several at a time, so each gets a stream of its own rather than a shared buffer.
  const outcome = sourceUrl
    ? await azure.copy(path, { ...target, sourceUrl })
    : await azure.upload(path, { ...target, source: (start, end) => staging.read(rec.staging_key, { start, end }) });
  if (outcome === 'aborted') return { skipped: 'deleted' };
  uploaded(rec.bytes);
  const processed = await markProcessed(deps.services, rec.id, {
    provider_state: 'stored',
    bytes_uploaded: rec.bytes,
    azure_url: azure.urlOf(path),
  });
  if (!processed) await azure.delete(path);
  return { stored: path, ...(sourceUrl ? { copied: 'server-side' } : {}) };
}

async function uploadToGemini(deps: UploadDeps, rec: FileRecord, job: Job): Promise<unknown> {
  const { files } = deps.services;
  const geminiFiles = deps.gemini.files;
  let name = rec.gemini_name;
  // A name recorded by an earlier attempt that has since vanished upstream: upload again.
  if (name && !(await geminiFiles.get(name))) name = null;
  let file: GeminiFile | null;
  if (name) file = await processedGeminiCopy(deps, rec, name);
  else {
    await files.update(rec.id, { provider_state: 'uploading' });
    const from = await takeEarlySession(deps, rec);
    file = await sendToGemini(deps, from, await requireStaged(deps.services, rec), job);
    if (!file) return { skipped: 'deleted' };
  }
  return finishGemini(deps, rec, file);
}

async function finishGemini(deps: UploadDeps, rec: FileRecord, file: GeminiFile): Promise<unknown> {
  if (file.state === 'FAILED') {
    await markFailed(deps.services, rec.id, `Gemini could not process the file: ${file.error?.message ?? 'state FAILED'}`);
    return { state: 'FAILED' };
  }
  const processed = await markProcessed(deps.services, rec.id, { ...activeCopyFields(file), provider_state: 'active' });
  if (!processed) await deps.gemini.files.delete(file.name);
  return { state: file.state, name: file.name };
}

/** Removes what a deleted file left: staged bytes, an open upload session, the Gemini copy, the blob. */
async function removeUpstream(deps: UploadDeps, data: RemoveJobData): Promise<unknown> {
  await deps.services.staging.delete(data.staging_key);
  if (data.upload_url) await deps.gemini.uploader.cancel(data.upload_url);
  await reap(deps, data.fileId);
  if (data.gemini_name) await deps.gemini.files.delete(data.gemini_name);
  if (data.azure_blob_path) await requireAzure(deps).delete(data.azure_blob_path);
  return { removed: data.fileId };
}

/** A job that will not run again (retries spent, stalled too often): the file says so. */
export async function onUploadJobFailedForGood(services: Services, job: Job<QueueData['upload']>, err: Error): Promise<void> {
  if (isRemoval(job)) return;
  await failFileIfUploading(services, job.data.fileId, err instanceof FerryError ? err.message : `upload failed: ${err.message}`);
}
