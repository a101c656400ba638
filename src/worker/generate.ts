/**
 * The generate queue: runs a chat completion on Gemini and writes the result
 * back to the job record (and, for streaming requests, relays chunks through
 * a Redis Stream the API reads).
 *
 * A job whose files are still uploading, that finds no run slot, or whose
 * model's quota has no turn for it soon is moved back to the delayed set
 * (status `waiting_for_files`, `queued` or `waiting_for_quota`), so it holds
 * no worker slot while it waits. Results are written with a status transition
 * (running → succeeded), so a retried or cancelled job never produces two
 * results.
 *
 * Batch lines go after interactive jobs twice over: BullMQ hands them out
 * behind unprioritized jobs, and admission gives them only the quota's turns
 * that interactive calls leave (core/admission.ts).
 */
import { crashPoint } from '../core/crash-points.js';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { Admission, HORIZON_MS, type AdmissionRequest, type Decision, type Lane } from '../core/admission.js';
import { FerryError, PayloadTooLargeError, UpstreamError } from '../core/errors.js';
import { flexSheds, quotaDecisions, quotaRefusals, quotaWaitSeconds } from '../core/metrics.js';
import { sleep } from '../core/retry.js';
import { isLastAttempt, isTransient } from '../core/attempts.js';
import type { JobRecord, JobStatus } from '../core/records/jobs.js';
import { OPEN_JOB_STATUSES, isFinalJob } from '../core/records/jobs.js';
import type { FileRecord } from '../core/records/files.js';
import type { Services } from '../core/services.js';
import type { GeminiProvider } from '../providers/gemini/index.js';
import type { ResolvedFile } from '../providers/gemini/mapping.js';
import { fetchImages, fileUrlParts } from './images.js';
import { ANSWERS, type Answer, type Inputs } from './answers.js';
import type { GenerateJobData } from '../core/queues.js';
import { RunSlots } from './run-slots.js';
import { announceIfFinal, announceJobFinal, callTierOf, failureOf, inputParamOf } from '../domain/jobs.js';
import { overBudget, recordUsage } from '../domain/usage.js';
import { jobStream } from '../domain/job-stream.js';
import { fileUsability } from '../domain/files.js';
import { nowSeconds } from '../core/time.js';

export interface GenerateDeps {
  services: Services;
  gemini: GeminiProvider;
  /** The Gemini copy of a processed file, made or renewed if needed. */
  geminiCopy: (file: FileRecord) => Promise<ResolvedFile>;
  /** The shared quota of Gemini calls. */
  admission: Admission;
}

/** Statuses a job waits in; it leaves them when it starts. */
const WAITING_STATUSES: readonly JobStatus[] = ['queued', 'waiting_for_files', 'waiting_for_quota'];

/** Thrown to end a job with a final error recorded on it. */
class JobFailure extends Error {
  constructor(readonly error: FerryError) {
    super(error.message);
  }
}

/** Thrown to send a job back to the delayed set for a while (holding nothing), saying why in its status. */
class Park extends Error {
  constructor(
    readonly ms: number,
    readonly status: JobStatus,
    readonly from: readonly JobStatus[] = WAITING_STATUSES,
  ) {
    super(`waiting ${Math.round(ms)} ms (${status})`);
  }
}

/** Who a job runs for and what it asks: enough to take a run slot and admission before it starts. */
interface Plan {
  jobId: string;
  tenant: string;
  model: string;
  lane: Lane;
  tokens: number;
  /** The record as read (null for a direct job, whose record is first read as it starts). */
  rec: JobRecord | null;
  /** The files it references, as read when planning (all processed). */
  files: FileRecord[];
  /** How its batch runs its lines (a Flex batch's lines run at the Flex tier); null outside a batch. */
  batchExecution: string | null;
}

