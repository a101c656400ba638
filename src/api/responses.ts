/**
 * `/v1/responses`: validated here, run by a worker as a job of type `response`.
 * - default: waits for the answer (up to FERRY_SYNC_WAIT_SECONDS) and answers the response; past
 *   the wait, the response as it stands (`queued` or `in_progress`), to retrieve later;
 * - `background: true`: answers at once with the queued response; webhook events when it ends;
 * - `stream: true`: the Responses event stream relayed from the worker, resumable with
 *   `GET /v1/responses/{id}?stream=true&starting_after=N`.
 */
import { Router, type Request, type Response } from 'express';
import { BadRequestError, ConflictError, PayloadTooLargeError } from '../core/errors.js';
import { INLINE_LIMIT_BYTES } from '../openai/chat.js';
import { enqueueGenerate } from '../core/enqueue.js';
import { Idempotency } from '../core/idempotency.js';
import { newId } from '../core/ids.js';
import { isFinalJob, type JobRecord } from '../core/records/jobs.js';
import { acceptOnce } from '../domain/accept.js';
import { fileUsability } from '../domain/files.js';
import type { JobStreamError, StreamEnding, StreamEntry } from '../domain/job-stream.js';
import { cancelJob, newResponseRecord, responseRequestOf } from '../domain/jobs.js';
import { checkRequestModel } from '../domain/models.js';
import { conversationOf, deleteResponse, ownedResponse } from '../domain/responses.js';
import { inputItemObject, responseIdOf, responseObject } from '../openai/response-object.js';
import { checkCallOutputs, validateResponseRequest } from '../openai/responses.js';
import { principal } from './auth.js';
import type { ApiDeps } from './deps.js';
import { waitForJob } from './jobs.js';
import { jsonBody } from './json-body.js';
import { listQuery, waitSeconds } from './params.js';
import { requestLogger } from './request-log.js';
import { relayJobStream } from './stream-relay.js';

export function responsesRouter(deps: ApiDeps): Router {
  const { services } = deps;
  const r = Router();
  r.use(jsonBody('32mb'));

  r.post('/', async (req, res) => {
    const { tenant } = principal(res);
    const rec = await acceptResponse(deps, req, tenant);
    res.setHeader('X-Ferry-Job-Id', rec.id);
    const body = responseRequestOf(rec);
    if (rec.stream) return relayResponse(deps, req, res, rec, -1);
    if (body.background) return res.json(responseObject(rec));
    const done = await waitForJob(deps, rec, services.config.syncWaitSeconds, res);
    if (res.writableEnded || res.destroyed) return;
    answer(res, done);
  });

  r.get('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const rec = await ownedResponse(services, req.params.id, tenant, admin);
    if (req.query.stream === 'true') return relayResponse(deps, req, res, streamed(rec), startingAfter(req));
    res.json(responseObject(await waitForJob(deps, rec, waitSeconds(req), res)));
  });

  r.post('/:id/cancel', async (req, res) => {
    const { tenant, admin } = principal(res);
    const rec = await ownedResponse(services, req.params.id, tenant, admin);
    if (!responseRequestOf(rec).background) {
      throw new BadRequestError(`Only background responses can be cancelled; '${req.params.id}' was answered directly.`, {
        param: 'response_id',
        code: 'response_not_background',
      });
    }
    if (!(await cancelJob(services, rec)) && rec.status !== 'cancelled') {
      const now = await ownedResponse(services, req.params.id, tenant, admin);
      if (now.status !== 'cancelled') {
        throw new ConflictError(`Response '${req.params.id}' has already ended (${responseObject(now).status}).`, {
          code: 'response_finished',
        });
      }
    }
    res.json(responseObject((await services.jobs.get(rec.id)) ?? rec));
  });

  r.delete('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const rec = await ownedResponse(services, req.params.id, tenant, admin);
    await deleteResponse(services, rec);
    res.json({ id: responseIdOf(rec.id), object: 'response', deleted: true });
  });

  r.get('/:id/input_items', async (req, res) => {
    const { tenant, admin } = principal(res);
    const rec = await ownedResponse(services, req.params.id, tenant, admin);
    res.json(inputItemsPage(rec, req));
  });

  return r;
}

