/**
 * The batch queue: OpenAI's Batch API on Ferry's own workers.
 *
 * A batch is a BullMQ flow. Its parent, `finalize`, waits for its children:
 * `expand` (validates the input, then writes one job record per line) and
 * `gate`, a delayed job released once the last line is counted done. The
 * lines themselves are generate jobs on the shard each hashes to (not in the
 * flow: a flow keeps to one cluster slot). Lines are handed out as a sliding
 * window (FERRY_BATCH_CONCURRENCY per batch): each line that ends hands out
 * the next, so a batch of 50,000 lines keeps only a few jobs in the queue,
 * shares the generate workers with interactive requests at a lower priority,
 * and never floods the queue with jobs waiting for a slot.
 *
 * Every step is safe to repeat: job and file ids derive from the batch id and
 * line numbers, records are created only where absent, lines are counted once
 * (a bitmap), and statuses change with transitions, so a crash, a retry, a
 * cancel or the window running out all resolve to one outcome.
 */
import type { Job } from 'bullmq';
import { BATCH_JOBS, jobIds, type BatchJobData, type BatchJobName } from '../core/queues.js';
import { isFinalBatch, lineJobId, type BatchError, type BatchRecord, type RequestCounts } from '../core/records/batches.js';
import type { Services } from '../core/services.js';
import { enqueueGeminiBatch } from '../core/enqueue.js';
import { MAX_LISTED_ERRORS, readInput, type LineCall, type RequestLine } from './batch-input.js';
import type { JobRecord } from '../core/records/jobs.js';
import { closeLines, LinesStillOpen, writeResults, type Ending } from './batch-output.js';
import { cancelGeminiBatches, collectFinished, giveUp, removeGeminiBatches, runGeminiBatch, type GeminiBatchDeps } from './gemini-batch.js';
import { releaseBatchCaches } from './context-cache.js';
import { batchLines } from '../core/metrics.js';
import { announceBatch, failBatch, feed, releaseGate } from '../domain/batches.js';
import { newEmbeddingRecord, newJobRecord, newResponseRecord, type BatchLine } from '../domain/jobs.js';
import { nowSeconds } from '../core/time.js';

export type { BatchJobData } from '../core/queues.js';

const CREATE_CHUNK = 500;

/** The batch queue's processor; `gemini` (Gemini Batch Mode) is needed by batches that run there. */
export function batchProcessor(services: Services, gemini?: GeminiBatchDeps) {
  return async (job: Job<BatchJobData>, token?: string): Promise<unknown> => {
    const { batchId } = job.data;
    switch (job.name as BatchJobName) {
      case BATCH_JOBS.expand:
        return expand(services, batchId);
      case BATCH_JOBS.gemini:
        if (!gemini) throw new Error('this process runs no Gemini Batch Mode');
        return runGeminiBatch(gemini, job, token);
      case BATCH_JOBS.finalize:
        return endBatch(services, batchId, 'completed', gemini);
      case BATCH_JOBS.expire:
        return endBatch(services, batchId, 'expired', gemini);
      case BATCH_JOBS.cancel:
        return endBatch(services, batchId, 'cancelled', gemini);
      default:
        return { released: batchId };
    }
  };
}

/** Whether the batch is in the hands of this ending's job (so that job's failure may end it). */
const OWNED_BY: Partial<Record<BatchJobName, (b: BatchRecord) => boolean>> = {
  finalize: (b) => b.status === 'finalizing' && b.ending === 'completed',
  // The window's end either claimed the batch (finalizing) or failed before it could.
  expire: (b) => (b.status === 'finalizing' && b.ending === 'expired') || b.status === 'validating' || b.status === 'in_progress',
  cancel: (b) => b.status === 'cancelling',
};

/**
 * A batch job that will not run again. A batch whose input could not be read fails; so does one
 * whose ending (finalize, expire, cancel) could not write its results after every retry, rather
 * than staying `finalizing` or `cancelling` for ever. A finalize that gave up because lines are
 * still open leaves the batch `in_progress`: the window's end closes those lines and writes the rest.
 */