/**
 * The processor: plan → run slot → inputs → admission → call → record. The run slot (the tenant's
 * cap, or this process's batch line slots) is taken in one place and released in one place; a job that has
 * to wait for it, for its files or for the quota goes back to the delayed set with a status that
 * says so, and a quota 429 never spends one of its attempts.
 */
export function generateProcessor(deps: GenerateDeps) {
  const slots = new RunSlots(deps.services);
  return async (job: Job<GenerateJobData>, token?: string): Promise<unknown> => {
    try {
      return await runJob(deps, slots, job);
    } catch (err) {
      if (!(err instanceof Park)) throw err;
      await deps.services.jobs.transition(job.data.jobId, { status: err.status }, { from: err.from });
      await job.moveToDelayed(Date.now() + err.ms, token);
      throw new DelayedError();
    }
  };
}

async function runJob(deps: GenerateDeps, slots: RunSlots, job: Job<GenerateJobData>): Promise<unknown> {
  const plan = await planJob(deps, job);
  if ('skipped' in plan) return plan;
  const slot = await slots.take(plan);
  if ('parkMs' in slot) throw new Park(slot.parkMs, 'queued');
  const { release } = slot;
  try {
    let inputs: Inputs = { files: new Map(), images: new Map(), urls: new Map() };
    if (plan.rec) {
      try {
        inputs = await prepareInputs(deps, plan.rec, plan.files);
      } catch (err) {
        // Fetching the inputs is part of the try (an image URL that failed, say): the record counts it.
        await deps.services.jobs.update(plan.rec.id, { attempts: tryNumber(job) });
        return await handleFailure(deps, job, plan.rec, err, false);
      }
    }
    const turn = await takeTurn(deps.admission, plan);
    deps.services.activity.count('calls', plan.model);
    try {
      return await callAndRecord(deps, job, plan, inputs, turn, release);
    } finally {
      deps.admission.finished(turn.req, turn.decision);
    }
  } finally {
    await release();
  }
}

/** A direct job plans from its data; others from the record: open, its batch running, its files uploaded. */
async function planJob(deps: GenerateDeps, job: Job<GenerateJobData>): Promise<Plan | { skipped: string }> {
  const { services } = deps;
  const { jobId, direct } = job.data;
  if (direct)
    return {
      jobId,
      tenant: direct.tenant,
      model: direct.model,
      lane: 'interactive',
      tokens: direct.tokens ?? 0,
      rec: null,
      files: [],
      batchExecution: null,
    };
  const rec = await services.jobs.get(jobId);
  if (!rec || !OPEN_JOB_STATUSES.includes(rec.status)) return await notOpen(services, jobId, rec);
  let batchExecution: string | null = null;
  if (rec.batch_id) {
    // A line of a batch that is ending does not start; the batch's finalize closes it.
    const { status, execution } = await services.batches.progress(rec.batch_id);
    batchExecution = execution;
    if (status !== 'in_progress') return { skipped: `batch ${status ?? 'gone'}` };
    // A batch stops taking lines once its tenant's budget is spent: the rest end in its error file.
    const refusal = await overBudget(services, rec.tenant, 'budget_exceeded');
    if (refusal) return await handleFailure(deps, job, rec, new JobFailure(refusal), false);
  }
  let files: FileRecord[] | null;
  try {
    files = await readyFiles(services, rec);
  } catch (err) {
    return await handleFailure(deps, job, rec, err, false);
  }
  if (!files) throw new Park(Math.min(250 * 2 ** Math.min(job.attemptsStarted, 5), 5000), 'waiting_for_files');
  const lane: Lane = rec.batch_id ? 'batch' : 'interactive';
  return { jobId, tenant: rec.tenant, model: rec.model, lane, tokens: rec.input_tokens ?? 0, rec, files, batchExecution };
}

/** This try's number, counting the tries a quota 429 sent back (they spend no attempt of the job). */
const tryNumber = (job: Job<GenerateJobData>) => job.attemptsMade + 1 + (job.data.quotaRetries ?? 0);

