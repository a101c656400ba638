/**
 * How many completions run at once: one tenant's across all workers (FERRY_TENANT_MAX_RUNNING, a
 * ceiling, off by default: the quota's fair share is admission's), and batch lines in this process
 * (FERRY_BATCH_WORKER_SLOTS), so that slots always stay free for interactive requests.
 */
import { BatchLineSlots, TenantSlots, type WakeResult } from '../core/limits.js';
import type { Lane } from '../core/admission.js';
import type { Services } from '../core/services.js';

/** A job that found no slot parks for `parkMs`; one that found one calls `release` (more than once is harmless). */
export type Slot = { release: () => Promise<void> } | { parkMs: number };

export class RunSlots {
  private readonly tenants: TenantSlots;
  private readonly lines: BatchLineSlots;
  constructor(services: Services) {
    this.tenants = new TenantSlots(services.redis, services.keys, services.config.tenantMaxRunning);
    this.lines = new BatchLineSlots(services.config.batch.workerSlots, (id) => wakeLine(services, id));
  }

  /** A slot for the job: a batch line's in this process, an interactive job's in its tenant's cap. */
  async take(job: { lane: Lane; tenant: string; jobId: string }): Promise<Slot> {
    const slots = job.lane === 'batch' ? this.lines : this.tenants;
    if (!(await slots.acquire(job.tenant, job.jobId)))
      return { parkMs: slots === this.lines ? this.lines.parkMs : 200 + Math.random() * 300 };
    return { release: () => slots.release(job.tenant, job.jobId) };
  }
}

/** Wakes a parked line early: back from the delayed set to the queue. */
export async function wakeLine(services: Services, jobId: string): Promise<WakeResult> {
  const job = await services.queues.generate.of(jobId).getJob(jobId);
  const state = job ? await job.getState() : 'unknown';
  if (state === 'active') return 'not_yet';
  if (state !== 'delayed') return 'gone';
  await job!.promote();
  return 'woken';
}
