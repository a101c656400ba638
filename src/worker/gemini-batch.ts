/**
 * A batch run on Gemini Batch Mode (`execution: "gemini_batch"`): the `gemini` job of its flow.
 *
 * After `expand` has checked the input and written one record per line (as for a direct batch),
 * this job, per model of the lines:
 *  1. submits: the files the lines reference made Gemini copies that outlive the batch's window,
 *     the lines written as Gemini's JSONL (staged, then the resumable upload), and one Gemini
 *     batch created under a display name derived from the Ferry batch. Create is not idempotent,
 *     so a run that does not know whether it made one looks it up by that name first;
 *  2. waits: it asks Gemini for the batch's state with backoff, parked in the delayed set between
 *     asks (holding nothing), and shows Gemini's progress as the batch's `request_counts`;
 *  3. collects: the responses file, streamed line by line into the lines' records through the
 *     same Gemini → OpenAI mapping as live calls, each line counted once. A Gemini batch that
 *     failed or expired closes its lines with an error.
 * Then it opens the gate, and `finalize` writes the output and error files exactly as for a direct
 * batch. Every step repeats safely from what the records say, so a worker killed anywhere resumes.
 */
import { DelayedError, type Job } from 'bullmq';
import { UpstreamError } from '../core/errors.js';
import { derivedId } from '../core/ids.js';
import type { BatchJobData } from '../core/queues.js';
import { lineJobId, type BatchRecord, type GeminiBatchRef } from '../core/records/batches.js';
import type { FileRecord } from '../core/records/files.js';
import { isFinalJob, type JobRecord } from '../core/records/jobs.js';
import type { Services } from '../core/services.js';
import { nowSeconds } from '../core/time.js';
import { countLine, releaseGate } from '../domain/batches.js';
import { fileUsability } from '../domain/files.js';
import { inputParamOf, jobErrorOf } from '../domain/jobs.js';
import { FINAL_GEMINI_BATCH_STATES, type GeminiBatch, type GeminiBatchLine } from '../providers/gemini/batches.js';
import type { GeminiProvider } from '../providers/gemini/index.js';
import { toRestRequest, type ResolvedFile } from '../providers/gemini/mapping.js';
import { JsonlSink } from './batch-output.js';
import { fetchImages, fileUrlParts } from './images.js';
import { geminiRequestFor, resultFor } from './answers.js';
import { embeddingInputLines, forgetGathered, gatherEmbedding, partKeys } from './gemini-batch-embeddings.js';
import { crashPoint } from '../core/crash-points.js';
import { recordUsage } from '../domain/usage.js';

export interface GeminiBatchDeps {
  services: Services;
  gemini: GeminiProvider;
  /** The Gemini copy of a processed file, alive at least until `until` (unix seconds). */
  geminiCopy: (file: FileRecord, until: number) => Promise<ResolvedFile>;
}

const LINE_CHUNK = 200;
/** A Gemini batch may run this long before Gemini expires it; a copy of a file must outlive the Ferry window. */
const COPY_MARGIN_SECONDS = 3600;

/** The display name of a Ferry batch's Gemini batch for one model: how a lost create is found again. */
export const displayNameOf = (batchId: string, model: string) => `ferry-${batchId}-${model}`;

/** Thrown to ask Gemini again after `ms`, the job parked meanwhile. */
class AskAgain extends Error {
  constructor(
    readonly ms: number,
    /** Gemini named the delay (Retry-After): kept as given, not shortened by the poll schedule. */
    readonly exact = false,
    /** Gemini failed (a 5xx, the network): counted, and a run of them gives up. */
    readonly failure: UpstreamError | null = null,
  ) {
    super(`asking Gemini again in ${ms} ms`);
  }
}

/**
 * A batch may wait a day on Gemini, asked after a thousand times: a failure now and then must not
 * add up to the job's attempts. So a transient failure parks the job like a poll, and only as many
 * failures in a row as the job has attempts give up (the lines then fail: giveUp).
 */
