/** `/v1/uploads`: OpenAI's Uploads API (a file sent in parts), tenant-scoped; the rules are domain/uploads.ts. */
import { Router, type Request, type Response } from 'express';
import { BadRequestError } from '../core/errors.js';
import type { UploadRecord } from '../core/records/uploads.js';
import { nowSeconds } from '../core/time.js';
import { addPart, cancelUpload, completeUpload, createUpload, newPart, pendingUpload } from '../domain/uploads.js';
import { checkUploadComplete, checkUploadCreate, PART_MAX_BYTES, partObject, uploadObject } from '../openai/uploads.js';
import { principal } from './auth.js';
import type { ApiDeps } from './deps.js';
import { jsonBody } from './json-body.js';
import { parseUpload } from './multipart.js';
import { requestLogger } from './request-log.js';

export function uploadsRouter(deps: ApiDeps): Router {
  const { services } = deps;
  const retention = services.config.fileRetentionSeconds;
  const owned = async (req: Request, res: Response): Promise<UploadRecord> => {
    const { tenant, admin } = principal(res);
    return services.uploads.getOwned(req.params.id as string, tenant, admin);
  };
  const r = Router();

  const json = jsonBody('1mb');
  r.post('/', ...json, async (req: Request, res: Response) => {
    const { tenant } = principal(res);
    const rec = await createUpload(services, tenant, checkUploadCreate(req.body));
    requestLogger(req).info({ upload_id: rec.id, tenant, bytes: rec.bytes }, 'upload created');
    res.json(uploadObject(rec, null, retention));
  });

  r.post('/:id/parts', async (req, res) => {
    const upload = pendingUpload(await owned(req, res));
    const { id, staging_key } = newPart(upload);
    const parsed = await parseUpload(req, {
      staging: services.staging,
      stagingKey: staging_key,
      maxBytes: PART_MAX_BYTES,
      filePart: 'data',
    });
    try {
      const extra = Object.keys(parsed.fields)[0];
      if (extra !== undefined) throw new BadRequestError(`Unsupported field "${extra}"; a part is sent as "data" alone.`, { param: extra });
      if (!parsed.file || parsed.file.bytes === 0)
        throw new BadRequestError('A part needs its bytes, in a file part named "data".', { param: 'data' });
      const part = { id, bytes: parsed.file.bytes, created_at: nowSeconds(), staging_key };
      await addPart(services, upload, part);
      res.json(partObject(upload.id, part));
    } catch (err) {
      await services.staging.delete(staging_key).catch(() => {});
      throw err;
    }
  });

  r.post('/:id/complete', ...json, async (req: Request, res: Response) => {
    const upload = await owned(req, res);
    const { partIds, md5 } = checkUploadComplete(req.body);
    const done = await completeUpload(services, upload, partIds, md5);
    requestLogger(req).info({ upload_id: upload.id, file_id: done.file.id, bytes: done.file.bytes }, 'upload completed');
    res.json(uploadObject(done.upload, done.file, retention));
  });

  r.post('/:id/cancel', async (req, res) => {
    const cancelled = await cancelUpload(services, await owned(req, res));
    res.json(uploadObject(cancelled, null, retention));
  });

  return r;
}
