/**
 * The rules of a file's use and end. Whether a file may be a document in a chat completion: the
 * API checks a request with it, batch validation each line, and the worker again when the job
 * runs (a file can fail or be deleted meanwhile): one rule, one message. And what deleting one
 * sets in motion.
 */
import { BadRequestError, NotFoundError, type FerryError } from '../core/errors.js';
import { jobIds, UPLOAD_JOBS, type RemoveJobData } from '../core/queues.js';
import type { FileRecord } from '../core/records/files.js';
import type { Services } from '../core/services.js';

export type FileUsability = { usable: true; ready: boolean } | { usable: false; error: FerryError };

/** Purposes whose files stay with Ferry: batch input and output are data about requests, not documents. */
const NOT_DOCUMENTS = new Set(['batch', 'batch_output']);

/**
 * Whether file `id` (its record `f`, or null) may be a document of `tenant`'s completion, and if
 * so whether it is ready (processed) or still on its way to Gemini or Azure.
 */
export function fileUsability(id: string, f: FileRecord | null, tenant: string | null): FileUsability {
  if (!f || (tenant !== null && f.tenant !== tenant)) {
    return {
      usable: false,
      error: new NotFoundError(`No such file: '${id}'.`, { param: 'messages' }),
    };
  }
  if (f.status === 'error') {
    const why = `File '${id}' failed to upload: ${f.status_details ?? 'unknown error'}`;
    return {
      usable: false,
      error: new BadRequestError(why, { param: 'messages', code: 'file_failed' }),
    };
  }
  if (NOT_DOCUMENTS.has(f.purpose) || f.storage === 'local') {
    const why = `File '${id}' has purpose "${f.purpose}": batch input and output are not documents for the model.`;
    return {
      usable: false,
      error: new BadRequestError(why, { param: 'messages', code: 'file_not_usable' }),
    };
  }
  return { usable: true, ready: f.status === 'processed' };
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
  await services.queues.upload.add(UPLOAD_JOBS.remove, data, { jobId: jobIds.remove(id) });
}
