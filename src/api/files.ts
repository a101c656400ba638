/** `/v1/files`: OpenAI's Files API, tenant-scoped, backed by staging and the upload queue. */
import express, { Router, type Request, type Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { BadRequestError, FerryError, GoneError, PayloadTooLargeError } from '../core/errors.js';
import { enqueueUpload } from '../core/enqueue.js';
import { Idempotency } from '../core/idempotency.js';
import { acceptOnce } from '../domain/accept.js';
import { newId } from '../core/ids.js';
import { detectMimeType } from '../core/mime.js';
import { isFinalFile, newFileRecord, type FileRecord, type Storage } from '../core/records/files.js';
import { checkUploadParams, fileNameOfUrl, fileObject, type FieldValue, type UploadParams } from '../openai/files.js';
import { createAzureProvider, type AzureBlobStore } from '../providers/azure/index.js';
import { deleteFile, fileStorage } from '../domain/files.js';
import { beginEarlyUpload, earlyUploadPlan, earlyUploadsPossible, endEarlyUpload } from '../domain/early-uploads.js';
import { principal } from './auth.js';
import { requestLogger } from './request-log.js';
import type { ApiDeps } from './deps.js';
import { parseUpload, type FileStart, type ParsedUpload } from './multipart.js';
import { requestWebhookUrl } from './webhooks.js';
import { assertPublicUrl } from '../core/ssrf.js';
import { answerWhenChanged, waitUntilFinal } from './long-poll.js';
import { listPage, listQuery, listTenants, waitSeconds, withOwner } from './params.js';

export function filesRouter(deps: ApiDeps): Router {
  const { files } = deps.services;
  const view = (rec: FileRecord) => fileObject(rec, deps.services.config.fileRetentionSeconds);
  let azure: AzureBlobStore | null = null;
  const azureBlobs = () => (azure ??= createAzureProvider(deps.services.config));
  const r = Router();

  // A file named by URL may come as JSON; an upload is multipart, parsed as it streams.
  const json = express.json({ limit: '64kb' });
  r.post(
    '/',
    (req, res, next) => (req.is('application/json') ? json(req, res, next) : next()),
    (req: Request, res: Response) =>
      req.is('application/json') ? acceptUrl(deps, req, res, jsonFields(req.body)) : acceptUpload(deps, req, res),
  );

  r.get('/', async (req, res) => {
    const q = listQuery(req, 10_000);
    const purpose = typeof req.query.purpose === 'string' && req.query.purpose ? req.query.purpose : undefined;
    const tenants = await listTenants(deps, req, res);
    const shown = (f: FileRecord) => withOwner(res, f, view(f));
    await answerWhenChanged(deps, req, res, async () => listPage(await files.listFiles(tenants, { ...q, purpose }), shown));
  });

  r.get('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const wait = waitSeconds(req);
    const rec = await files.getOwned(req.params.id, tenant, admin);
    const latest = await waitUntilFinal(deps, files, rec, isFinalFile, wait, res);
    // A file deleted during the wait is gone for this caller too.
    await files.getOwned(latest.id, tenant, admin);
    res.json(withOwner(res, latest, view(latest)));
  });

  r.delete('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const rec = await files.getOwned(req.params.id, tenant, admin);
    await deleteFile(deps.services, rec.id);
    res.json({ id: rec.id, object: 'file', deleted: true });
  });

  r.get('/:id/content', (req, res) => sendContent(deps, azureBlobs, req, res));

  return r;
}

