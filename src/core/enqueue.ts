/**
 * Queuing the work behind a new record, made safe against a crash in between.
 *
 * The API writes a file, job or batch record and then adds its BullMQ job: two
 * writes, so a process that dies between them would leave a record that never
 * moves. Each such record is therefore created with its id in a pending set (in
 * the same script as the record), and the id leaves the set once its work is
 * queued. A maintenance pass (`reconcilePending`) takes ids that have stayed
 * pending longer than a grace period and queues their work again if the record
 * still waits for it. Job ids are deterministic, so queuing twice runs once.
 */
import {
  BATCH_JOBS,
  DELIVER_JOB,
  EARLY_UPLOAD_JOB,
  GENERATE_JOB,
  QUEUES,
  UPLOAD_JOBS,
  jobIds,
  upstreamJobOptions,
  type EarlyUploadJobData,
  type GenerateJobData,
  type RemoveJobData,
} from './queues.js';
import type { Queue } from 'bullmq';
import { lineJobId } from './records/batches.js';
import type { JobRecord } from './records/jobs.js';
import type { BatchRecord } from './records/batches.js';
import type { ScoredEntry } from './records/store.js';
import type { Services } from './services.js';

/**
 * How long an id may stay pending before maintenance takes it for lost. An enqueue takes
 * milliseconds; one that is merely slow and meets maintenance queues the same job id, which runs once.
 */
export const PENDING_GRACE_MS = 5_000;
/** An id whose record never appeared (its API died before writing it) is forgotten after this long. */
export const PENDING_FORGET_MS = 10 * 60_000;

export function pendingKey(services: Pick<Services, 'keys'>): string {
  return services.keys.enqueuePending();
}

/** What `RecordStore.create` takes to put a new record's id in the pending set, scored by the time. */
export function pending(services: Pick<Services, 'keys'>, now = Date.now()): ScoredEntry[] {
  return [{ key: pendingKey(services), score: now }];
}

export async function enqueueGenerate(services: Services, rec: JobRecord): Promise<void> {
  const direct = rec.file_ids.length === 0 && rec.image_urls.length === 0 && !rec.file_urls?.length && !rec.batch_id;
  const data: GenerateJobData = {
    jobId: rec.id,
    ...(direct ? { direct: { tenant: rec.tenant, model: rec.model, tokens: rec.input_tokens ?? 0 } } : {}),
  };
  await services.queues.generate.of(rec.id).add(GENERATE_JOB, data, { jobId: rec.id });
}

export async function enqueueUpload(services: Services, fileId: string): Promise<void> {
  await services.queues.upload.add(UPLOAD_JOBS.upload, { fileId }, { jobId: jobIds.upload(fileId) });
}

/** An early upload: one try (a crashed worker's is run again); the file's own upload job is what must not fail. */
export async function enqueueEarlyUpload(services: Services, data: EarlyUploadJobData): Promise<void> {
  await services.queues.early.add(EARLY_UPLOAD_JOB, data, { jobId: jobIds.early(data.fileId), attempts: 1 });
}

/**
 * The batch's flow in one atomic step: `finalize` with its first children
 * (`expand`, and `gate`, released when the last line is handed out), and the
 * `expire` job due when the completion window ends.
 */
export async function enqueueBatch(services: Services, rec: BatchRecord): Promise<void> {
  const opts = upstreamJobOptions(services.config);
  const data = { batchId: rec.id };
  const windowMs = (rec.expires_at - rec.created_at) * 1000;
  const job = (name: (typeof BATCH_JOBS)[keyof typeof BATCH_JOBS], extra: object = {}) => ({
    name,
    queueName: QUEUES.batch,
    data,
    opts: { ...opts, jobId: jobIds.batch(name, rec.id), ...extra },
  });
  await services.flows.addBulk([
    { ...job(BATCH_JOBS.finalize), children: [job(BATCH_JOBS.expand), job(BATCH_JOBS.gate, { delay: windowMs + 3600_000, attempts: 1 })] },
    job(BATCH_JOBS.expire, { delay: windowMs }),
  ]);
}

/** Whether the record's work may not be queued yet. */
export async function isPending(services: Services, id: string): Promise<boolean> {
  return (await services.redis.zscore(pendingKey(services), id)) !== null;
}

/** The job that runs a batch's lines on Gemini Batch Mode (one per batch). */
export async function enqueueGeminiBatch(services: Services, batchId: string): Promise<void> {
  const jobId = jobIds.batch(BATCH_JOBS.gemini, batchId);
  await services.queues.batch.add(BATCH_JOBS.gemini, { batchId }, { ...upstreamJobOptions(services.config), jobId });
}

/** BullMQ priority of batch lines: interactive jobs (no priority) always go first. */
export const BATCH_LINE_PRIORITY = 100;

/**
 * Lines [from, to) of a batch, each on the generate shard its id hashes to, so that one large
 * batch spreads over a cluster's masters. They are not children of the batch's flow (a flow
 * keeps to one slot): the gate opens when the last line is counted (see domain/batches.ts).
 */