export async function runGeminiBatch(deps: GeminiBatchDeps, job: Job<BatchJobData>, token?: string): Promise<unknown> {
  try {
    return await advance(deps, job.data.batchId);
  } catch (err) {
    const again = askAgainOn(err);
    if (!again) throw err;
    const failures = again.failure ? (job.data.failures ?? 0) + 1 : 0;
    // Given up inside the job, not from its failed event: a process dying meanwhile runs it again.
    if (again.failure && failures >= (job.opts.attempts ?? 1)) return giveUp(deps.services, job.data.batchId, again.failure);
    const polls = (job.data.polls ?? 0) + 1;
    await job.updateData({ ...job.data, polls, failures });
    await job.moveToDelayed(Date.now() + delayOf(again, polls, failures), token);
    throw new DelayedError();
  }
}

/** The errors that park the job: its own asks, Gemini's quota (never a failure) and transient failures. */
function askAgainOn(err: unknown): AskAgain | null {
  if (err instanceof AskAgain) return err;
  if (!(err instanceof UpstreamError)) return null;
  if (err.upstreamStatus === 429) return new AskAgain(err.retryAfterMs ?? 60_000, err.retryAfterMs !== null);
  return err.retryable ? new AskAgain(err.retryAfterMs ?? 0, err.retryAfterMs !== null, err) : null;
}

function delayOf(again: AskAgain, polls: number, failures: number): number {
  if (again.exact) return again.ms;
  return again.failure ? failureDelayMs(failures) : Math.min(again.ms, pollDelayMs(polls));
}

/** 1 s, growing by half each time, at most a minute: quick for small batches, cheap for long ones. */
const pollDelayMs = (polls: number) => Math.min(1000 * 1.5 ** Math.min(polls, 20), 60_000);
/** 2 s, doubling, at most a minute: ten failures in a row span about five minutes. */
const failureDelayMs = (failures: number) => Math.min(2000 * 2 ** (failures - 1), 60_000);

async function advance(deps: GeminiBatchDeps, batchId: string): Promise<unknown> {
  const { batches } = deps.services;
  const batch = await batches.get(batchId);
  if (!batch || batch.status !== 'in_progress') return stopLate(deps, batch);
  const groups = batch.gemini_batches ?? (await planGroups(deps.services, batch));
  for (const g of groups) {
    if (g.collected || g.name) continue;
    await submit(deps, batch, groups, g);
    const now = await batches.get(batchId);
    if (now?.status !== 'in_progress') return stopLate(deps, now);
  }
  let open = 0;
  for (const g of groups) if (!g.collected && !(await followUp(deps, batch, groups, g))) open++;
  if (open > 0) throw new AskAgain(60_000);
  await releaseGate(deps.services, batchId);
  return { gemini_batches: groups.map((g) => g.name) };
}

/**
 * The batch was cancelled or ran out of time while this job was sending: the ending's job stopped
 * the Gemini batches it saw, and what this job made or uploaded after it looked is stopped here.
 */
async function stopLate(deps: GeminiBatchDeps, batch: BatchRecord | null): Promise<unknown> {
  const late = (batch?.gemini_batches ?? []).filter((g) => !g.collected && (g.name || g.input_file));
  if (batch && late.length && batch.status !== 'validating') {
    const mine = { ...batch, gemini_batches: late };
    await cancelGeminiBatches(deps, mine);
    await removeGeminiBatches(deps, mine);
    await saveGroups(
      deps.services,
      batch.id,
      (batch.gemini_batches ?? []).map((g) => (late.includes(g) ? { ...g, collected: true } : g)),
    );
  }
  return { skipped: batch?.status ?? 'gone' };
}

const saveGroups = (services: Services, batchId: string, groups: GeminiBatchRef[]) =>
  services.batches.update(batchId, { gemini_batches: groups });

/** The lines' records in input order, a chunk at a time. */
async function* lineRecords(services: Services, batch: BatchRecord): AsyncGenerator<{ index: number; rec: JobRecord | null }> {
  const total = batch.total ?? 0;
  for (let start = 0; start < total; start += LINE_CHUNK) {
    const ids = Array.from({ length: Math.min(LINE_CHUNK, total - start) }, (_, k) => lineJobId(batch.id, start + k));
    const recs = await Promise.all(ids.map((id) => services.jobs.get(id)));
    for (const [k, rec] of recs.entries()) yield { index: start + k, rec };
  }
}

