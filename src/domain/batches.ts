/**
 * The rules of a batch's lines: the sliding window that hands them to the generate queue
 * (FERRY_BATCH_CONCURRENCY ahead of those done), and the count of a line that reached a final
 * status, which hands out the next. The worker's batch jobs, the generate processor and the
 * API's cancel all end lines through here.
 */
import { crashPoint } from '../core/crash-points.js';
import { BATCH_JOBS, jobIds } from '../core/queues.js';
import { type BatchError, type BatchRecord, type LineState } from '../core/records/batches.js';
import type { JobRecord } from '../core/records/jobs.js';
import type { Services } from '../core/services.js';
import { ConflictError, NotFoundError } from '../core/errors.js';
import { enqueueBatchCancel, enqueueLines } from '../core/enqueue.js';
import { nowSeconds } from '../core/time.js';
import { batchEvent, type BatchCreateParams } from '../openai/batches.js';
import { emitSafely } from './webhooks.js';

/** A new batch's record, validating: its input is read by the batch queue's `expand`. */
export function newBatchRecord(p: { id: string; tenant: string; params: BatchCreateParams; createdAt: number }): BatchRecord {
  const { params } = p;
  return {
    id: p.id,
    tenant: p.tenant,
    status: 'validating',
    endpoint: params.endpoint,
    input_file_id: params.input_file_id,
    completion_window: params.completion_window,
    metadata: params.metadata,
    output_expires_after_seconds: params.outputExpiresAfterSeconds,
    errors: null,
    output_file_id: null,
    error_file_id: null,
    created_at: p.createdAt,
    in_progress_at: null,
    expires_at: p.createdAt + params.windowSeconds,
    finalizing_at: null,
    completed_at: null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    total: null,
    ending: null,
    request_counts: null,
    usage: null,
    execution: params.execution,
    gemini_batches: null,
  };
}

/**
 * Hands out lines up to FERRY_BATCH_CONCURRENCY past those done; releases the
 * gate (and so the flow's `finalize`) once every line is counted. Called after
 * expansion and whenever a line ends (again after a crash: counting is once);
 * concurrent calls may add the same line twice, which the deterministic job
 * ids turn into one job.
 */
export async function feed(services: Services, batchId: string, state?: LineState): Promise<void> {
  const { batches, config } = services;
  const { status, total, execution } = await batches.progress(batchId);
  // On Gemini Batch Mode the lines run at Gemini: nothing is handed to the generate queue.
  if (status !== 'in_progress' || execution === 'gemini_batch') return;
  const s = state ?? (await batches.lineState(batchId));
  const end = Math.min(total, s.completed + s.failed + config.batch.concurrency);
  // Handed out a few at a time (one add for several lines), except the last ones.
  if (s.fed < end && (end - s.fed >= feedStep(config.batch.concurrency) || end === total)) {
    await enqueueLines(services, batchId, s.fed, end);
    await batches.raiseFed(batchId, end);
  }
  if (s.completed + s.failed >= total) await releaseGate(services, batchId);
}

const feedStep = (window: number) => Math.max(1, Math.floor(window / 4));

/** Lets the flow's parent run once its other children are done (it runs at its delay otherwise). */
export async function releaseGate(services: Services, batchId: string): Promise<void> {
  const gate = await services.queues.batch.getJob(jobIds.batch(BATCH_JOBS.gate, batchId));
  if (gate && (await gate.isDelayed())) await gate.promote().catch(() => {});
}

/** A line reached a final status (called again after a crash or retry: it counts once); the next lines go out. */
export async function onLineFinal(services: Services, rec: JobRecord): Promise<void> {
  if (!rec.batch_id || rec.batch_line === undefined) return;
  const state = await countLine(services, rec.batch_id, rec.batch_line, rec);
  crashPoint('batch.line-counted');
  await feed(services, rec.batch_id, state);
}

/** Counts line `index` of the batch as completed or failed by its line job's final status, once. */
export async function countLine(
  services: Services,
  batchId: string,
  index: number,
  line: Pick<JobRecord, 'status' | 'tenant'>,
): Promise<LineState> {
  const state = await services.batches.markLine(batchId, index, line.status === 'succeeded' ? 'completed' : 'failed');
  if (state.counted) services.activity.count('lines', line.tenant);
  return state;
}

/** The batch fails (from one of the statuses given) with `errors`, says so, and its flow's gate opens. */
export async function failBatch(services: Services, batchId: string, errors: BatchError[], from: BatchRecord['status'][] = ['validating']) {
  const failed = await services.batches.transitionGet(
    batchId,
    { status: 'failed', failed_at: nowSeconds(), errors: { object: 'list', data: errors } },
    { from },
  );
  if (failed) await announceBatch(services, failed);
  await releaseGate(services, batchId);
}

/** The batch's event, from the record as it ended. */
export async function announceBatch(services: Services, rec: BatchRecord): Promise<void> {
  await emitSafely(services, batchEvent(rec, await services.batches.counts(rec)));
}

/**
 * Cancels an open batch: it says `cancelling` until the cancel job has ended its lines. The job is
 * queued on every call while cancelling (one per batch), so a repeated cancel repairs a lost
 * enqueue. Answers the batch as it then stands; 409 when it had ended already.
 */
export async function cancelBatch(services: Services, rec: BatchRecord): Promise<BatchRecord> {
  await services.batches.transition(rec.id, { status: 'cancelling', cancelling_at: nowSeconds() });
  const now = await services.batches.get(rec.id);
  if (!now) throw new NotFoundError(`No such batch: '${rec.id}'`, { param: 'batch_id' });
  if (now.status !== 'cancelling' && now.status !== 'cancelled') {
    throw new ConflictError(`Batch '${rec.id}' is ${now.status} and can no longer be cancelled.`, { code: 'batch_not_cancellable' });
  }
  if (now.status === 'cancelling') await enqueueBatchCancel(services, rec.id);
  return now;
}