/** Stages the bytes, checks the fields, and accepts the file once (a copy under a repeated key is dropped). */
async function acceptUpload(deps: ApiDeps, req: Request, res: Response) {
  const { files, staging, config } = deps.services;
  const { tenant } = principal(res);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > config.maxFileBytes + 1024 * 1024) {
    throw new PayloadTooLargeError(`The upload is larger than the maximum of ${config.maxFileBytes} bytes.`);
  }
  const idempotencyKey = Idempotency.keyOf(req.headers['idempotency-key']);
  const id = newId('file');
  const early = new EarlyStart(deps, id, tenant, req);
  let parsed: ParsedUpload;
  try {
    parsed = await parseUpload(req, { staging, stagingKey: id, maxBytes: config.maxFileBytes, onFileStart: early.onFileStart });
  } catch (err) {
    await early.end('refused');
    throw err;
  }
  if (!parsed.file && parsed.fields.url !== undefined) return acceptUrl(deps, req, res, parsed.fields);
  try {
    const built = await buildRecord(deps, tenant, id, parsed, req);
    const { record: rec, created } = await acceptOnce(deps.services, {
      store: files,
      record: built,
      idempotencyKey,
      // Same key, same bytes and fields: the original file (this copy of the bytes is dropped).
      fingerprintOf: [built.sha256, parsed.fields, req.query],
      enqueue: built.status === 'uploaded' ? (f) => enqueueUpload(deps.services, f.id) : null,
    });
    // An early upload serves only a new file on its way to Gemini (a field after the file may have sent it elsewhere).
    await early.end(created && rec.storage === 'gemini' ? 'accepted' : 'refused');
    if (!created) await staging.delete(id);
    else
      requestLogger(req).info(
        { file_id: rec.id, tenant, bytes: rec.bytes, mime_type: rec.mime_type, storage: rec.storage },
        'file accepted',
      );
    res.json(fileObject(rec, config.fileRetentionSeconds));
  } catch (err) {
    // A refusal (4xx) made no record; after a server-side failure one may still name these bytes.
    if (err instanceof FerryError && err.status < 500) {
      await early.end('refused');
      await staging.delete(id).catch(() => {});
    }
    throw err;
  }
}

/**
 * The early upload of one request's file (domain/early-uploads.ts): asked for as the bytes begin,
 * where it may start, and told how the request ended. Best effort: the file's own upload does not
 * depend on it, so a failure here is logged and the request goes on.
 */
class EarlyStart {
  private begun: Promise<boolean> = Promise.resolve(false);
  readonly onFileStart: ((start: FileStart) => void) | undefined;

  constructor(
    private readonly deps: ApiDeps,
    private readonly fileId: string,
    private readonly tenant: string,
    private readonly req: Request,
  ) {
    this.onFileStart = earlyUploadsPossible(deps.services.config) ? (start) => this.begin(start) : undefined;
  }

  private begin(start: FileStart) {
    const plan = earlyUploadPlan(this.deps.services.config, {
      ...start,
      fileId: this.fileId,
      tenant: this.tenant,
      stagingKey: this.fileId,
      query: this.req.query,
    });
    if (!plan) return;
    this.begun = beginEarlyUpload(this.deps.services, plan).then(
      () => true,
      (err: Error) => {
        requestLogger(this.req).warn({ err: err.message, file_id: this.fileId }, 'early upload not started');
        return false;
      },
    );
  }

  async end(outcome: 'accepted' | 'refused') {
    if (!(await this.begun)) return;
    await endEarlyUpload(this.deps.services, this.fileId, outcome).catch((err: Error) =>
      requestLogger(this.req).warn({ err: err.message, file_id: this.fileId }, 'early upload not told the outcome'),
    );
  }
}

/**
 * A file named by URL (Ferry's `url`): nothing is staged here. The worker registers it where Gemini
 * reads it (an https URL Gemini fetches, a Cloud Storage object), or fetches it through the SSRF
 * guard and uploads it as any file.
 */
async function acceptUrl(deps: ApiDeps, req: Request, res: Response, fields: Record<string, FieldValue>) {
  const { files, config } = deps.services;
  const { tenant } = principal(res);
  const params = checkUploadParams(fields, req.query);
  const source = params.sourceUrl;
  if (!source) throw noFilePart(fields);
  if (params.purpose === 'batch') {
    throw new BadRequestError('Batch input is sent as a file, not named by URL: upload the JSONL with "file".', { param: 'url' });
  }
  if (!source.startsWith('gs://')) await assertPublicUrl(source, config.allowPrivateNetworks, 'url');
  const filename = fileNameOfUrl(source);
  // From the name alone (the bytes are not here): unknown is left to the worker, which reads the server's type.
  const guessed = await detectMimeType({ override: params.mimeType, filename, head: Buffer.alloc(0) });
  const named = guessed === UNTYPED ? null : guessed;
  const storage = fileStorage(config, { purpose: params.purpose, target: params.targetStorage, bytes: 0, mime: named, filename });
  const built = await fileRecordOf(deps, tenant, params, {
    id: newId('file'),
    filename,
    bytes: 0,
    sha256: '',
    mime_type: named ?? UNTYPED,
    storage,
    source_url: source,
  });
  const { record: rec, created } = await acceptOnce(deps.services, {
    store: files,
    record: built,
    idempotencyKey: Idempotency.keyOf(req.headers['idempotency-key']),
    fingerprintOf: [source, fields, req.query],
    enqueue: (f) => enqueueUpload(deps.services, f.id),
  });
  if (created) requestLogger(req).info({ file_id: rec.id, tenant, storage: rec.storage }, 'file accepted by URL');
  res.json(fileObject(rec, config.fileRetentionSeconds));
}