/** One group per model of the lines, recorded before anything is sent. */
async function planGroups(services: Services, batch: BatchRecord): Promise<GeminiBatchRef[]> {
  const lines = new Map<string, number>();
  for await (const { rec } of lineRecords(services, batch)) if (rec) lines.set(rec.model, (lines.get(rec.model) ?? 0) + 1);
  const groups = [...lines].map(([model, n]) => newGroup(model, n));
  await saveGroups(services, batch.id, groups);
  return groups;
}

const newGroup = (model: string, lines: number): GeminiBatchRef => ({
  model,
  lines,
  input_file: null,
  name: null,
  state: 'PREPARING',
  succeeded: 0,
  failed: 0,
  responses_file: null,
  collected: false,
});

// ---------------------------------------------------------------------------
// 1. Submit

async function submit(deps: GeminiBatchDeps, batch: BatchRecord, groups: GeminiBatchRef[], g: GeminiBatchRef): Promise<void> {
  const { services, gemini } = deps;
  if (!g.input_file) {
    g.input_file = await uploadInput(deps, batch, g);
    if (!g.input_file) return void (await closeEmptyGroup(services, batch, groups, g));
    await saveGroups(services, batch.id, groups);
    // Cancelled or out of time while the input went up: no Gemini batch is made for it.
    if ((await services.batches.get(batch.id))?.status !== 'in_progress') return;
  }
  const displayName = displayNameOf(batch.id, g.model);
  const made = (await gemini.batches.findByDisplayName(displayName)) ?? (await createOrWait(deps, batch, groups, g, displayName));
  if (!made) return;
  Object.assign(g, { name: made.name, state: made.state });
  await saveGroups(services, batch.id, groups);
  await markRunning(services, batch, g.model);
}

/** Creates the Gemini batch. Gemini's refusal closes the group's lines; its quota only delays. */
async function createOrWait(
  deps: GeminiBatchDeps,
  batch: BatchRecord,
  groups: GeminiBatchRef[],
  g: GeminiBatchRef,
  displayName: string,
): Promise<GeminiBatch | null> {
  try {
    const kind = batch.endpoint === '/v1/embeddings' ? 'embed' : 'generate';
    return await deps.gemini.batches.create(g.model, g.input_file!, displayName, kind);
  } catch (err) {
    // Gemini's quota or a transient failure: asked again later (runGeminiBatch).
    if (!(err instanceof UpstreamError) || err.upstreamStatus === 429 || err.retryable) throw err;
    await closeGroup(deps.services, batch, g, { status: 'failed', error: jobErrorOf(err) });
    Object.assign(g, { state: 'FAILED', collected: true });
    await saveGroups(deps.services, batch.id, groups);
    return null;
  }
}

/** No line of the group could be sent (each already failed on its own): nothing to ask Gemini. */
async function closeEmptyGroup(services: Services, batch: BatchRecord, groups: GeminiBatchRef[], g: GeminiBatchRef) {
  Object.assign(g, { state: 'EMPTY', collected: true });
  await saveGroups(services, batch.id, groups);
  await closeGroup(services, batch, g, { status: 'failed', error: noAnswer() });
}

/** The group's lines as Gemini's input JSONL, staged and then uploaded; null when no line could be written. */
async function uploadInput(deps: GeminiBatchDeps, batch: BatchRecord, g: GeminiBatchRef): Promise<string | null> {
  const { services, gemini } = deps;
  const sink = new JsonlSink(services.staging, derivedId('file', batch.id, `gemini-input-${g.model}`));
  try {
    for await (const line of inputLines(deps, batch, g.model)) await sink.write(line);
  } catch (err) {
    sink.abort(err as Error);
    await sink.done.catch(() => {});
    await services.staging.delete(sink.id);
    throw err;
  }
  const staged = await sink.end();
  try {
    if (sink.lines === 0) return null;
    const file = await gemini.uploader.upload({
      size: staged.bytes,
      mimeType: 'application/jsonl',
      displayName: `${displayNameOf(batch.id, g.model)}-input`,
      source: (start, end) => services.staging.read(sink.id, { start, end }),
      session: null,
      onProgress: async () => true,
    });
    // A file Gemini would not make ACTIVE is not left behind for the next try to duplicate.
    await gemini.files.waitUntilProcessed(file.name, services.config.activeWaitSeconds * 1000).catch(async (err: Error) => {
      await gemini.files.delete(file.name).catch(() => {});
      throw err;
    });
    return file.name;
  } finally {
    await services.staging.delete(sink.id);
  }
}