async function prepareInputs(deps: GenerateDeps, rec: JobRecord, files: FileRecord[]): Promise<Inputs> {
  const copies = new Map<string, ResolvedFile>();
  for (const f of files) copies.set(f.id, await deps.geminiCopy(f));
  const allowPrivate = deps.services.config.allowPrivateNetworks;
  try {
    const images = await fetchImages(allowPrivate, rec);
    return { files: copies, images, urls: await fileUrlParts(allowPrivate, rec, images) };
  } catch (err) {
    throw err instanceof PayloadTooLargeError ? new JobFailure(err) : err;
  }
}

interface Turn {
  req: AdmissionRequest;
  decision: Decision;
}

/** The call's turn in its model's quota; a job whose turn is not near waits in the queue for it. */
async function takeTurn(admission: Admission, plan: Plan): Promise<Turn> {
  const req: AdmissionRequest = { model: plan.model, tenant: plan.tenant, lane: plan.lane, tokens: plan.tokens, jobId: plan.jobId };
  const decision = await admission.admit(req);
  quotaDecisions.inc({ model: plan.model, lane: plan.lane, outcome: decision.go ? 'admitted' : 'waiting' });
  if (!decision.go) throw waitingForQuota(plan, decision.retryMs);
  if (decision.waitMs > 0) {
    await sleep(decision.waitMs);
    // A 429 meanwhile: the turn was booked at a rate now refused, and would be refused too.
    if (!(await admission.stillStands(plan.model, decision))) throw waitingForQuota(plan, 200 + Math.random() * HORIZON_MS);
  }
  return { req, decision };
}

/** Starts the job, calls Gemini, and records the result (or the failure, or a wait for quota). */
async function callAndRecord(
  deps: GenerateDeps,
  job: Job<GenerateJobData>,
  plan: Plan,
  inputs: Inputs,
  turn: Turn,
  release: () => Promise<void>,
) {
  const { services } = deps;
  const { jobs } = services;
  const { jobId } = plan;
  // Attempts count every try: failed ones (BullMQ's count) and those Gemini sent back for quota.
  const rec = await jobs.transitionGet(jobId, { status: 'running', attempts: tryNumber(job) }, { initial: { started_at: nowSeconds() } });
  if (!rec) return await notOpen(services, jobId);
  let streamed = false;
  try {
    // (A job picked up before may have streamed: only then is its stream looked at.)
    if (rec.stream && job.attemptsStarted > 1 && (await jobStream(services).started(jobId))) {
      // A worker died mid-stream: the client has part of an answer, so sending it again would duplicate it.
      throw new JobFailure(
        new FerryError('The stream was interrupted by a worker failure; send the request again.', {
          status: 502,
          type: 'server_error',
          code: 'stream_interrupted',
        }),
      );
    }
    const tier = callTierOf(rec, { batchExecution: plan.batchExecution, fallback: job.data.tierFallback });
    let answer: Answer;
    try {
      answer = await ANSWERS[rec.type](deps, rec, inputs, tier, () => (streamed = true));
    } catch (err) {
      if (!streamed && tier === 'flex' && isShed(err)) throw await waitForFlexCapacity(deps, job, plan);
      if (isTooManyRequests(err) && !streamed) throw await waitForQuota(deps, job, plan, err, turn.decision);
      throw err;
    }
    // Recorded before anything else: a process killed after this line leaves a retry that calls
    // (and is billed) again, and is recorded again; one killed before it loses this call's count.
    await recordUsage(services, { tenant: rec.tenant, model: rec.model, tier, batchId: rec.batch_id ?? null }, answer.usage);
    crashPoint('generate.answered');
    await deps.admission.succeeded(turn.req, turn.decision, answer.promptTokens).catch(() => {});
    await recordSuccess(services, rec, answer.result, release);
    crashPoint('generate.announced');
    return { stored: true };
  } catch (err) {
    if (err instanceof Park) throw err;
    return await handleFailure(deps, job, rec, err, streamed);
  }
}

