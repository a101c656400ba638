/**
 * The Files API's wire contract: the form fields `POST /v1/files` takes besides the file (checked,
 * typed), and the file object and event it answers with.
 */
import { BadRequestError } from '../core/errors.js';
import type { FileRecord } from '../core/records/files.js';

/** Purposes whose files go to the model; `batch` input stays with Ferry. */
const MODEL_PURPOSES = ['user_data', 'assistants', 'vision', 'fine-tune', 'evals'];
export const PURPOSES = [...MODEL_PURPOSES, 'batch'];
export const STORAGES = ['gemini', 'azure_storage'] as const;

/** A form field as the multipart parser gives it: a value, repeated `name[]` values, or `name[key]` values. */
export type FieldValue = string | string[] | Record<string, string>;

/** The form fields `POST /v1/files` takes besides the file; any other is a 400 naming it. */
const UPLOAD_FIELDS = [
  'purpose',
  'target_storage',
  'mime_type',
  'display_name',
  'webhook_url',
  'target_model_names',
  'expires_after',
  'url',
];

/** OpenAI's bounds on a file's `expires_after.seconds`: an hour to 30 days. */
export const EXPIRES_AFTER_MIN_SECONDS = 3600;
export const EXPIRES_AFTER_MAX_SECONDS = 30 * 86400;

/** An upload's fields, checked. */
export interface UploadParams {
  purpose: string;
  /** Where the file goes: Gemini or the Azure container (`batch` input stays with Ferry whatever this says). */
  targetStorage: (typeof STORAGES)[number];
  mimeType: string | undefined;
  displayName: string | undefined;
  webhookUrl: string | undefined;
  targetModelNames: string[];
  /** Seconds after creation that the client wants the file gone (`expires_after`), or null for the default. */
  expiresAfterSeconds: number | null;
  /** Ferry's `url`: the file is where this names (https, http or gs://), not in the request. */
  sourceUrl: string | undefined;
}

/** Checks the fields of an upload; `target_storage` may also come in the query string. */
export function checkUploadParams(fields: Record<string, FieldValue>, query: Record<string, unknown>): UploadParams {
  const unknown = Object.keys(fields).find((name) => !UPLOAD_FIELDS.includes(name));
  if (unknown !== undefined) {
    throw new BadRequestError(`Unknown field "${unknown}"; an upload takes "file" and: ${UPLOAD_FIELDS.join(', ')}.`, {
      param: unknown,
      code: 'unknown_parameter',
    });
  }
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
    expiresAfterSeconds: expiresAfter(fields.expires_after, 'expires_after'),
    sourceUrl: sourceUrlOf(singleField(fields, 'url')),
  };
}

/** A Cloud Storage object's address: gs://bucket/object. */
export const GS_URL = /^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]\/\S+$/;

/** The `url` field: an https or http URL, or gs://bucket/object. */
function sourceUrlOf(v: string | undefined): string | undefined {
  if (!v) return undefined;
  if (GS_URL.test(v)) return v;
  const url = URL.canParse(v) ? new URL(v) : null;
  if (url && (url.protocol === 'https:' || url.protocol === 'http:')) return url.href;
  throw new BadRequestError(`"url" must be an https or http URL, or gs://bucket/object; got "${v.slice(0, 200)}".`, {
    param: 'url',
    code: 'invalid_url',
  });
}

/** The name a file named by URL goes by: the last segment of its path, else its host. */
export function fileNameOfUrl(source: string): string {
  const path = source.startsWith('gs://') ? source.slice(5) : new URL(source).pathname;
  const last = path.split('/').filter(Boolean).pop();
  try {
    return (last ? decodeURIComponent(last) : source.startsWith('gs://') ? path : new URL(source).hostname).slice(0, 255);
  } catch {
    return last ?? 'file';
  }
}

/**
 * `expires_after` as OpenAI shapes it, `{anchor: "created_at", seconds}` (in a form,
 * `expires_after[anchor]` and `expires_after[seconds]`): the seconds, or null when absent.
 */
export function expiresAfter(v: unknown, name: string): number | null {
  if (v === undefined || v === null) return null;
  const shape = `"${name}" must be {"anchor": "created_at", "seconds": N} with N from ${EXPIRES_AFTER_MIN_SECONDS} to ${EXPIRES_AFTER_MAX_SECONDS}`;
  if (typeof v !== 'object' || Array.isArray(v)) throw new BadRequestError(`${shape}.`, { param: name });
  const { anchor, seconds, ...rest } = v as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw new BadRequestError(`${shape}; "${extra}" is not one of its fields.`, { param: `${name}.${extra}` });
  if (anchor !== 'created_at') throw new BadRequestError(`${shape}: the only anchor is "created_at".`, { param: `${name}.anchor` });
  const n = typeof seconds === 'string' && /^\d+$/.test(seconds.trim()) ? Number(seconds) : seconds;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < EXPIRES_AFTER_MIN_SECONDS || n > EXPIRES_AFTER_MAX_SECONDS) {
    throw new BadRequestError(`${shape}; got ${JSON.stringify(seconds)}.`, { param: `${name}.seconds` });
  }
  return n;
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
    expires_at: rec.expires_at ?? rec.created_at + retentionSeconds,
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
    source_url: rec.source_url ?? null,
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
