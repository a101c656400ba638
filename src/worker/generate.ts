/**
 * The generate queue: runs a chat completion on Gemini and writes the result
 * back to the job record (and, for streaming requests, relays chunks through
 * a Redis Stream the API reads).
 *
 * A job whose files are still uploading, whose tenant is at its cap of
 * running jobs, or whose model is over its per-minute budget is moved back to
 * the delayed set, so it holds no worker slot while it waits. Results are
 * written with a status transition (running → succeeded), so a retried or
 * cancelled job never produces two results.
 *
 * Batch lines (prioritized below interactive jobs) are not held to the tenant
 * cap but to FERRY_BATCH_WORKER_SLOTS per worker process, which keeps slots
 * free for interactive requests while a batch runs.
 */
import { DelayedError, UnrecoverableError, type Job, type Worker } from 'bullmq';
import type { GenerateContentResponse } from '@google/genai';
import { FerryError, PayloadTooLargeError, UpstreamError } from '../core/errors.js';
import { ModelRateLimit, TenantSlots } from '../core/limits.js';
import { isRetryable, retryDelayMs } from '../core/retry.js';
import type { JobRecord } from '../core/records/jobs.js';
import { OPEN_JOB_STATUSES, isFinalJob, jobEvent } from '../core/records/jobs.js';
import { emitSafely } from '../core/webhook-events.js';
import type { FileRecord } from '../core/records/files.js';
import type { WebhookEndpoint } from '../core/records/webhooks.js';
import type { Services } from '../core/services.js';
import { generate, generateStream } from '../providers/gemini/generate.js';
import type { GeminiProvider } from '../providers/gemini/index.js';
import { INLINE_LIMIT_BYTES, toChatCompletion, toChunks, toGeminiRequest, usageOf, type FetchedImage, type ResolvedFile } from '../providers/gemini/mapping.js';
import { fetchImage } from './images.js';
import type { GenerateJobData } from '../core/queues.js';
import { WorkerSlots, onLineFinal, wakeLine } from './batch.js';

export interface GenerateDeps {
  services: Services;
  gemini: GeminiProvider;
  /** The Gemini copy of a processed file, made or renewed if needed. */
  geminiCopy: (file: FileRecord) => Promise<ResolvedFile>;
  worker: () => Worker | undefined;
}

const now = () => Math.floor(Date.now() / 1000);
const STREAM_TTL_SECONDS = 3600;

/** Thrown to end a job with a final error recorded on it. */
class JobFailure extends Error {
  constructor(readonly error: FerryError) {
    super(error.message);
  }
}

export function completionIds(rec: JobRecord) {
  return { id: `chatcmpl-${rec.id.slice('job-'.length)}`, model: rec.model, created: rec.created_at };
}