/**
 * The input lines of one model: `{"key": custom_id, "request": GenerateContentRequest}`, mapped
 * as a live call is. A line whose files or images cannot be had fails on its own, and is left out.
 */
async function* inputLines(deps: GeminiBatchDeps, batch: BatchRecord, model: string): AsyncGenerator<string> {
  const copies = new Map<string, ResolvedFile>();
  const until = batch.expires_at + COPY_MARGIN_SECONDS;
  for await (const { index, rec } of lineRecords(deps.services, batch)) {
    if (!rec || rec.model !== model || isFinalJob(rec)) continue;
    if (rec.type === 'embedding') {
      for (const line of embeddingInputLines(rec)) yield line;
      continue;
    }
    try {
      const files = await copiesFor(deps, rec, copies, until);
      const allowPrivate = deps.services.config.allowPrivateNetworks;
      const images = await fetchImages(allowPrivate, rec);
      const urls = await fileUrlParts(allowPrivate, rec, images);
      const request = toRestRequest(geminiRequestFor(rec, { files, images, urls }, 'standard'));
      yield JSON.stringify({ key: rec.custom_id, request });
    } catch (err) {
      if (err instanceof AskAgain || (err instanceof UpstreamError && err.retryable)) throw err;
      await endLine(deps.services, batch.id, index, rec, { status: 'failed', error: jobErrorOf(err) });
    }
  }
}

/** The Gemini copies of a line's files (each made once per batch), or the reason one cannot be used. */
async function copiesFor(deps: GeminiBatchDeps, rec: JobRecord, copies: Map<string, ResolvedFile>, until: number) {
  for (const id of rec.file_ids) {
    if (copies.has(id)) continue;
    const file = await deps.services.files.get(id);
    const use = fileUsability(id, file, rec.tenant, inputParamOf(rec));
    if (!use.usable) throw use.error;
    // Still on its way to Gemini or Azure: the batch is sent once it is there.
    if (!use.ready) throw new AskAgain(2000);
    copies.set(id, await deps.geminiCopy(file!, until));
  }
  return copies;
}

/** Lines go from queued to running once their Gemini batch exists: they are being answered there. */
async function markRunning(services: Services, batch: BatchRecord, model: string) {
  await inChunks(lineRecords(services, batch), ({ rec }) =>
    rec?.model === model && rec.status === 'queued' ? startLine(services, rec) : null,
  );
}

/**
 * `work` for each item, up to LINE_CHUNK of them at once. When the items fail midway (a download
 * cut off, Redis gone), the work under way is still awaited: none of it is left to reject unheard.
 */
async function inChunks<T>(items: AsyncIterable<T>, work: (item: T) => Promise<unknown> | null): Promise<void> {
  let pending: Promise<unknown>[] = [];
  try {
    for await (const item of items) {
      const p = work(item);
      if (p) pending.push(p);
      if (pending.length >= LINE_CHUNK) {
        await Promise.all(pending);
        pending = [];
      }
    }
    await Promise.all(pending);
  } finally {
    await Promise.allSettled(pending);
  }
}

const startLine = (services: Services, rec: JobRecord) =>
  services.jobs.transition(rec.id, { status: 'running', attempts: 1 }, { from: ['queued'], initial: { started_at: nowSeconds() } });

// ---------------------------------------------------------------------------
// 2. Wait, 3. collect

/** Reads the Gemini batch; once final, records its lines. Answers whether the group is done. */
async function followUp(deps: GeminiBatchDeps, batch: BatchRecord, groups: GeminiBatchRef[], g: GeminiBatchRef): Promise<boolean> {
  const { services, gemini } = deps;
  const now = await gemini.batches.get(g.name!);
  const state = now?.state ?? 'FAILED';
  Object.assign(g, { state, succeeded: now?.succeeded ?? g.succeeded, failed: now?.failed ?? g.failed });
  if (!FINAL_GEMINI_BATCH_STATES.includes(state)) {
    await saveGroups(services, batch.id, groups);
    return false;
  }
  // An expired or cancelled batch may hold the answers it gave before it ended: they count.
  const unanswered = state === 'SUCCEEDED' ? { status: 'failed' as const, error: noAnswer() } : endOf(state, now);
  if (now?.responsesFile) {
    // Recorded before reading it: an ending that comes meanwhile deletes it with the rest.
    g.responses_file = now.responsesFile;
    await saveGroups(services, batch.id, groups);
    await collect(deps, batch, g, now.responsesFile, unanswered);
  } else await closeGroup(services, batch, g, unanswered);
  g.collected = true;
  await saveGroups(services, batch.id, groups);
  return true;
}

