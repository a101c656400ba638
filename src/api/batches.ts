/**
 * `/v1/batches`: OpenAI's Batch API. Creating a batch checks the request and
 * the input file's record, then enqueues the batch's flow (see
 * src/worker/batch.ts); the worker validates every line before anything runs.
 */
import { Router, type Request, type Response } from 'express';
import { BadRequestError, GoneError } from '../core/errors.js';
import { batchObject, checkBatchCreate } from '../openai/batches.js';
import { costUsd } from '../core/records/usage.js';
import { enqueueBatch } from '../core/enqueue.js';
import { Idempotency } from '../core/idempotency.js';
import { acceptOnce } from '../domain/accept.js';
import { newId } from '../core/ids.js';
import { isFinalBatch, type BatchRecord } from '../core/records/batches.js';
import type { FileRecord } from '../core/records/files.js';
import { principal } from './auth.js';
import { jsonBody } from './json-body.js';
import { cancelBatch, newBatchRecord } from '../domain/batches.js';
import { requestLogger } from './request-log.js';
import type { ApiDeps } from './deps.js';
import { answerWhenChanged, isConditional, waitUntilFinal } from './long-poll.js';
import { listPage, listQuery, listTenants, waitSeconds, withOwner } from './params.js';
import { nowSeconds } from '../core/time.js';

export function batchesRouter(deps: ApiDeps): Router {
  const { services } = deps;
  const { batches } = services;
  // What the batch has cost so far, from the usage ledger (Ferry's field beside OpenAI's `usage`).
  const view = async (rec: BatchRecord) => {
    const [counts, spent] = await Promise.all([batches.counts(rec), deps.services.usage.ofBatch(rec.tenant, rec.id)]);
    return batchObject(rec, counts, costUsd(spent));
  };
  const r = Router();
  r.use(jsonBody('1mb'));

  r.post('/', async (req, res) => res.json(await view(await createBatch(deps, req, res))));

  r.get('/', async (req, res) => {
    const [tenants, q] = [await listTenants(deps, req, res), listQuery(req, 100, 20)];
    await answerWhenChanged(deps, req, res, async () => {
      const page = await batches.list(tenants, q);
      const data = await Promise.all(page.data.map(async (b) => withOwner(res, b, await view(b))));
      return listPage({ data, has_more: page.has_more }, (b) => b);
    });
  });

  r.get('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const wait = waitSeconds(req);
    const rec = await batches.getOwned(req.params.id, tenant, admin);
    const shown = async (b: BatchRecord) => withOwner(res, b, await view(b));
    if (isConditional(req) || !wait)
      return answerWhenChanged(deps, req, res, async () => shown(await batches.getOwned(rec.id, tenant, admin)));
    res.json(await shown(await waitUntilFinal(deps, batches, rec, isFinalBatch, wait, res)));
  });

  r.post('/:id/cancel', async (req, res) => {
    const { tenant, admin } = principal(res);
    const rec = await batches.getOwned(req.params.id, tenant, admin);
    res.json(await view(await cancelBatch(services, rec)));
  });

  return r;
}

/** Checks the request and its input file, then accepts the batch once. */
async function createBatch(deps: ApiDeps, req: Request, res: Response): Promise<BatchRecord> {
  const { services } = deps;
  const { batches, config } = services;
  const { tenant } = principal(res);
  const params = checkBatchCreate((req.body ?? {}) as Record<string, unknown>, config.batch.execution);
  const input = await usableInput(deps, tenant, params.input_file_id);
  const { record: rec, created } = await acceptOnce(services, {
    budgeted: true,
    store: batches,
    record: newBatchRecord({ id: newId('batch', Date.now(), '_'), tenant, params, createdAt: nowSeconds() }),
    idempotencyKey: Idempotency.keyOf(req.headers['idempotency-key']),
    fingerprintOf: [req.body],
    enqueue: (batch) => enqueueBatch(services, batch),
  });
  if (created) requestLogger(req).info({ batch_id: rec.id, tenant, input_file_id: input.id }, 'batch accepted');
  return rec;
}

/** The tenant's batch input file, still retained and within the batch limits. */
async function usableInput(deps: ApiDeps, tenant: string, id: string): Promise<FileRecord> {
  const { files, config } = deps.services;
  const input = await files.getOwned(id, tenant, false, 'input_file_id');
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
  return input;
}