export async function onBatchJobFailedForGood(services: Services, job: Job<BatchJobData>, err: Error): Promise<void> {
  services.logger.error({ err: err.message, batch_id: job.data.batchId, job: job.name }, 'batch job failed for good');
  if (job.name === BATCH_JOBS.expand) {
    const error = { code: 'validation_failed', message: `The input could not be read: ${err.message}`, param: null, line: null };
    await failBatch(services, job.data.batchId, [error]);
    return;
  }
  if (job.name === BATCH_JOBS.gemini) {
    await giveUp(services, job.data.batchId, err);
    return;
  }
  const owned = OWNED_BY[job.name as BatchJobName];
  if (!owned || err instanceof LinesStillOpen) return;
  const batch = await services.batches.get(job.data.batchId);
  if (!batch || !owned(batch)) return;
  const error = { code: 'finalize_failed', message: `The batch's results could not be written: ${err.message}`, param: null, line: null };
  await failBatch(services, batch.id, [error], [batch.status]);
}

// ---------------------------------------------------------------------------
// Validation and expansion

async function expand(services: Services, batchId: string): Promise<unknown> {
  const { batches, files } = services;
  const batch = await batches.get(batchId);
  if (!batch || (batch.status !== 'validating' && batch.status !== 'in_progress')) return { skipped: batch?.status ?? 'gone' };
  if (batch.status === 'in_progress') {
    // Run again after a crash past validation: every record exists; make sure lines are out.
    await sendLinesOut(services, batch);
    return { lines: batch.total };
  }
  const input = await files.get(batch.input_file_id);
  if (!input || input.content_deleted || (await services.staging.size(input.staging_key)) !== input.bytes) {
    await failBatch(services, batchId, [
      {
        code: 'input_file_unavailable',
        message: `The input file '${batch.input_file_id}' is no longer available.`,
        param: 'input_file_id',
        line: null,
      },
    ]);
    return { failed: 'input_file_unavailable' };
  }

  // Pass 1: every line checked; any problem fails the batch before anything runs.
  const errors: BatchError[] = [];
  let total = 0;
  for await (const item of readInput(services, batch, input, true)) {
    if ('error' in item) {
      if (errors.length < MAX_LISTED_ERRORS) errors.push(item.error);
    } else total++;
  }
  if (errors.length) {
    await failBatch(services, batchId, errors);
    return { failed: errors.length };
  }

  // Pass 2: one job record per line (only where absent: this pass may be a repeat), then start.
  let chunk: RequestLine[] = [];
  for await (const item of readInput(services, batch, input, false)) {
    if (!('request' in item)) continue;
    chunk.push(item.request);
    if (chunk.length >= CREATE_CHUNK) {
      await createLineRecords(services, batch, chunk);
      chunk = [];
    }
  }
  await createLineRecords(services, batch, chunk);
  const started = await batches.transition(batchId, { status: 'in_progress', in_progress_at: nowSeconds(), total });
  const after = await batches.get(batchId);
  if (!started && after?.status !== 'in_progress') {
    // Cancelled or expired while validating: its lines never run.
    if (after) await closeLines(services, after, total, after.cancelling_at ? 'cancelled' : 'expired');
    return { skipped: after?.status ?? 'gone' };
  }
  await sendLinesOut(services, after!);
  return { lines: total };
}

/** Lines out: to the generate queue (direct), or to the `gemini` job that runs them on Gemini Batch Mode. */
async function sendLinesOut(services: Services, batch: BatchRecord): Promise<void> {
  if (batch.execution !== 'gemini_batch') return feed(services, batch.id);
  if (!batch.total) return releaseGate(services, batch.id);
  await enqueueGeminiBatch(services, batch.id);
}

async function createLineRecords(services: Services, batch: BatchRecord, lines: RequestLine[]): Promise<void> {
  if (lines.length === 0) return;
  const ids = lines.map((l) => lineJobId(batch.id, l.index));
  const exists = (await Promise.all(ids.map((id) => services.redis.exists(services.jobs.key(id))))).map((n) => n === 1);
  await Promise.all(
    lines.map((l, k) => {
      if (exists[k]) return undefined;
      const line = { batchId: batch.id, customId: l.custom_id, index: l.index };
      return services.jobs.create(lineRecord(ids[k], batch.tenant, l.call, line));
    }),
  );
}

/** A line's job record, of its endpoint's type. */
function lineRecord(id: string, tenant: string, call: LineCall, line: BatchLine): JobRecord {
  if (call.type === 'response') return newResponseRecord({ id, tenant, response: call.response, line });
  if (call.type === 'embedding') return newEmbeddingRecord({ id, tenant, embedding: call.embedding, line });
  return newJobRecord({ id, tenant, chat: call.chat, line });
}

