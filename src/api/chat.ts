/**
 * `POST /v1/chat/completions`: validated here, run by a worker.
 * - default: waits for the result (up to FERRY_SYNC_WAIT_SECONDS) and answers the
 *   `chat.completion`; past the wait, 202 with the job and `Location` — never a lost result;
 * - `Prefer: respond-async`: 202 at once;
 * - `stream: true`: Server-Sent Events relayed from the worker through a Redis Stream.
 */
import { checkRequestModel } from '../domain/models.js';
import { Router, type Request, type Response } from 'express';
import { enqueueGenerate } from '../core/enqueue.js';
import { Idempotency } from '../core/idempotency.js';
import { acceptOnce } from '../domain/accept.js';
import { newId } from '../core/ids.js';
import type { JobRecord } from '../core/records/jobs.js';
import { validateChatRequest } from '../openai/chat.js';
import { principal } from './auth.js';
import { jsonBody } from './json-body.js';
import { fileUsability } from '../domain/files.js';
import type { StreamEntry } from '../domain/job-stream.js';
import { relayJobStream } from './stream-relay.js';
import { chatRequestOf, completionIds, newJobRecord } from '../domain/jobs.js';
import { requestLogger } from './request-log.js';
import type { ApiDeps } from './deps.js';
import { acceptedJob, answerFailed, waitForJob } from './jobs.js';
import { requestWebhookUrl } from './webhooks.js';

function prefersAsync(req: Request): boolean {
  const prefer = String(req.headers.prefer ?? '');
  return prefer.split(/[,;]/).some((p) => p.trim().toLowerCase() === 'respond-async');
}

/** Answers a final job as the OpenAI SDK expects: the completion, or the error with its status. */
function answerFinal(res: Response, rec: JobRecord) {
  if (rec.status === 'succeeded') return res.json(rec.result);
  answerFailed(res, rec);
}

export function chatRouter(deps: ApiDeps): Router {
  const { services } = deps;
  const { jobs, files, config } = services;
  const r = Router();
  r.use(jsonBody('32mb'));

  r.post('/completions', async (req, res) => {
    const { tenant } = principal(res);
    const chat = validateChatRequest(req.body);
    const maxField = chat.body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
    await checkRequestModel(services, chat.model, { field: maxField, value: chat.body[maxField] });
    for (const id of chat.fileIds) {
      const use = fileUsability(id, await files.get(id), tenant);
      if (!use.usable) throw use.error;
    }

    const webhookUrl = await requestWebhookUrl(deps, tenant, chat.body.webhook_url);
    const { record: rec, created } = await acceptOnce(services, {
      budgeted: true,
      store: jobs,
      record: newJobRecord({ id: newId('job'), tenant, chat, webhookUrl }),
      idempotencyKey: Idempotency.keyOf(req.headers['idempotency-key']),
      fingerprintOf: [req.body],
      enqueue: (job) => enqueueGenerate(services, job),
    });
    if (created) requestLogger(req).info({ job_id: rec.id, tenant, model: rec.model, files: rec.file_ids.length }, 'job accepted');
    res.setHeader('X-Ferry-Job-Id', rec.id);

    if (prefersAsync(req)) return acceptedJob(res, rec);
    if (chat.stream) return relayStream(deps, req, res, rec);
    const done = await waitForJob(deps, rec, config.syncWaitSeconds, res);
    if (res.writableEnded || res.destroyed) return;
    if (done.status === 'succeeded' || done.status === 'failed' || done.status === 'cancelled') return answerFinal(res, done);
    acceptedJob(res, done);
  });

  return r;
}

/** Relays the worker's chunks as OpenAI `chat.completion.chunk` events, ending with `data: [DONE]`. */
function relayStream(deps: ApiDeps, req: Request, res: Response, rec: JobRecord) {
  const includeUsage = chatRequestOf(rec).stream_options?.include_usage === true;
  const send: Send = (data) => void res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  return relayJobStream(deps, req, res, rec, {
    entries: (entries) => relayEntries(entries, rec, includeUsage, send),
    ended: (now) => {
      if (now?.status === 'succeeded') send('[DONE]');
      else send({ error: now?.error ?? { message: `Job '${rec.id}' has ended.`, type: 'server_error', param: null, code: 'job_ended' } });
    },
    stopping: () => send({ error: restarting(rec) }),
  });
}

type Send = (data: unknown) => void;

/** Sends the worker's entries as events; answers whether the stream has ended. */
function relayEntries(entries: StreamEntry[], rec: JobRecord, includeUsage: boolean, send: Send): boolean {
  for (const entry of entries) {
    if (entry.kind === 'chunk') send(entry.chunk);
    else if (entry.kind === 'usage') {
      if (includeUsage) send({ ...completionIds(rec), object: 'chat.completion.chunk', choices: [], usage: entry.usage });
    } else if (entry.kind === 'done') {
      send('[DONE]');
      return true;
    } else {
      const error =
        entry.kind === 'error'
          ? entry.error
          : { message: `Job '${rec.id}' was cancelled.`, type: 'invalid_request_error', code: 'job_cancelled', param: null };
      send({ error: { message: error.message, type: error.type, param: error.param, code: error.code } });
      return true;
    }
  }
  return false;
}

/** The last event of a stream cut short by the API stopping: the job goes on, and where to read it. */
const restarting = (rec: JobRecord) => ({
  message: `This Ferry API is stopping; job '${rec.id}' goes on, and GET /v1/jobs/${rec.id} answers its result.`,
  type: 'server_error',
  param: null,
  code: 'server_stopping',
});