/** Every answer of the responses file into its line's record; the lines it does not answer end as `unanswered`. */
async function collect(deps: GeminiBatchDeps, batch: BatchRecord, g: GeminiBatchRef, file: string, unanswered: LineEnd): Promise<void> {
  const { services } = deps;
  const index = await lineIndexes(services, batch, g.model);
  await inChunks(deps.gemini.batches.responses(file), (line) => {
    const i = index.get(String(line.key));
    if (i === undefined) return null;
    index.delete(String(line.key));
    return recordAnswer(services, batch, i, line);
  });
  for (const i of new Set(index.values())) {
    const rec = await services.jobs.get(lineJobId(batch.id, i));
    await endLine(services, batch.id, i, rec, unanswered);
  }
}

/** Gemini's key → line index, for the lines of one model (an embeddings line has a key per text). */
async function lineIndexes(services: Services, batch: BatchRecord, model: string): Promise<Map<string, number>> {
  const index = new Map<string, number>();
  for await (const { index: i, rec } of lineRecords(services, batch)) {
    if (rec?.model !== model) continue;
    for (const key of rec.type === 'embedding' ? partKeys(rec) : [String(rec.custom_id)]) index.set(key, i);
  }
  return index;
}

async function recordAnswer(services: Services, batch: BatchRecord, i: number, line: GeminiBatchLine): Promise<void> {
  const rec = await services.jobs.get(lineJobId(batch.id, i));
  if (!rec) return;
  if (line.response && rec.type === 'embedding') {
    const vectors = await gatherEmbedding(services, batch.id, i, rec, String(line.key), line.response.embedding?.values ?? []);
    if (!vectors) return;
    await endLine(services, batch.id, i, rec, { status: 'succeeded', result: { ...vectors }, error: null });
    return forgetGathered(services, batch.id, i);
  }
  if (line.response) {
    // Named by the line: answers read again (after a crash) are counted once.
    const call = {
      tenant: rec.tenant,
      model: rec.model,
      tier: 'batch' as const,
      batchId: batch.id,
      callId: `gemini-batch:${batch.id}:${i}`,
    };
    await recordUsage(services, call, line.response.usageMetadata);
    crashPoint('gemini-batch.usage-recorded');
    // The tier it ran at, as a live answer says its own: Batch Mode's, as the ledger names it.
    const result = { ...(await resultFor(rec, line.response)), service_tier: 'batch' };
    return endLine(services, batch.id, i, rec, { status: 'succeeded', result, error: null });
  }
  const e = line.error ?? {};
  const err = new UpstreamError(`Gemini answered ${e.code ?? 500} ${e.status ?? ''}: ${e.message ?? 'no answer'}`.replace('  ', ' '), {
    upstreamStatus: e.code ?? 500,
    retryable: false,
  });
  await endLine(services, batch.id, i, rec, { status: 'failed', error: jobErrorOf(err) });
}

type LineEnd = Pick<JobRecord, 'status' | 'error'> & { result?: JobRecord['result'] };

/** A line's final status, written once; counted for the batch whichever run wrote it. */
async function endLine(services: Services, batchId: string, index: number, rec: JobRecord | null, end: LineEnd): Promise<void> {
  if (!rec) return;
  // Still queued (a worker died before marking its Gemini batch's lines running): an answer means it ran.
  if (rec.status === 'queued' && end.status === 'succeeded') await startLine(services, rec);
  if (!isFinalJob(rec)) await services.jobs.transition(rec.id, { ...end, finished_at: nowSeconds() });
  const now = isFinalJob(rec) ? rec : await services.jobs.get(rec.id);
  if (now && isFinalJob(now)) await countLine(services, batchId, index, now);
}

/** Ends every open line of the group the same way (a Gemini batch refused, failed or expired). */
async function closeGroup(services: Services, batch: BatchRecord, g: GeminiBatchRef, end: LineEnd): Promise<void> {
  for await (const { index, rec } of lineRecords(services, batch)) {
    if (rec?.model === g.model) await endLine(services, batch.id, index, rec, end);
  }
}

