/**
 * The rules of an upload's life (OpenAI's Uploads API): created for a file of a stated size and
 * type, given parts (staged as they come, in parallel and through any API process), then completed
 * with its parts in order, which makes the file; or cancelled; or expired after an hour. Either of
 * the last two deletes its parts.
 *
 * Completing composes the parts as they are staged (a manifest, core/staging-parts.ts: no copy),
 * reads them once in order for the file's sha256 (and the md5 the client gave), then accepts the
 * file as an upload to /v1/files is accepted. The file's id is named when the upload is created, so
 * a completion retried after a crash makes that same file, never a second one.
 */
import { createHash } from 'node:crypto';
import { crashPoint } from '../core/crash-points.js';
import { BadRequestError } from '../core/errors.js';
import { enqueueUpload } from '../core/enqueue.js';
import { newId } from '../core/ids.js';
import { newFileRecord, type FileRecord } from '../core/records/files.js';
import { UPLOAD_TTL_SECONDS, type UploadPart, type UploadRecord } from '../core/records/uploads.js';
import type { Services } from '../core/services.js';
import { composedKey } from '../core/staging-parts.js';
import { nowSeconds } from '../core/time.js';
import { notPending, type UploadCreateParams } from '../openai/uploads.js';
import { acceptOnce } from './accept.js';
import { fileStorage } from './files.js';

/** Where a completion may be killed, in order (with acceptance's own, domain/accept.ts, in between). */
export const COMPLETE_STEPS = ['upload.composed', 'accept.created', 'accept.enqueued', 'upload.file-accepted'] as const;

/** A new upload's record, its file's destination checked first: a file Gemini cannot take is refused before any part is sent. */
export async function createUpload(services: Services, tenant: string, p: UploadCreateParams): Promise<UploadRecord> {
  fileStorage(services.config, { purpose: p.purpose, target: p.targetStorage, bytes: p.bytes, mime: p.mimeType, filename: p.filename });
  const now = nowSeconds();
  const rec: UploadRecord = {
    id: newId('upload', Date.now(), '_'),
    tenant,
    status: 'pending',
    filename: p.filename,
    purpose: p.purpose,
    bytes: p.bytes,
    mime_type: p.mimeType,
    target_storage: p.targetStorage,
    target_model_names: p.targetModelNames,
    file_expires_after_seconds: p.expiresAfterSeconds,
    created_at: now,
    expires_at: now + UPLOAD_TTL_SECONDS,
    file_id: newId('file'),
  };
  await services.uploads.create(rec);
  return rec;
}

/** The upload, if it still takes parts or a completion; otherwise a 400 saying what became of it. */
export function pendingUpload(rec: UploadRecord): UploadRecord {
  if (rec.status === 'pending' && rec.expires_at <= nowSeconds()) throw notPending({ ...rec, status: 'expired' });
  if (rec.status !== 'pending') throw notPending(rec);
  return rec;
}

/** A new part's id and staging key (its bytes are staged under that key before it is recorded). */
export function newPart(upload: UploadRecord): { id: string; staging_key: string } {
  const id = newId('part', Date.now(), '_');
  return { id, staging_key: `${upload.file_id}.${id}` };
}

/** Records a staged part, unless the upload ended meanwhile (then its bytes are dropped and the caller learns why). */
export async function addPart(services: Services, upload: UploadRecord, part: UploadPart): Promise<void> {
  await services.uploads.addPart(upload.id, part);
  const now = await services.uploads.get(upload.id);
  if (!now || now.status !== 'pending') {
    await services.staging.delete(part.staging_key).catch(() => {});
    throw notPending(now ?? { ...upload, status: 'expired' });
  }
}

/** The parts named, in order: each one of this upload's, and together the size the upload stated. */
async function partsInOrder(services: Services, upload: UploadRecord, partIds: string[]): Promise<UploadPart[]> {
  const parts = await services.uploads.parts(upload.id);
  const ordered = partIds.map((id, i) => {
    const part = parts.get(id);
    if (!part) throw new BadRequestError(`No part '${id}' in upload '${upload.id}'.`, { param: `part_ids[${i}]` });
    return part;
  });
  const total = ordered.reduce((n, p) => n + p.bytes, 0);
  if (total !== upload.bytes) {
    throw new BadRequestError(
      `The parts named hold ${total} bytes; the upload was created for ${upload.bytes}. Name every part, or create the upload with the file's real size.`,
      { param: 'part_ids', code: 'upload_size_mismatch' },
    );
  }
  return ordered;
}