export async function enqueueLines(services: Services, batchId: string, from: number, to: number): Promise<void> {
  const byShard = new Map<Queue<GenerateJobData>, string[]>();
  for (let index = from; index < to; index++) {
    const jobId = lineJobId(batchId, index);
    const shard = services.queues.generate.of(jobId);
    const ids = byShard.get(shard) ?? byShard.set(shard, []).get(shard)!;
    ids.push(jobId);
  }
  await Promise.all(
    [...byShard].map(([shard, ids]) =>
      shard.addBulk(ids.map((jobId) => ({ name: GENERATE_JOB, data: { jobId }, opts: { jobId, priority: BATCH_LINE_PRIORITY } }))),
    ),
  );
}

/** The job that removes what a deleted file left (its upload job, if any, was removed first). */
export async function enqueueRemoval(services: Services, data: RemoveJobData): Promise<void> {
  await services.queues.upload.add(UPLOAD_JOBS.remove, data, { jobId: jobIds.remove(data.fileId) });
}

/** A webhook delivery, tried on FERRY_WEBHOOK_RETRY_SCHEDULE (`jobId`: the delivery's, or a replay's). */
export async function enqueueDelivery(services: Services, deliveryId: string, jobId: string): Promise<void> {
  const schedule = services.config.webhookRetrySchedule;
  await services.queues.deliver
    .of(jobId)
    .add(
      DELIVER_JOB,
      { deliveryId },
      { jobId, delay: Math.round(schedule[0] * 1000), attempts: schedule.length, backoff: { type: 'webhook' } },
    );
}

/** The job that ends a cancelled batch's lines (its id dedupes repeated cancels). */
export async function enqueueBatchCancel(services: Services, batchId: string): Promise<void> {
  await services.queues.batch.add(BATCH_JOBS.cancel, { batchId }, { jobId: jobIds.batch(BATCH_JOBS.cancel, batchId) });
}

/**
 * The record's work is queued: its id leaves the pending set. Never throws: the work is queued
 * whatever happens here, and an id left behind is cleared by the next maintenance pass.
 */
export async function markEnqueued(services: Services, id: string): Promise<void> {
  await services.redis.zrem(pendingKey(services), id).catch((err: Error) => {
    services.logger.warn({ err: err.message, id }, 'could not clear a pending enqueue; maintenance will');
  });
}

/**
 * Queues again the work of records whose enqueue was lost (pending past the
 * grace period and still in their first status); forgets every other pending
 * id past the grace period. Answers how many it queued and how many it forgot.
 */
export async function reconcilePending(services: Services, now = Date.now()): Promise<{ requeued: number; cleared: number }> {
  const key = pendingKey(services);
  let requeued = 0;
  let cleared = 0;
  // Ids left in the set (failed, or their record not written yet) are skipped by the next page.
  let kept = 0;
  for (;;) {
    const page = await services.redis.zrangebyscore(key, '-inf', now - PENDING_GRACE_MS, 'WITHSCORES', 'LIMIT', kept, 500);
    if (page.length === 0) break;
    for (let i = 0; i < page.length; i += 2) {
      const [id, since] = [page[i], Number(page[i + 1])];
      try {
        const outcome = await requeue(services, id);
        // A record not written yet (its API slow, or its clock ahead) may still come: only an old id is forgotten.
        if (outcome === 'missing' && since > now - PENDING_FORGET_MS) {
          kept++;
          continue;
        }
        if (outcome === 'queued') requeued++;
        else cleared++;
        await services.redis.zrem(key, id);
      } catch (err) {
        kept++;
        services.logger.error({ err: (err as Error).message, id }, 'could not queue again the work of a pending record');
      }
    }
  }
  if (requeued) services.logger.warn({ requeued }, 'queued again the work of records whose enqueue was lost');
  return { requeued, cleared };
}

/** Queues a pending record's work if it still waits for it; `missing` when there is no record (yet). */
async function requeue(services: Services, id: string): Promise<'queued' | 'not_waiting' | 'missing'> {
  if (id.startsWith('job-')) {
    const rec = await services.jobs.get(id);
    if (!rec) return 'missing';
    if (rec.status !== 'queued' || rec.batch_id) return 'not_waiting';
    await enqueueGenerate(services, rec);
    return 'queued';
  }
  if (id.startsWith('file-')) {
    const rec = await services.files.get(id);
    if (!rec) return 'missing';
    if (rec.status !== 'uploaded') return 'not_waiting';
    await enqueueUpload(services, id);
    return 'queued';
  }
  if (id.startsWith('batch_')) {
    const rec = await services.batches.get(id);
    if (!rec) return 'missing';
    if (rec.status !== 'validating') return 'not_waiting';
    await enqueueBatch(services, rec);
    return 'queued';
  }
  return 'not_waiting';
}
