/**
 * The rules of a file's use: whether a file may be a document in a chat completion. The API
 * checks a request with it, batch validation checks each line with it, and the worker checks
 * again when the job runs (a file can fail or be deleted meanwhile): one rule, one message.
 */
import { FerryError } from '../core/errors.js';
import type { FileRecord } from '../core/records/files.js';

export type FileUsability = { usable: true; ready: boolean } | { usable: false; error: FerryError };

/** Purposes whose files stay with Ferry: batch input and output are data about requests, not documents. */
const NOT_DOCUMENTS = new Set(['batch', 'batch_output']);

/**
 * Whether file `id` (its record `f`, or null) may be a document of `tenant`'s completion, and if
 * so whether it is ready (processed) or still on its way to Gemini or Azure.
 */
export function fileUsability(id: string, f: FileRecord | null, tenant: string | null): FileUsability {
  if (!f || (tenant !== null && f.tenant !== tenant)) {
    return { usable: false, error: new FerryError(404, `No such file: '${id}'.`, 'invalid_request_error', 'not_found', 'messages') };
  }
  if (f.status === 'error') {
    const why = `File '${id}' failed to upload: ${f.status_details ?? 'unknown error'}`;
    return { usable: false, error: new FerryError(400, why, 'invalid_request_error', 'file_failed', 'messages') };
  }
  if (NOT_DOCUMENTS.has(f.purpose) || f.storage === 'local') {
    const why = `File '${id}' has purpose "${f.purpose}": batch input and output are not documents for the model.`;
    return { usable: false, error: new FerryError(400, why, 'invalid_request_error', 'file_not_usable', 'messages') };
  }
  return { usable: true, ready: f.status === 'processed' };
}
