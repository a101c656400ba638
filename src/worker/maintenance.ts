/**
 * The maintenance queue: a scheduled pass that deletes staged bytes whose
 * retention has passed (and, now and then, writes a killed API left unfinished), deletes files whose client-set expiry has come and the parts of uploads
 * past their hour, and queues again the work of records whose enqueue was
 * lost (core/enqueue.ts). A BullMQ job scheduler runs it every few seconds across
 * all worker processes (one scheduled pass at a time), and each worker process runs it once as it
 * starts, so that work an API accepted just before it died is queued within seconds of either;
 * both steps are safe to run at the same time.
 */
import { reconcilePending } from '../core/enqueue.js';
import { deleteFile } from '../domain/files.js';
import { expireUploads } from '../domain/uploads.js';
import { MAINTENANCE_JOB } from '../core/queues.js';
import type { Services } from '../core/services.js';
import { nowSeconds } from '../core/time.js';

export const SWEEP_SCHEDULER_ID = 'sweep-content';
/** Maintenance runs this often: with PENDING_GRACE_MS, a lost enqueue is repaired within 10 s. */
export const MAINTENANCE_EVERY_MS = 5_000;

export function maintenanceProcessor(services: Services) {
  return async (): Promise<{
    deleted: number;
    expired: number;
    uploadsExpired: number;
    requeued: number;
    cleared: number;
    unfinished: number;
  }> => ({
    ...(await sweepExpiredContent(services)),
    unfinished: await sweepUnfinishedWrites(services),
    ...(await sweepExpiredFiles(services)),
    uploadsExpired: await expireUploads(services),
    ...(await reconcilePending(services)),
  });
}

export async function sweepExpiredContent(services: Services, now = nowSeconds()) {
  const { files, staging } = services;
  let deleted = 0;
  for (;;) {
    const ids = await files.dueForContentDeletion(now);
    if (ids.length === 0) return { deleted };
    for (const id of ids) {
      const rec = await files.get(id);
      if (rec) {
        await staging.delete(rec.staging_key);
        await files.update(id, { content_deleted: true });
      }
      await files.forgetContentExpiry(id);
      deleted++;
    }
  }
}

/** A write not grown for this long is dead: Node's server ends a request after 5 minutes. */
const UNFINISHED_IDLE_MS = 3600_000;
/** The staging directory is listed at most this often, whatever the number of workers. */
const UNFINISHED_SWEEP_EVERY_MS = 600_000;

/** Staged writes a killed API left unfinished (`.part` files), removed once they are long idle. */
export async function sweepUnfinishedWrites(services: Services): Promise<number> {
  const turn = await services.redis.set(services.keys.stagingSweep(), '1', 'PX', UNFINISHED_SWEEP_EVERY_MS, 'NX');
  if (turn !== 'OK') return 0;
  return services.staging.sweepUnfinished(UNFINISHED_IDLE_MS);
}

/**
 * Files whose client-set expiry has passed are deleted everywhere, as a DELETE does. The entry is
 * forgotten only after the delete: a pass cut short deletes again, which finds nothing to do.
 */
export async function sweepExpiredFiles(services: Services, now = nowSeconds()) {
  const { files } = services;
  let expired = 0;
  for (;;) {
    const ids = await files.dueForExpiry(now);
    if (ids.length === 0) return { expired };
    for (const id of ids) {
      await deleteFile(services, id);
      await files.forgetExpiry(id);
      expired++;
    }
  }
}

/** The pass a worker process runs as it starts; a failure is logged, and the schedule tries again. */
export async function maintainOnStart(services: Services): Promise<void> {
  await maintenanceProcessor(services)().catch((err: Error) =>
    services.logger.warn({ err: err.message }, 'maintenance at start-up failed'),
  );
}

export async function scheduleMaintenance(services: Services): Promise<void> {
  await services.queues.maintenance.upsertJobScheduler(
    SWEEP_SCHEDULER_ID,
    { every: MAINTENANCE_EVERY_MS },
    { name: MAINTENANCE_JOB, opts: { removeOnComplete: 100, removeOnFail: 100, attempts: 1 } },
  );
}
