/**
 * `POST /v1/embeddings`: validated here, embedded by a worker (so the call takes its turn in the
 * model's quota like any other), answered when done — past FERRY_SYNC_WAIT_SECONDS, 202 with the
 * job to poll, as chat completions do.
 */
import { Router } from 'express';
import { enqueueGenerate } from '../core/enqueue.js';
import { Idempotency } from '../core/idempotency.js';
import { newId } from '../core/ids.js';
import { acceptOnce } from '../domain/accept.js';
import { newEmbeddingRecord } from '../domain/jobs.js';
import { checkRequestModel } from '../domain/models.js';
import { validateEmbeddingRequest } from '../openai/embeddings.js';
import { answerOf } from '../openai/jobs.js';
import { principal } from './auth.js';
import type { ApiDeps } from './deps.js';
import { acceptedJob, answerFailed, waitForJob } from './jobs.js';
import { jsonBody } from './json-body.js';
import { requestLogger } from './request-log.js';

export function embeddingsRouter(deps: ApiDeps): Router {
  const { services } = deps;
  const r = Router();
  r.use(jsonBody('32mb'));

  r.post('/', async (req, res) => {
    const { tenant } = principal(res);
    const embedding = validateEmbeddingRequest(req.body);
    await checkRequestModel(services, embedding.model, undefined, 'embedContent');
    const { record: rec, created } = await acceptOnce(services, {
      budgeted: true,
      store: services.jobs,
      record: newEmbeddingRecord({ id: newId('job'), tenant, embedding }),
      idempotencyKey: Idempotency.keyOf(req.headers['idempotency-key']),
      fingerprintOf: [req.body],
      enqueue: (job) => enqueueGenerate(services, job),
    });
    if (created)
      requestLogger(req).info({ job_id: rec.id, tenant, model: rec.model, inputs: embedding.texts.length }, 'embeddings accepted');
    res.setHeader('X-Ferry-Job-Id', rec.id);
    const done = await waitForJob(deps, rec, services.config.syncWaitSeconds, res);
    if (res.writableEnded || res.destroyed) return;
    if (done.status === 'succeeded') return res.json(answerOf(done));
    if (done.status === 'failed' || done.status === 'cancelled') return answerFailed(res, done);
    acceptedJob(res, done);
  });

  return r;
}
