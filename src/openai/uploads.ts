/**
 * The Uploads API's wire contract (a file sent in parts): what `POST /v1/uploads` and
 * `/v1/uploads/{id}/complete` take, checked and typed, and the Upload and Part objects they answer.
 */
import { BadRequestError } from '../core/errors.js';
import type { FileRecord } from '../core/records/files.js';
import type { UploadPart, UploadRecord } from '../core/records/uploads.js';
import { bad, isObj } from './fields.js';
import { expiresAfter, fileObject, PURPOSES, STORAGES } from './files.js';

/** OpenAI's limits: a part up to 64 MB, an upload up to 8 GB. */
export const PART_MAX_BYTES = 64 * 1024 * 1024;
export const UPLOAD_MAX_BYTES = 8 * 1024 * 1024 * 1024;

const CREATE_FIELDS = ['filename', 'purpose', 'bytes', 'mime_type', 'expires_after', 'target_storage', 'target_model_names'];
const COMPLETE_FIELDS = ['part_ids', 'md5'];

export interface UploadCreateParams {
  filename: string;
  purpose: string;
  bytes: number;
  mimeType: string;
  targetStorage: (typeof STORAGES)[number];
  targetModelNames: string[];
  expiresAfterSeconds: number | null;
}

function refuseUnknown(body: Record<string, unknown>, known: string[]) {
  const unknown = Object.keys(body).find((k) => !known.includes(k));
  if (unknown !== undefined) throw bad(`Unsupported parameter "${unknown}"; this takes: ${known.join(', ')}.`, unknown);
}

/** Checks `POST /v1/uploads`. */
export function checkUploadCreate(body: unknown): UploadCreateParams {
  if (!isObj(body)) throw new BadRequestError('The body must be a JSON object.');
  refuseUnknown(body, CREATE_FIELDS);
  const { filename, purpose, bytes, mime_type: mimeType } = body;
  if (typeof filename !== 'string' || !filename.trim())
    throw bad('"filename" is required: the name of the file being uploaded.', 'filename');
  if (typeof purpose !== 'string' || !PURPOSES.includes(purpose)) throw bad(`"purpose" must be one of: ${PURPOSES.join(', ')}.`, 'purpose');
  if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < 1 || bytes > UPLOAD_MAX_BYTES)
    throw bad(`"bytes" must be the file's size, a whole number from 1 to ${UPLOAD_MAX_BYTES}.`, 'bytes');
  if (typeof mimeType !== 'string' || !/^[\w.+-]+\/[\w.+-]+$/.test(mimeType.trim()))
    throw bad('"mime_type" is required: the file\'s MIME type, e.g. "application/pdf".', 'mime_type');
  const storage = body.target_storage ?? 'gemini';
  if (typeof storage !== 'string' || !(STORAGES as readonly string[]).includes(storage))
    throw bad('"target_storage" must be "gemini" or "azure_storage".', 'target_storage');
  const names = body.target_model_names ?? [];
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || !n.trim() || n.length > 200))
    throw bad('"target_model_names" must be a list of model names.', 'target_model_names');
  return {
    filename: filename.trim(),
    purpose,
    bytes,
    mimeType: mimeType.trim(),
    targetStorage: storage as UploadCreateParams['targetStorage'],
    targetModelNames: names.map((n: string) => n.trim()),
    expiresAfterSeconds: expiresAfter(body.expires_after, 'expires_after'),
  };
}

/** Checks `POST /v1/uploads/{id}/complete`: the parts in order, and the md5 the bytes must have. */
export function checkUploadComplete(body: unknown): { partIds: string[]; md5: string | null } {
  if (!isObj(body)) throw new BadRequestError('The body must be a JSON object.');
  refuseUnknown(body, COMPLETE_FIELDS);
  const { part_ids: partIds, md5 } = body;
  if (!Array.isArray(partIds) || partIds.length === 0 || partIds.some((p) => typeof p !== 'string'))
    throw bad('"part_ids" must list the ids of the upload\'s parts, in the order of the file.', 'part_ids');
  const dup = partIds.findIndex((p, i) => partIds.indexOf(p) !== i);
  if (dup >= 0) throw bad(`"part_ids" names part '${partIds[dup]}' twice.`, `part_ids[${dup}]`);
  if (md5 !== undefined && md5 !== null && md5 !== '' && (typeof md5 !== 'string' || !/^[0-9a-fA-F]{32}$/.test(md5)))
    throw bad('"md5" must be the hex MD5 digest of the whole file (32 hex digits).', 'md5');
  return { partIds, md5: typeof md5 === 'string' && md5 ? md5.toLowerCase() : null };
}

/** The Upload object; `file` once completed. */
export function uploadObject(rec: UploadRecord, file: FileRecord | null, fileRetentionSeconds: number) {
  return {
    id: rec.id,
    object: 'upload' as const,
    bytes: rec.bytes,
    created_at: rec.created_at,
    filename: rec.filename,
    purpose: rec.purpose,
    status: rec.status,
    expires_at: rec.expires_at,
    file: file ? fileObject(file, fileRetentionSeconds) : null,
  };
}

/** The Upload Part object. */
export function partObject(uploadId: string, part: UploadPart) {
  return { id: part.id, object: 'upload.part' as const, created_at: part.created_at, upload_id: uploadId };
}

/** A 400 about the upload's state (not pending any more), naming what happened to it. */
export function notPending(rec: UploadRecord): BadRequestError {
  const why =
    rec.status === 'completed'
      ? `was completed as file '${rec.file_id}'`
      : rec.status === 'cancelled'
        ? 'was cancelled'
        : 'expired (an upload is completed within an hour of its creation)';
  return new BadRequestError(`Upload '${rec.id}' ${why}; create a new upload to send the file again.`, {
    param: null,
    code: `upload_${rec.status}`,
  });
}
