/**
 * `/v1/batches`: OpenAI's Batch API. Creating a batch checks the request and
 * the input file's record, then enqueues the batch's flow (see
 * src/worker/batch.ts); the worker validates every line before anything runs.
 */
import { Router } from 'express';
import { BATCH_EXECUTIONS, type BatchExecution } from '../core/config.js';
import { BadRequestError, ConflictError, GoneError } from '../core/errors.js';
import { enqueueBatch } from '../core/enqueue.js';
import { Idempotency } from '../core/idempotency.js';
import { acceptOnce } from '../domain/accept.js';
import { newId } from '../core/ids.js';
import { BATCH_JOBS, jobIds } from '../core/queues.js';
import { batchObject, isFinalBatch, windowSeconds, type BatchRecord } from '../core/records/batches.js';
import { principal } from './auth.js';
import { jsonBody } from './json-body.js';
import { newBatchRecord } from '../domain/batches.js';
import { requestLogger } from './request-log.js';
import type { ApiDeps } from './deps.js';
import { waitUntilFinal } from './long-poll.js';
import { listPage, listQuery, waitSeconds } from './params.js';
import { nowSeconds } from '../core/time.js';

const ENDPOINTS = ['/v1/chat/completions'];

/** `execution`: how the lines run; absent, FERRY_BATCH_EXECUTION decides. */
function batchExecution(v: unknown, fallback: BatchExecution): BatchExecution {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'string' && (BATCH_EXECUTIONS as readonly string[]).includes(v)) return v as BatchExecution;
  throw new BadRequestError(
    '"execution" must be "direct" (each line a live call) or "gemini_batch" (Gemini Batch Mode, half price, up to 24 h).',
    { param: 'execution' },
  );
}

function checkMetadata(v: unknown): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  const ok =
    typeof v === 'object' &&
    !Array.isArray(v) &&
    Object.keys(v).length <= 16 &&
    Object.entries(v).every(([k, val]) => k.length <= 64 && typeof val === 'string' && val.length <= 512);
  if (!ok)
    throw new BadRequestError('"metadata" must be an object of up to 16 string values (keys up to 64, values up to 512 characters).', {
      param: 'metadata',
    });
  return v as Record<string, string>;
}

export function batchesRouter(deps: ApiDeps): Router {
  const { services } = deps;
  const { batches, files, config } = services;
  const view = async (rec: BatchRecord) => batchObject(rec, await batches.counts(rec));
  const r = Router();
  r.use(jsonBody('1mb'));

  r.post('/', async (req, res) => {
    const { tenant } = principal(res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const known = ['input_file_id', 'endpoint', 'completion_window', 'metadata', 'execution'];
    const unknown = Object.keys(body).find((k) => !known.includes(k));
    if (unknown) throw new BadRequestError(`Unsupported parameter "${unknown}".`, { param: unknown });
    if (typeof body.input_file_id !== 'string' || !body.input_file_id)
      throw new BadRequestError('"input_file_id" is required.', { param: 'input_file_id' });
    if (typeof body.endpoint !== 'string' || !ENDPOINTS.includes(body.endpoint)) {
      throw new BadRequestError(`"endpoint" must be one of: ${ENDPOINTS.join(', ')}.`, { param: 'endpoint' });
    }
    const window = windowSeconds(body.completion_window);
    const execution = batchExecution(body.execution, config.batch.execution);
    const metadata = checkMetadata(body.metadata);
    const input = await files.getOwned(body.input_file_id, tenant, false, 'input_file_id');
    if (input.purpose !== 'batch')
      throw new BadRequestError(`File '${input.id}' has purpose "${input.purpose}"; batch input is uploaded with purpose "batch".`, {
        param: 'input_file_id',
      });
    if (input.bytes > config.batch.maxBytes) {
      throw new BadRequestError(`File '${input.id}' is larger than the ${config.batch.maxBytes} bytes one batch takes.`, {
        param: 'input_file_id',
        code: 'file_too_large',
      });
    }
    if (input.content_deleted) throw new GoneError(`The bytes of '${input.id}' are no longer retained.`);

    const { record: rec, created } = await acceptOnce(services, {
      store: batches,
      record: newBatchRecord({
        id: newId('batch', Date.now(), '_'),
        tenant,
        endpoint: body.endpoint as string,
        inputFileId: input.id,
        completionWindow: body.completion_window as string,
        windowSeconds: window,
        metadata,
        createdAt: nowSeconds(),
        execution,
      }),
      idempotencyKey: Idempotency.keyOf(req.headers['idempotency-key']),
      fingerprintOf: [body],
      enqueue: (batch) => enqueueBatch(services, batch),
    });
    if (created) requestLogger(req).info({ batch_id: rec.id, tenant, input_file_id: input.id }, 'batch accepted');
    res.json(await view(rec));
  });

  r.get('/', async (req, res) => {
    const { tenant } = principal(res);
    const page = await batches.list(tenant, listQuery(req, 100, 20));
    const data = await Promise.all(page.data.map(view));
    res.json(listPage({ data, has_more: page.has_more }, (b) => b));
  });

  r.get('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const wait = waitSeconds(req);
    const rec = await batches.getOwned(req.params.id, tenant, admin);
    res.json(await view(await waitUntilFinal(deps, batches, rec, isFinalBatch, wait, res)));
  });

  r.post('/:id/cancel', async (req, res) => {
    const { tenant, admin } = principal(res);
    const rec = await batches.getOwned(req.params.id, tenant, admin);
    await batches.transition(rec.id, { status: 'cancelling', cancelling_at: nowSeconds() });
    const now = await batches.getOwned(rec.id, tenant, admin);
    if (now.status !== 'cancelling' && now.status !== 'cancelled') {
      throw new ConflictError(`Batch '${rec.id}' is ${now.status} and can no longer be cancelled.`, { code: 'batch_not_cancellable' });
    }
    // Enqueued on every call while cancelling (one job per batch): a repeated cancel repairs a lost enqueue.
    if (now.status === 'cancelling')
      await services.queues.batch.add(BATCH_JOBS.cancel, { batchId: rec.id }, { jobId: jobIds.batch(BATCH_JOBS.cancel, rec.id) });
    res.json(await view(now));
  });

  return r;
}