/** A wait for the model's quota, counted in its metric. */
function waitingForQuota(plan: Plan, ms: number, from?: readonly JobStatus[]): Park {
  quotaWaitSeconds.inc({ model: plan.model, lane: plan.lane }, ms / 1000);
  return new Park(ms, 'waiting_for_quota', from);
}

const isTooManyRequests = (err: unknown): err is UpstreamError => err instanceof UpstreamError && err.upstreamStatus === 429;

/**
 * Gemini answered 429: the job waits and tries again, without spending one of its attempts (it
 * counts the try, for the record's `attempts`). A 429 naming the exceeded quota also pauses the
 * model and lowers a learned rate, for every worker.
 */
async function waitForQuota(
  deps: GenerateDeps,
  job: Job<GenerateJobData>,
  plan: Plan,
  err: UpstreamError,
  decision: Decision,
): Promise<Park> {
  quotaRefusals.inc({ model: plan.model });
  deps.services.activity.count('quota_refusals', plan.model);
  const admittedAt = decision.go ? decision.bookedAt : undefined;
  if (err.quotaExceeded) await deps.admission.refused(plan.model, { retryAfterMs: err.retryAfterMs, limits: err.quotaLimits, admittedAt });
  await job.updateData({ ...job.data, quotaRetries: (job.data.quotaRetries ?? 0) + 1 });
  const ms = err.retryAfterMs ?? Math.min(500 * 2 ** Math.min(job.data.quotaRetries ?? 0, 6), 30_000);
  return waitingForQuota(plan, Math.max(ms, 250) * (1 + Math.random() / 2), ['running']);
}

/**
 * Gemini shed a Flex call for capacity: a 503, or a 429 that names no quota of the project (a
 * QuotaFailure would: that one is the quota's, and goes the quota's way).
 */
const isShed = (err: unknown): err is UpstreamError =>
  err instanceof UpstreamError && (err.upstreamStatus === 503 || (err.upstreamStatus === 429 && !err.namesQuota));

/**
 * A shed Flex call waits and tries again without spending an attempt, and without slowing the
 * model's admission for anyone else (it is not the project's quota), until FERRY_FLEX_DEADLINE_SECONDS
 * after the first shed; then it runs at the standard tier, or fails, as FERRY_FLEX_FALLBACK says.
 */
async function waitForFlexCapacity(deps: GenerateDeps, job: Job<GenerateJobData>, plan: Plan): Promise<Park> {
  const { deadlineSeconds, fallback } = deps.services.config.flex;
  const since = job.data.flexShedSince ?? Date.now();
  const left = since + deadlineSeconds * 1000 - Date.now();
  const sheds = job.data.quotaRetries ?? 0;
  flexSheds.inc({ model: plan.model });
  if (left > 0) {
    await job.updateData({ ...job.data, flexShedSince: since, quotaRetries: sheds + 1 });
    const ms = Math.min(500 * 2 ** Math.min(sheds, 6), 30_000, left) * (0.75 + Math.random() / 2);
    return waitingForQuota(plan, ms, ['running']);
  }
  if (fallback === 'standard') {
    await job.updateData({ ...job.data, tierFallback: 'standard', quotaRetries: sheds + 1 });
    return new Park(0, 'queued', ['running']);
  }
  throw new JobFailure(
    new FerryError(
      `Gemini had no Flex capacity for this request for ${deadlineSeconds} s (FERRY_FLEX_DEADLINE_SECONDS); send it again, or set FERRY_FLEX_FALLBACK=standard to run such requests at the standard tier when Flex stays full.`,
      { status: 503, type: 'server_error', code: 'flex_unavailable' },
    ),
  );
}