export function generateProcessor(deps: GenerateDeps) {
  const { services } = deps;
  const slots = new TenantSlots(services.redis, services.keys, services.config.tenantMaxRunning);
  const rpm = new ModelRateLimit(services.redis, services.keys, services.config.geminiRpm);
  const batchSlots = new WorkerSlots(services.config.batch.workerSlots, (id) => wakeLine(services, id));

  return async (job: Job, token?: string): Promise<unknown> => {
    const { jobs } = services;
    const { jobId, direct } = job.data as GenerateJobData;
    const later = async (ms: number, status?: JobRecord['status']) => {
      if (status) await jobs.transition(jobId, ['queued', 'waiting_for_files'], { status });
      await job.moveToDelayed(Date.now() + ms, token);
      throw new DelayedError();
    };
    const start = { status: 'running' as const, attempts: job.attemptsMade + 1 };
    const firstStart = { started_at: now() };

    let rec: JobRecord | null;
    let limiter: TenantSlots | WorkerSlots = slots;
    let files = new Map<string, ResolvedFile>();
    let images = new Map<string, FetchedImage>();
    if (direct) {
      // Nothing to wait for but a slot and the model's budget: then one step starts the job and reads it.
      // (A job cancelled meanwhile learns it only then, having spent one unit of that budget.)
      if (!(await slots.acquire(direct.tenant, jobId))) return await later(200 + Math.random() * 300, 'queued');
      let wait: number;
      try {
        wait = await rpm.delayFor(direct.model);
        rec = wait > 0 ? null : await jobs.transitionGet(jobId, OPEN_JOB_STATUSES, start, firstStart);
      } catch (err) {
        await slots.release(direct.tenant, jobId);
        throw err;
      }
      if (!rec) {
        await slots.release(direct.tenant, jobId);
        return wait > 0 ? await later(wait, 'queued') : await notOpen(services, jobId);
      }
    } else {
      rec = await jobs.get(jobId);
      if (!rec || !OPEN_JOB_STATUSES.includes(rec.status)) return await notOpen(services, jobId, rec);
      if (rec.batch_id) {
        // A line of a batch that is ending does not start; the batch's finalize closes it.
        const { status } = await services.batches.progress(rec.batch_id);
        if (status !== 'in_progress') return { skipped: `batch ${status ?? 'gone'}` };
        limiter = batchSlots;
      }
      try {
        const waiting = await fileStates(services, rec);
        if (waiting) return await later(Math.min(250 * 2 ** Math.min(job.attemptsStarted, 5), 5000), 'waiting_for_files');
        if (!(await limiter.acquire(rec.tenant, jobId))) return await later(limiter === batchSlots ? batchSlots.parkMs : 200 + Math.random() * 300, 'queued');
        const wait = await rpm.delayFor(rec.model);
        if (wait > 0) {
          await limiter.release(rec.tenant, jobId);
          return await later(wait, 'queued');
        }
        files = await resolveFiles(deps, rec);
        images = await fetchImages(services, rec);
      } catch (err) {
        if (err instanceof DelayedError) throw err;
        await limiter.release(rec.tenant, jobId);
        return await handleFailure(deps, job, rec, err, false);
      }
    }

    let streamed = false;
    try {
      // (A job picked up before may have streamed: only then is its stream looked at.)
      if (rec.stream && job.attemptsStarted > 1 && (await services.redis.xlen(services.keys.jobStream(jobId))) > 0) {
        // A worker died mid-stream: the client has part of an answer, so sending it again would duplicate it.
        throw new JobFailure(new FerryError(502, 'The stream was interrupted by a worker failure; send the request again.', 'server_error', 'stream_interrupted'));
      }
      if (!direct) {
        const started = await jobs.transitionGet(jobId, OPEN_JOB_STATUSES, start, firstStart);
        if (!started) return { skipped: 'cancelled' };
        rec = started;
      }
      // From here `rec` is the record as started.
      const request = toGeminiRequest(rec.request, files, images);
      const ids = completionIds(rec);
      let result: Record<string, unknown>;
      if (rec.stream) {
        let last: GenerateContentResponse | undefined;
        const stream = services.keys.jobStream(jobId);
        await generateStream(deps.gemini.ai, request, async (chunk) => {
          for (const c of toChunks(chunk, ids, !streamed)) await services.redis.xadd(stream, '*', 'chunk', JSON.stringify(c));
          streamed = true;
          last = chunk;
        });
        await services.redis.multi().xadd(stream, '*', 'usage', JSON.stringify(last ? usageOf(last) ?? null : null)).expire(stream, STREAM_TTL_SECONDS).exec();
        result = { streamed: true, usage: last ? usageOf(last) ?? null : null };
      } else {
        result = toChatCompletion(await generate(deps.gemini.ai, request), ids) as unknown as Record<string, unknown>;
      }
      // The tenant's endpoints are read in the same round trip as the result is stored (the
      // record connection pipelines commands issued together); a batch line has no event of its own.
      const done = { status: 'succeeded' as const, result, finished_at: now(), error: null };
      const [stored, endpoints] = await Promise.all([
        jobs.transition(jobId, ['running'], done),
        // Not read (Redis failed here): the event reads them itself, or logs why it could not.
        rec.batch_id ? undefined : services.endpoints.ofTenant(rec.tenant).catch(() => undefined),
      ]);
      // Job records change only by transitions, and this one applied: the record is the started one
      // with `done` (its `attempts` as this run set them, should a twin run after a stall have raised them).
      const final: JobRecord | null = stored ? { ...rec, ...done } : null;
      if (rec.stream) await endStream(services, jobId, stored ? { done: '1' } : { cancelled: '1' });
      // A batch line's slot is freed before its hook hands out the next line, which may take it.
      if (limiter === batchSlots) await limiter.release(rec.tenant, jobId);
      // Not stored (cancelled meanwhile): announce what the record says; event ids dedupe it.
      if (final) await announceFinal(services, final, endpoints);
      else await emitFinal(services, jobId);
      return { stored };
    } catch (err) {
      // Awaited here, so that the failure is observed before the slot is released below.
      return await handleFailure(deps, job, rec, err, streamed);
    } finally {
      await limiter.release(rec.tenant, jobId);
    }
  };
}

/** A job that is not open (final, or gone): make sure a final one's event went out; ids dedupe it. */
async function notOpen(services: Services, jobId: string, seen?: JobRecord | null) {
  const rec = seen === undefined ? await services.jobs.get(jobId) : seen;
  if (rec && isFinalJob(rec)) await announceFinal(services, rec);
  return { skipped: rec?.status ?? 'gone' };
}

/** True while some referenced file is still uploading; throws JobFailure for a file that failed or vanished. */
async function fileStates(services: Services, rec: JobRecord): Promise<boolean> {
  let waiting = false;
  for (const id of rec.file_ids) {
    const f = await services.files.get(id);
    if (!f) throw new JobFailure(new FerryError(404, `File '${id}' was deleted before the job could use it.`, 'invalid_request_error', 'file_not_found', 'messages'));
    if (f.status === 'error') {
      throw new JobFailure(new FerryError(400, `File '${id}' failed to upload: ${f.status_details ?? 'unknown error'}`, 'invalid_request_error', 'file_failed', 'messages'));
    }
    if (f.status === 'uploaded') waiting = true;
  }
  return waiting;
}