// ---------------------------------------------------------------------------
// The end: completed, expired or cancelled

/** Claims the batch for `ending` (or finds it claimed by an earlier run of this job), writes its files and ends it. */
async function endBatch(services: Services, batchId: string, ending: Ending, gemini?: GeminiBatchDeps): Promise<unknown> {
  const batch = await claimEnding(services, batchId, ending);
  if (!batch) {
    // Ended by an earlier run of this job: make sure its event went out; ids dedupe it.
    const now = await services.batches.get(batchId);
    if (now && isFinalBatch(now) && now.status === ending) await announceBatch(services, now);
    return { skipped: now?.status ?? 'gone' };
  }
  const onGemini = batch.execution === 'gemini_batch' ? gemini : undefined;
  // Completed with a Gemini batch never collected: its job gave up and failed those lines, so Gemini stops too.
  const uncollected = (batch.gemini_batches ?? []).some((g) => g.name && !g.collected);
  if (onGemini && (ending !== 'completed' || uncollected)) await stopGemini(onGemini, batch);
  const results =
    batch.total === null
      ? { output_file_id: null, error_file_id: null, request_counts: { total: 0, completed: 0, failed: 0 }, usage: null }
      : await writeResults(services, batch, ending);
  const at = { completed: 'completed_at', expired: 'expired_at', cancelled: 'cancelled_at' }[ending];
  const ended = await services.batches.transitionGet(batchId, { status: ending, [at]: nowSeconds(), ...results }, { from: [batch.status] });
  if (ended) {
    countLines(ended, results.request_counts);
    await announceBatch(services, ended);
  }
  if (onGemini) await removeGeminiBatches(onGemini, batch);
  if (gemini)
    await releaseBatchCaches(gemini, batchId).catch((err) =>
      services.logger.warn({ err, batchId }, 'a context cache of the batch was not deleted: it expires on its own'),
    );
  await releaseGate(services, batchId);
  if (ending !== 'expired') await services.queues.batch.remove(jobIds.batch(BATCH_JOBS.expire, batchId)).catch(() => 0);
  return { [ending]: results.request_counts };
}

/** The batch if it is (now) this ending's to end: every line done, the window passed, or cancelling. */
async function claimEnding(services: Services, batchId: string, ending: Ending): Promise<BatchRecord | null> {
  const { batches } = services;
  const t = nowSeconds();
  if (ending === 'completed') {
    const current = await batches.get(batchId);
    if (current?.status === 'in_progress') {
      const s = await batches.lineState(batchId);
      // Not claimed before every line is done: the job is retried, and the window's end still applies meanwhile.
      if (s.completed + s.failed < (current.total ?? 0))
        throw new LinesStillOpen(`${batchId}: ${s.completed + s.failed} of ${current.total} lines done`);
      await batches.transition(batchId, { status: 'finalizing', ending, finalizing_at: t }, { from: ['in_progress'] });
    }
  }
  if (ending === 'expired') await batches.transition(batchId, { status: 'finalizing', ending, finalizing_at: t });
  const batch = await batches.get(batchId);
  const mine = ending === 'cancelled' ? batch?.status === 'cancelling' : batch?.status === 'finalizing' && batch.ending === ending;
  return mine ? batch : null;
}

/** A cancelled or expired batch on Gemini Batch Mode: what Gemini has answered is collected, it stops the rest, and the job asking after them goes. */
async function stopGemini(gemini: GeminiBatchDeps, batch: BatchRecord): Promise<void> {
  await collectFinished(gemini, batch);
  await cancelGeminiBatches(gemini, batch);
  if (batch.gemini_batches) await gemini.services.batches.update(batch.id, { gemini_batches: batch.gemini_batches });
  await gemini.services.queues.batch.remove(jobIds.batch(BATCH_JOBS.gemini, batch.id)).catch(() => 0);
}

function countLines(batch: BatchRecord, counts: RequestCounts): void {
  const execution = batch.execution ?? 'direct';
  batchLines.inc({ execution, outcome: 'completed' }, counts.completed);
  batchLines.inc({ execution, outcome: 'failed' }, counts.failed);
}