/**
 * Gemini kept failing: the lines not answered fail, and the gate opens, so the batch completes with
 * them in its error file (and Gemini is asked to stop its batch) rather than waiting for its window.
 */
export async function giveUp(services: Services, batchId: string, err: Error): Promise<{ gave_up: string } | undefined> {
  const batch = await services.batches.get(batchId);
  if (batch?.status !== 'in_progress') return;
  const message = `Gemini Batch Mode did not answer this request: ${err.message}`;
  const error = { message, type: 'server_error', param: null, code: 'gemini_batch_failed', status: 502 };
  for await (const { index, rec } of lineRecords(services, batch))
    await endLine(services, batch.id, index, rec, { status: 'failed', error });
  await releaseGate(services, batchId);
  return { gave_up: err.message };
}

/** How lines end when their Gemini batch ended without answers. */
function endOf(state: string, b: GeminiBatch | null): LineEnd {
  if (state === 'EXPIRED') {
    const message = 'Gemini did not run this request before its batch expired (48 h).';
    return { status: 'cancelled', error: { message, type: 'invalid_request_error', param: null, code: 'batch_expired', status: 409 } };
  }
  if (state === 'CANCELLED') {
    const message = 'This request was not executed because its Gemini batch was cancelled.';
    return { status: 'cancelled', error: { message, type: 'invalid_request_error', param: null, code: 'batch_cancelled', status: 409 } };
  }
  const why = b ? `Gemini batch ${b.name} ended ${state}` : 'Gemini no longer has the batch';
  return {
    status: 'failed',
    error: {
      message: `${why}; the request was not answered.`,
      type: 'server_error',
      param: null,
      code: 'gemini_batch_failed',
      status: 502,
    },
  };
}

const noAnswer = (): NonNullable<JobRecord['error']> => ({
  message: "Gemini's batch output holds no answer for this request.",
  type: 'server_error',
  param: null,
  code: 'gemini_batch_no_answer',
  status: 502,
});

// ---------------------------------------------------------------------------
// Cancel, and the end

/**
 * The batch ends (cancelled, out of time) between Gemini finishing and this job asking again:
 * the answers Gemini gave are paid for, so they are collected before the other lines are closed.
 */
export async function collectFinished(deps: GeminiBatchDeps, batch: BatchRecord): Promise<void> {
  const groups = batch.gemini_batches ?? [];
  for (const g of groups) {
    if (!g.name || g.collected) continue;
    await followUp(deps, batch, groups, g).catch((err: Error) =>
      deps.services.logger.warn({ err: err.message, batch_id: batch.id }, 'could not collect a finished Gemini batch'),
    );
  }
}

/** Asks Gemini to stop the batch's Gemini batches (the Ferry batch is cancelled or out of time). */
export async function cancelGeminiBatches(deps: GeminiBatchDeps, batch: BatchRecord): Promise<void> {
  for (const g of batch.gemini_batches ?? []) {
    if (!g.name || g.collected) continue;
    // The group shows it (its caller saves the groups): the batch object no longer says PENDING.
    const cancelled = await deps.gemini.batches.cancel(g.name).then(
      () => true,
      (err) => logCleanup(deps, batch, err),
    );
    if (cancelled) g.state = 'CANCELLED';
  }
}

/** Once the Ferry files are written: Gemini's input and responses files and its batches go. */
export async function removeGeminiBatches(deps: GeminiBatchDeps, batch: BatchRecord): Promise<void> {
  const { gemini } = deps;
  for (const g of batch.gemini_batches ?? []) {
    const steps = [
      g.input_file ? gemini.files.delete(g.input_file) : null,
      g.responses_file ? gemini.files.delete(g.responses_file) : null,
      g.name ? gemini.batches.delete(g.name) : null,
    ];
    await Promise.all(steps.map((p) => p?.catch((err: Error) => logCleanup(deps, batch, err))));
  }
}

function logCleanup(deps: GeminiBatchDeps, batch: BatchRecord, err: Error) {
  deps.services.logger.warn({ err: err.message, batch_id: batch.id }, 'could not clean up a Gemini batch; Gemini removes it after 48 h');
}
