/**
 * The rules of a file's use and end. Whether a file may be a document in a chat completion: the
 * API checks a request with it, batch validation each line, and the worker again when the job
 * runs (a file can fail or be deleted meanwhile): one rule, one message. How an upload ends
 * (processed or failed, with its event), and what deleting one sets in motion.
 */
import { BadRequestError, NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError, type FerryError } from '../core/errors.js';
import type { Config } from '../core/config.js';
import { describeMissing, missingAzureSettings } from '../providers/azure/index.js';
import { isGeminiMimeType } from '../providers/gemini/mime.js';
import { jobIds, type RemoveJobData } from '../core/queues.js';
import { isFinalFile, type FileRecord, type Storage } from '../core/records/files.js';
import type { Services } from '../core/services.js';
import { enqueueRemoval } from '../core/enqueue.js';
import { nowSeconds } from '../core/time.js';
import { fileEvent } from '../openai/files.js';
import { emitSafely } from './webhooks.js';

export type FileUsability = { usable: true; ready: boolean } | { usable: false; error: FerryError };

/** Purposes whose files stay with Ferry: batch input and output are data about requests, not documents. */
const NOT_DOCUMENTS = new Set(['batch', 'batch_output']);

/**
 * Whether file `id` (its record `f`, or null) may be a document of `tenant`'s request, and if
 * so whether it is ready (processed) or still on its way to Gemini or Azure. `param` is the
 * request field that named it (`messages` of a chat completion, `input` of a response).
 */
export function fileUsability(id: string, f: FileRecord | null, tenant: string | null, param = 'messages'): FileUsability {
  if (!f || (tenant !== null && f.tenant !== tenant)) {
    return {
      usable: false,
      error: new NotFoundError(`No such file: '${id}'.`, { param }),
    };
  }
  if (f.status === 'error') {
    const why = `File '${id}' failed to upload: ${f.status_details ?? 'unknown error'}`;
    return {
      usable: false,
      error: new BadRequestError(why, { param, code: 'file_failed' }),
    };
  }
  if (NOT_DOCUMENTS.has(f.purpose) || f.storage === 'local') {
    const why = `File '${id}' has purpose "${f.purpose}": batch input and output are not documents for the model.`;
    return {
      usable: false,
      error: new BadRequestError(why, { param, code: 'file_not_usable' }),
    };
  }
  return { usable: true, ready: f.status === 'processed' };
}

/**
 * Where a new file goes, or why it cannot: batch input stays with Ferry (within the batch limit);
 * Azure needs its settings; Gemini takes only the types it reads, and up to its size limit.
 */
export function fileStorage(
  config: Config,
  /** `mime` null: not known yet (a file named by URL is typed when it is reached). */
  f: { purpose: string; target: 'gemini' | 'azure_storage'; bytes: number; mime: string | null; filename: string },
): Storage {
  if (f.purpose === 'batch') {
    if (f.bytes > config.batch.maxBytes)
      throw new PayloadTooLargeError(`Batch input is limited to ${config.batch.maxBytes} bytes; this file has ${f.bytes}.`);
    return 'local';
  }
  const missingAzure = f.target === 'azure_storage' ? missingAzureSettings(config.azure) : [];
  if (missingAzure.length > 0)
    throw new BadRequestError(describeMissing(missingAzure), { param: 'target_storage', code: 'azure_storage_not_configured' });
  if (f.target === 'gemini' && f.mime !== null && !isGeminiMimeType(f.mime)) {
    throw new UnsupportedMediaTypeError(
      `Gemini cannot take files of type "${f.mime}" ("${f.filename}"). Send a document, image, audio, video or text file, or set "mime_type" if the type was guessed wrong.`,
    );
  }
  if (f.target === 'gemini' && f.bytes > config.maxFileBytes)
    throw new PayloadTooLargeError(
      `Gemini takes files of up to ${config.maxFileBytes} bytes (FERRY_MAX_FILE_BYTES); this one has ${f.bytes}. Send it with "target_storage": "azure_storage", or split it.`,
    );
  return f.target;
}

/**
 * Deletes a file's record; an upload not yet started never runs, a running one sees the record
 * gone and stops, and a removal job deletes the Gemini copy, the blob and the staged bytes.
 */
export async function deleteFile(services: Services, id: string): Promise<void> {
  const removed = await services.files.remove(id);
  if (!removed) return;
  await services.queues.upload.remove(jobIds.upload(id)).catch(() => 0);
  const data: RemoveJobData = {
    fileId: id,
    staging_key: removed.staging_key,
    storage: removed.storage,
    gemini_name: removed.gemini_name,
    upload_url: removed.upload_url,
    azure_blob_path: removed.azure_blob_path,
  };
  await enqueueRemoval(services, data);
}

/**
 * The upload is done: the record says processed. False only when the file was deleted meanwhile
 * (the caller then removes what it stored); a file already failed for good keeps its error.
 */
export async function markProcessed(services: Services, fileId: string, fields: Partial<FileRecord>): Promise<boolean> {
  const patch = { ...fields, status: 'processed' as const, status_details: null, processed_at: nowSeconds() };
  return (await services.files.transition(fileId, patch)) || (await services.files.get(fileId)) !== null;
}

/** The file failed for good: its record says why, and its event goes out. */
export async function markFailed(services: Services, fileId: string, message: string): Promise<void> {
  // Only from "uploaded": a slower twin of a job that already finished cannot turn it into an error.
  const failed = await services.files.transitionGet(fileId, {
    status: 'error',
    provider_state: 'failed',
    status_details: message,
  });
  if (failed) await emitSafely(services, fileEvent(failed, services.config.fileRetentionSeconds));
}

export async function emitFileFinal(services: Services, fileId: string): Promise<void> {
  const rec = await services.files.get(fileId);
  if (rec && isFinalFile(rec)) await emitSafely(services, fileEvent(rec, services.config.fileRetentionSeconds));
}

/** Fails the file unless its upload ended meanwhile (a job given up on after retries or stalls). */
export async function failFileIfUploading(services: Services, fileId: string, message: string): Promise<void> {
  const rec = await services.files.get(fileId);
  if (rec && rec.status === 'uploaded') await markFailed(services, rec.id, message);
}