/** Stores the result with the running → succeeded transition, then the event (or the batch line's count). */
async function recordSuccess(services: Services, rec: JobRecord, result: Record<string, unknown>, release: () => Promise<void>) {
  const { jobs } = services;
  // The tenant's endpoints are read in the same round trip as the result is stored (the
  // record connection pipelines commands issued together); a batch line has no event of its own.
  const done = { status: 'succeeded' as const, result, finished_at: nowSeconds(), error: null };
  const [stored, endpoints] = await Promise.all([
    jobs.transition(rec.id, done),
    // Not read (Redis failed here): the event reads them itself, or logs why it could not.
    rec.batch_id ? undefined : services.endpoints.ofTenant(rec.tenant).catch(() => undefined),
  ]);
  // Job records change only by transitions, and this one applied: the record is the started one
  // with `done` (its `attempts` as this run set them, should a twin run after a stall have raised them).
  const final: JobRecord | null = stored ? { ...rec, ...done } : null;
  crashPoint('generate.recorded');
  if (rec.stream) await jobStream(services).end(rec.id, { kind: stored ? 'done' : 'cancelled' });
  // A batch line's slot is freed before its hook hands out the next line, which may take it.
  if (rec.batch_id) await release();
  // Not stored (cancelled meanwhile): announce what the record says; event ids dedupe it.
  if (final) await announceJobFinal(services, final, endpoints);
  else await announceIfFinal(services, rec.id);
}

/** A job that is not open (final, or gone): make sure a final one's event went out; ids dedupe it. */
async function notOpen(services: Services, jobId: string, seen?: JobRecord | null) {
  const rec = seen === undefined ? await services.jobs.get(jobId) : seen;
  if (rec && isFinalJob(rec)) await announceJobFinal(services, rec);
  return { skipped: rec?.status ?? 'gone' };
}

/** The referenced files, once all are processed (null while some is still uploading); JobFailure for one that failed or vanished. */
async function readyFiles(services: Services, rec: JobRecord): Promise<FileRecord[] | null> {
  const files: FileRecord[] = [];
  let waiting = false;
  for (const id of rec.file_ids) {
    const f = await services.files.get(id);
    const use = fileUsability(id, f, rec.tenant, inputParamOf(rec));
    if (!use.usable) throw new JobFailure(use.error);
    if (!use.ready) waiting = true;
    files.push(f!);
  }
  return waiting ? null : files;
}

function asFerryError(err: unknown): FerryError {
  return err instanceof JobFailure ? err.error : failureOf(err);
}

async function handleFailure(
  deps: GenerateDeps,
  job: Job<GenerateJobData>,
  rec: JobRecord,
  err: unknown,
  streamed: boolean,
): Promise<never> {
  const { services } = deps;
  const retry = !(err instanceof JobFailure) && isTransient(err) && !streamed && !isLastAttempt(job);
  if (retry) {
    services.activity.count('retries', rec.model);
    await services.jobs.transition(rec.id, { status: 'queued' }, { from: ['running'] });
    throw err;
  }
  const e = asFerryError(err);
  const error = { ...e.toBody().error, status: e.status };
  await services.jobs.transition(rec.id, { status: 'failed', error, finished_at: nowSeconds() });
  if (rec.stream) await jobStream(services).end(rec.id, { kind: 'error', error });
  await announceIfFinal(services, rec.id);
  throw new UnrecoverableError(e.message);
}

/** A job that will not run again (retries spent, stalled too often): its record says so. */
export async function onGenerateJobFailedForGood(services: Services, job: Job<GenerateJobData>, err: Error): Promise<void> {
  const { jobId } = job.data;
  const e =
    err instanceof FerryError
      ? err
      : new FerryError(`The job failed: ${err.message}`, { status: 502, type: 'server_error', code: 'job_failed' });
  const error = { ...e.toBody().error, status: e.status };
  if (await services.jobs.transition(jobId, { status: 'failed', error, finished_at: nowSeconds() })) {
    if ((await services.jobs.get(jobId))?.stream) await jobStream(services).end(jobId, { kind: 'error', error });
  }
  await announceIfFinal(services, jobId);
}