/** A JSON body's fields as the form's would be (objects and lists as they are). */
function jsonFields(body: unknown): Record<string, FieldValue> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadRequestError('The body must be a JSON object, e.g. {"url": "https://…/report.pdf", "purpose": "user_data"}.');
  }
  return body as Record<string, FieldValue>;
}

/** The original bytes while staged; once they are gone, a file stored in Azure is read from its blob. */
async function sendContent(deps: ApiDeps, azureBlobs: () => AzureBlobStore, req: Request, res: Response) {
  const { files, staging, config } = deps.services;
  const { tenant, admin } = principal(res);
  const rec = await files.getOwned(req.params.id as string, tenant, admin);
  const size = rec.content_deleted ? null : await staging.size(rec.staging_key);
  const content =
    size !== null
      ? { stream: staging.read(rec.staging_key), length: size }
      : rec.storage === 'azure_storage' && rec.status === 'processed' && rec.azure_blob_path
        ? await azureBlobs().open(rec.azure_blob_path)
        : null;
  if (content === null && rec.source_url) {
    throw new BadRequestError(`'${rec.id}' was named by URL and its bytes are read from there: ${rec.source_url}`, {
      code: 'content_at_url',
    });
  }
  if (content === null) {
    throw new GoneError(
      `The bytes of '${rec.id}' are no longer retained (content is kept ${Math.round(config.contentRetentionSeconds / 3600)} h after upload).`,
    );
  }
  res.setHeader('Content-Type', rec.mime_type);
  res.setHeader('Content-Length', String(content.length));
  res.setHeader('Content-Disposition', `attachment; filename*=UTF-8''${encodeURIComponent(rec.filename)}`);
  await pipeline(content.stream, res);
}

/** An upload without its file: a part without a filename arrives as a plain field, and is named so. */
function noFilePart(fields: Record<string, unknown>): BadRequestError {
  const why = fields.file
    ? 'The "file" part has no filename: send it as a file (Content-Disposition: form-data; name="file"; filename="…").'
    : 'No file part: send the file in a multipart part named "file", or name where it is with "url".';
  return new BadRequestError(why, { param: 'file' });
}

async function buildRecord(
  deps: ApiDeps,
  tenant: string,
  id: string,
  parsed: Awaited<ReturnType<typeof parseUpload>>,
  req: Request,
): Promise<FileRecord> {
  const { config } = deps.services;
  const { fields, file } = parsed;
  if (!file) throw noFilePart(fields);
  const params = checkUploadParams(fields, req.query);
  if (params.sourceUrl) {
    throw new BadRequestError('Send the file or name it with "url", not both.', { param: 'url' });
  }
  if (file.bytes === 0) throw new BadRequestError('The file is empty.', { param: 'file' });
  const mime = await detectMimeType({ override: params.mimeType, partType: file.partType, filename: file.filename, head: file.head });
  const storage = fileStorage(config, {
    purpose: params.purpose,
    target: params.targetStorage,
    bytes: file.bytes,
    mime,
    filename: file.filename,
  });
  return fileRecordOf(deps, tenant, params, {
    id,
    filename: file.filename,
    bytes: file.bytes,
    sha256: file.sha256,
    mime_type: mime,
    storage,
  });
}

const UNTYPED = 'application/octet-stream';

/** A new file's record from what the request asked (the fields every way of making a file shares). */
async function fileRecordOf(
  deps: ApiDeps,
  tenant: string,
  params: UploadParams,
  f: { id: string; filename: string; bytes: number; sha256: string; mime_type: string; storage: Storage; source_url?: string },
): Promise<FileRecord> {
  return newFileRecord({
    ...f,
    tenant,
    purpose: params.purpose,
    contentRetentionSeconds: deps.services.config.contentRetentionSeconds,
    target_model_names: params.targetModelNames,
    display_name: params.displayName || f.filename,
    webhook_url: await requestWebhookUrl(deps, tenant, params.webhookUrl),
    expiresAfterSeconds: params.expiresAfterSeconds,
    staged_at: f.source_url ? null : deps.services.staging.location,
  });
}
