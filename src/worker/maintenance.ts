/**
 * The maintenance queue: a scheduled pass that deletes staged bytes whose
 * retention has passed and queues again the work of records whose enqueue was
 * lost (core/enqueue.ts). A BullMQ job scheduler runs it once a minute across
 * all worker processes (never twice at once).
 */
import { reconcilePending } from '../core/enqueue.js';
import { MAINTENANCE_JOB } from '../core/queues.js';
import type { Services } from '../core/services.js';
import { nowSeconds } from '../core/time.js';

export const SWEEP_SCHEDULER_ID = 'sweep-content';

export function maintenanceProcessor(services: Services) {
  return async (): Promise<{ deleted: number; requeued: number; cleared: number }> => ({
    ...(await sweepExpiredContent(services)),
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

export async function scheduleMaintenance(services: Services): Promise<void> {
  await services.queues.maintenance.upsertJobScheduler(
    SWEEP_SCHEDULER_ID,
    { every: 60_000 },
    { name: MAINTENANCE_JOB, opts: { removeOnComplete: 100, removeOnFail: 100, attempts: 1 } },
  );
}