/** Checks a request, the model, its files and the conversation it continues; records and queues it once. */
async function acceptResponse(deps: ApiDeps, req: Request, tenant: string): Promise<JobRecord> {
  const { services } = deps;
  const id = newId('job');
  const response = validateResponseRequest(req.body, id.slice(-12));
  await checkRequestModel(services, response.model, { field: 'max_output_tokens', value: response.body.max_output_tokens });
  const context = await conversationOf(services, response.body.previous_response_id, tenant);
  if (context.length) checkCallOutputs(response.items, context);
  const rec = newResponseRecord({ id, tenant, response, context });
  if (rec.inline_bytes > INLINE_LIMIT_BYTES) {
    throw new PayloadTooLargeError(
      `The conversation's inline data totals ${rec.inline_bytes} bytes, over Gemini's ${INLINE_LIMIT_BYTES}-byte request limit: upload the files with POST /v1/files and reference them by file_id.`,
      { param: 'previous_response_id' },
    );
  }
  // The earlier turns' files go to Gemini again: each must still be there.
  for (const fileId of rec.file_ids) {
    const use = fileUsability(fileId, await services.files.get(fileId), tenant, 'input');
    if (!use.usable) throw use.error;
  }
  const { record, created } = await acceptOnce(services, {
    budgeted: true,
    store: services.jobs,
    record: rec,
    idempotencyKey: Idempotency.keyOf(req.headers['idempotency-key']),
    fingerprintOf: [req.body],
    enqueue: (job) => enqueueGenerate(services, job),
  });
  if (created) {
    requestLogger(req).info(
      { response_id: responseIdOf(record.id), tenant, model: record.model, files: record.file_ids.length },
      'response accepted',
    );
  }
  return record;
}

/** A response that has ended answers as OpenAI's does: failed by the request's fault is the error with its status. */
function answer(res: Response, rec: JobRecord) {
  const e = rec.status === 'failed' ? rec.error : null;
  if (e && e.status < 500) return res.status(e.status).json({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });
  res.json(responseObject(rec));
}

function streamed(rec: JobRecord): JobRecord {
  if (rec.stream) return rec;
  throw new BadRequestError(`Response '${responseIdOf(rec.id)}' was not created with "stream": true, so it has no events to resume.`, {
    param: 'stream',
  });
}

function startingAfter(req: Request): number {
  const raw = req.query.starting_after;
  if (raw === undefined) return -1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < -1)
    throw new BadRequestError('"starting_after" must be a sequence number (0 or more).', { param: 'starting_after' });
  return n;
}

/**
 * Relays a response's events from the one after `after`. `response.created` (0) is made here from
 * the record; the worker's events follow from 1; an ending without a final event (the job failed
 * or was cancelled) closes with `response.failed` or an `error` event numbered after the last.
 */
function relayResponse(deps: ApiDeps, req: Request, res: Response, rec: JobRecord, after: number) {
  let last = 0;
  const send = (event: { type: string; sequence_number: number }) => {
    last = Math.max(last, event.sequence_number);
    if (event.sequence_number > after) res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  };
  const endWith = (now: JobRecord | null) => {
    if (now?.status === 'failed') send({ type: 'response.failed', response: responseObject(now), sequence_number: last + 1 } as never);
    else if (!now || !isFinalJob(now) || now.status === 'cancelled')
      send(errorEvent(rec, last + 1, now ? 'response_cancelled' : 'response_gone'));
  };
  return relayJobStream(deps, req, res, rec, {
    opening: () => {
      const created = responseObject(rec, responseRequestOf(rec).background ? 'queued' : 'in_progress');
      send({ type: 'response.created', response: { ...created, output: [], usage: null }, sequence_number: 0 } as never);
    },
    entries: (entries) =>
      relayEntries(entries, send, (ending) =>
        endWith(ending.kind === 'error' ? failedWith(rec, ending.error) : { ...rec, status: 'cancelled' }),
      ),
    ended: (now) => endWith(now),
    stopping: () => send(errorEvent(rec, last + 1, 'server_stopping')),
  });
}

type Send = (event: { type: string; sequence_number: number }) => void;

function relayEntries(entries: StreamEntry[], send: Send, ending: (e: Exclude<StreamEnding, { kind: 'done' }>) => void): boolean {
  for (const entry of entries) {
    if (entry.kind === 'chunk') send(JSON.parse(entry.chunk));
    else if (entry.kind === 'usage') continue;
    else {
      if (entry.kind !== 'done') ending(entry);
      return true;
    }
  }
  return false;
}

/** The record as its stream's error entry says it ended (the record itself may lag). */
const failedWith = (rec: JobRecord, error: JobStreamError): JobRecord => ({ ...rec, status: 'failed', error: { ...error, status: 500 } });

function errorEvent(rec: JobRecord, sequence: number, code: string) {
  const id = responseIdOf(rec.id);
  const message =
    code === 'server_stopping'
      ? `This Ferry API is stopping; response '${id}' goes on: resume with GET /v1/responses/${id}?stream=true&starting_after=${sequence - 1}.`
      : code === 'response_cancelled'
        ? `Response '${id}' was cancelled.`
        : `Response '${id}' is gone.`;
  return { type: 'error', code, message, param: null, sequence_number: sequence };
}

/** input_items, paged as OpenAI lists: newest first unless `order=asc`, `after` an item id. */
function inputItemsPage(rec: JobRecord, req: Request) {
  const q = listQuery(req, 100, 20);
  const items = [...(rec.input_items ?? [])];
  if (q.order === 'desc') items.reverse();
  const start = q.after ? items.findIndex((i) => i.id === q.after) + 1 : 0;
  const data = items.slice(start, start + q.limit).map(inputItemObject);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + q.limit < items.length,
  };
}