/** Reads the composed bytes once: their sha256, and their md5 checked when the client gave one. */
async function sha256Checking(services: Services, key: string, md5: string | null): Promise<string> {
  const sha = createHash('sha256');
  const md = md5 ? createHash('md5') : null;
  for await (const chunk of services.staging.read(key)) {
    sha.update(chunk as Buffer);
    md?.update(chunk as Buffer);
  }
  if (md && md.digest('hex') !== md5) {
    throw new BadRequestError("The md5 given does not match the parts' bytes: a part was sent wrong, or named out of order.", {
      param: 'md5',
      code: 'md5_mismatch',
    });
  }
  return sha.digest('hex');
}

/**
 * Completes the upload with its parts in order: the file is made (and travels on to Gemini or
 * Azure as any upload does), and the upload says completed. Answers the upload and its file.
 */
export async function completeUpload(
  services: Services,
  upload: UploadRecord,
  partIds: string[],
  md5: string | null,
): Promise<{ upload: UploadRecord; file: FileRecord }> {
  // A completion answered once and sent again (a retry after a lost answer) answers the same.
  const made = upload.status === 'completed' ? await services.files.get(upload.file_id) : null;
  if (made) return { upload, file: made };
  pendingUpload(upload);
  const parts = await partsInOrder(services, upload, partIds);
  const key = composedKey(upload.file_id);
  await services.staging.compose(
    key,
    parts.map((p) => ({ key: p.staging_key, bytes: p.bytes })),
  );
  crashPoint('upload.composed');
  const sha256 = await sha256Checking(services, key, md5).catch(async (err: unknown) => {
    await services.staging.decompose(key);
    throw err;
  });
  const storage = fileStorage(services.config, {
    purpose: upload.purpose,
    target: upload.target_storage,
    bytes: upload.bytes,
    mime: upload.mime_type,
    filename: upload.filename,
  });
  const record: FileRecord = {
    ...newFileRecord({
      id: upload.file_id,
      tenant: upload.tenant,
      filename: upload.filename,
      purpose: upload.purpose,
      bytes: upload.bytes,
      sha256,
      mime_type: upload.mime_type,
      storage,
      contentRetentionSeconds: services.config.contentRetentionSeconds,
      target_model_names: upload.target_model_names,
      expiresAfterSeconds: upload.file_expires_after_seconds,
      staged_at: services.staging.location,
    }),
    staging_key: key,
  };
  const { record: file } = await acceptOnce(services, {
    store: services.files,
    record,
    idempotencyKey: null,
    fingerprintOf: [],
    enqueue: record.status === 'uploaded' ? (f) => enqueueUpload(services, f.id) : null,
  });
  crashPoint('upload.file-accepted');
  await services.uploads.transition(upload.id, { status: 'completed' });
  await dropPartsOutside(services, upload.id, new Set(partIds));
  const done = (await services.uploads.get(upload.id)) ?? { ...upload, status: 'completed' as const };
  return { upload: done, file };
}

/** Cancels a pending upload and deletes its parts. */
export async function cancelUpload(services: Services, upload: UploadRecord): Promise<UploadRecord> {
  if (upload.status === 'cancelled') return upload;
  pendingUpload(upload);
  const cancelled = await services.uploads.transitionGet(upload.id, { status: 'cancelled' });
  if (!cancelled) throw notPending((await services.uploads.get(upload.id)) ?? upload);
  await dropParts(services, upload.id);
  return cancelled;
}

/** Parts sent but not named in the completion are not the file's: their bytes go. */
async function dropPartsOutside(services: Services, uploadId: string, named: Set<string>): Promise<void> {
  const parts = await services.uploads.parts(uploadId);
  await Promise.all([...parts.values()].filter((p) => !named.has(p.id)).map((p) => services.staging.delete(p.staging_key)));
}

async function dropParts(services: Services, uploadId: string): Promise<void> {
  const parts = await services.uploads.parts(uploadId);
  await Promise.all([...parts.values()].map((p) => services.staging.delete(p.staging_key)));
  await services.uploads.forgetParts(uploadId);
}

/**
 * Uploads past their hour: a pending one expires; any that did not complete loses its parts. The
 * entry is forgotten last, so a pass cut short does it again.
 */
export async function expireUploads(services: Services, now = nowSeconds()): Promise<number> {
  const { uploads } = services;
  let expired = 0;
  for (;;) {
    const ids = await uploads.dueForExpiry(now);
    if (ids.length === 0) return expired;
    for (const id of ids) {
      const rec = await uploads.get(id);
      if (rec?.status === 'pending') await uploads.transition(id, { status: 'expired' });
      if (rec?.status !== 'completed') await dropParts(services, id);
      await uploads.forgetExpiry(id);
      expired++;
    }
  }
}
