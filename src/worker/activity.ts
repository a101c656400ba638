/**
 * Samples for the activity's gauges every bucket: each worker the admitted rate of the models it
 * calls (shared state, so every sampler writes the same value), and one worker at a time (a
 * lease) the queue depths, which are the same whoever reads them.
 */
import { ACTIVITY_BUCKET_SECONDS } from '../core/activity.js';
import type { Admission } from '../core/admission.js';
import { eachQueue, type Services } from '../core/services.js';

const WAITING = ['waiting', 'prioritized', 'delayed', 'waiting-children'] as const;

export function sampleActivity(services: Services, admission: Admission): { stop: () => void } {
  const sample = () =>
    void sampleOnce(services, admission).catch((err: Error) => services.logger.debug({ err: err.message }, 'activity sample skipped'));
  sample();
  const timer = setInterval(sample, ACTIVITY_BUCKET_SECONDS * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

export async function sampleOnce(services: Services, admission: Admission): Promise<void> {
  const rates = (await admission.states())
    .filter((s) => s.rate !== null)
    .map((s) => ({ series: 'admitted_rate' as const, subject: s.model, value: s.rate! }));
  const lease = await services.redis.set(services.keys.activitySampler(), '1', 'PX', ACTIVITY_BUCKET_SECONDS * 1000 - 500, 'NX');
  await services.activity.sample([...rates, ...(lease ? await queueDepths(services) : [])]);
}

/** Jobs waiting (of any kind: queued, delayed, waiting for quota) and running, per queue, its shards summed. */
async function queueDepths(services: Services) {
  const depth = new Map<string, { queued: number; running: number }>();
  for (const { queue, handle } of eachQueue(services.queues)) {
    const counts = await handle.getJobCounts(...WAITING, 'active');
    const row = depth.get(queue) ?? { queued: 0, running: 0 };
    row.queued += WAITING.reduce((a, s) => a + (counts[s] ?? 0), 0);
    row.running += counts.active ?? 0;
    depth.set(queue, row);
  }
  return [...depth].flatMap(([queue, d]) => [
    { series: 'queued' as const, subject: queue, value: d.queued },
    { series: 'running' as const, subject: queue, value: d.running },
  ]);
}
