/**
 * The Files API's wire contract: the form fields `POST /v1/files` takes besides the file (checked,
 * typed), and the file object and event it answers with.
 */
import { BadRequestError } from '../core/errors.js';
import type { FileRecord } from '../core/records/files.js';

/** Purposes whose files go to the model; `batch` input stays with Ferry. */
const MODEL_PURPOSES = ['user_data', 'assistants', 'vision', 'fine-tune', 'evals'];
const PURPOSES = [...MODEL_PURPOSES, 'batch'];
const STORAGES = ['gemini', 'azure_storage'] as const;

/** A form field as the multipart parser gives it: a value, repeated `name[]` values, or `name[key]` values. */
export type FieldValue = string | string[] | Record<string, string>;

/** An upload's fields, checked. */
export interface UploadParams {
  purpose: string;
  /** Where the file goes: Gemini or the Azure container (`batch` input stays with Ferry whatever this says). */
  targetStorage: (typeof STORAGES)[number];
  mimeType: string | undefined;
  displayName: string | undefined;
  webhookUrl: string | undefined;
  targetModelNames: string[];
}

/** Checks the fields of an upload; `target_storage` may also come in the query string. */
export function checkUploadParams(fields: Record<string, FieldValue>, query: Record<string, unknown>): UploadParams {
  const purpose = singleField(fields, 'purpose');
  if (!purpose) throw new BadRequestError('Missing "purpose" (e.g. "user_data" or "batch").', { param: 'purpose' });
  if (!PURPOSES.includes(purpose)) {
    throw new BadRequestError(`Unknown purpose "${purpose}"; expected one of: ${PURPOSES.join(', ')}.`, { param: 'purpose' });
  }
  const queryStorage = typeof query.target_storage === 'string' ? query.target_storage : undefined;
  const storage = singleField(fields, 'target_storage') || queryStorage || 'gemini';
  if (!(STORAGES as readonly string[]).includes(storage)) {
    throw new BadRequestError(`Unknown target_storage "${storage}"; expected "gemini" or "azure_storage".`, {
      param: 'target_storage',
    });
  }
  return {
    purpose,
    targetStorage: storage as UploadParams['targetStorage'],
    mimeType: singleField(fields, 'mime_type'),
    displayName: singleField(fields, 'display_name') || undefined,
    webhookUrl: singleField(fields, 'webhook_url') || undefined,
    targetModelNames: stringList(fields.target_model_names, 'target_model_names'),
  };
}

/** A field sent once, trimmed; a repeated or keyed one is a 400 naming it. */
function singleField(fields: Record<string, FieldValue>, name: string): string | undefined {
  const v = fields[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new BadRequestError(`"${name}" must be a single string.`, { param: name });
  return v.trim();
}

/** A list field: comma-separated, repeated `name[]`, or keyed `name[i]`. */
function stringList(v: FieldValue | undefined, name: string): string[] {
  if (v === undefined) return [];
  const list = typeof v === 'string' ? v.split(',') : Array.isArray(v) ? v : Object.values(v);
  const out = list.map((s) => s.trim()).filter(Boolean);
  if (out.some((s) => s.length > 200)) throw new BadRequestError(`"${name}" entries must be at most 200 characters.`, { param: name });
  return out;
}

/** The file as the API shows it (and webhook events carry it). */
export function fileObject(rec: FileRecord, retentionSeconds: number) {
  return {
    id: rec.id,
    object: 'file' as const,
    bytes: rec.bytes,
    created_at: rec.created_at,
    expires_at: rec.created_at + retentionSeconds,
    filename: rec.filename,
    purpose: rec.purpose,
    status: rec.status,
    status_details: rec.status_details,
    storage: rec.storage,
    provider_state: rec.provider_state,
    bytes_uploaded: rec.bytes_uploaded,
    mime_type: rec.mime_type,
    sha256: rec.sha256,
    target_model_names: rec.target_model_names,
    provider_file: rec.gemini_name,
    uri: rec.storage === 'azure_storage' ? rec.azure_url : rec.gemini_uri,
    provider_expires_at: rec.gemini_expires_at,
    content_expires_at: rec.content_deleted ? null : rec.content_expires_at,
  };
}

/** The webhook event for a file that reached a final status. */
export function fileEvent(rec: FileRecord, retentionSeconds: number) {
  return {
    type: rec.status === 'processed' ? ('file.processed' as const) : ('file.failed' as const),
    tenant: rec.tenant,
    objectId: rec.id,
    data: fileObject(rec, retentionSeconds) as Record<string, unknown>,
    webhookUrl: rec.webhook_url ?? null,
  };
}