async function resolveFiles(deps: GenerateDeps, rec: JobRecord): Promise<Map<string, ResolvedFile>> {
  const out = new Map<string, ResolvedFile>();
  for (const id of rec.file_ids) {
    const f = await deps.services.files.get(id);
    if (!f) throw new JobFailure(new FerryError(404, `File '${id}' was deleted before the job could use it.`, 'invalid_request_error', 'file_not_found', 'messages'));
    out.set(id, await deps.geminiCopy(f));
  }
  return out;
}

/** Fetches the request's http(s) images; with its inline parts they must stay under Gemini's request limit. */
async function fetchImages(services: Services, rec: JobRecord): Promise<Map<string, FetchedImage>> {
  const out = new Map<string, FetchedImage>();
  let total = rec.inline_bytes;
  for (const url of rec.image_urls) {
    const img = await fetchImage(url, services.config.allowPrivateNetworks);
    total += Math.floor((img.data.length * 3) / 4);
    if (total > INLINE_LIMIT_BYTES) {
      throw new JobFailure(new PayloadTooLargeError(`The request's images and inline data exceed Gemini's ${INLINE_LIMIT_BYTES}-byte request limit; upload them with POST /v1/files.`, 'messages'));
    }
    out.set(url, img);
  }
  return out;
}

function asFerryError(err: unknown): FerryError {
  if (err instanceof JobFailure) return err.error;
  if (err instanceof UpstreamError) {
    const s = err.upstreamStatus;
    // Gemini's own verdict on the request (400, 403, 404) is the caller's to see; exhausted transient failures are a 502.
    if (s !== null && s >= 400 && s < 500 && s !== 408 && s !== 429) {
      return new FerryError(s, err.message, s === 403 ? 'permission_error' : 'invalid_request_error', err.code, null);
    }
    return err;
  }
  if (err instanceof FerryError) return err;
  return new FerryError(500, `The job failed: ${(err as Error)?.message ?? String(err)}`, 'server_error', 'internal_error');
}

async function handleFailure(deps: GenerateDeps, job: Job, rec: JobRecord, err: unknown, streamed: boolean): Promise<never> {
  const { services } = deps;
  const retry = !(err instanceof JobFailure) && isRetryable(err) && !streamed && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
  if (retry) {
    if (err instanceof UpstreamError && err.upstreamStatus === 429) {
      // Slow the whole queue down, not just this job: a burst must not become a storm of 429s.
      const { retryBaseMs: baseMs, retryMaxMs: maxMs } = services.config;
      await deps.worker()?.rateLimit(retryDelayMs(err, job.attemptsMade + 1, { baseMs, maxMs })).catch(() => {});
    }
    await services.jobs.transition(rec.id, ['running'], { status: 'queued' });
    throw err;
  }
  const e = asFerryError(err);
  const error = { ...e.toBody().error, status: e.status };
  await services.jobs.transition(rec.id, OPEN_JOB_STATUSES, { status: 'failed', error, finished_at: now() });
  if (rec.stream) await endStream(services, rec.id, { error: JSON.stringify(error) });
  await emitFinal(services, rec.id);
  throw new UnrecoverableError(e.message);
}

async function endStream(services: Services, jobId: string, fields: Record<string, string>) {
  const key = services.keys.jobStream(jobId);
  const [k, v] = Object.entries(fields)[0];
  await services.redis.multi().xadd(key, '*', k, v).expire(key, STREAM_TTL_SECONDS).exec();
}

/** A job that will not run again (retries spent, stalled too often): its record says so. */
export async function onGenerateJobFailedForGood(services: Services, job: Job, err: Error): Promise<void> {
  const { jobId } = job.data as GenerateJobData;
  const e = err instanceof FerryError ? err : new FerryError(502, `The job failed: ${err.message}`, 'server_error', 'job_failed');
  const error = { ...e.toBody().error, status: e.status };
  if (await services.jobs.transition(jobId, OPEN_JOB_STATUSES, { status: 'failed', error, finished_at: now() })) {
    if ((await services.jobs.get(jobId))?.stream) await endStream(services, jobId, { error: JSON.stringify(error) });
  }
  await emitFinal(services, jobId);
}

async function emitFinal(services: Services, jobId: string) {
  const rec = await services.jobs.get(jobId);
  if (rec && isFinalJob(rec)) await announceFinal(services, rec);
}

/** A job's event, or for a batch line, its count and the next line (a batch has events of its own). */
async function announceFinal(services: Services, rec: JobRecord, endpoints?: WebhookEndpoint[]) {
  if (rec.batch_id) await onLineFinal(services, rec);
  else await emitSafely(services, { ...jobEvent(rec), endpoints });
}
