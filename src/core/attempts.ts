/**
 * The attempt policy of queued work, one home for it: which failures are worth another try, and
 * whether a try is the job's last.
 */
import type { Job } from 'bullmq';
import { isRedisUnavailable } from './redis.js';
import { isRetryable } from './retry.js';

/**
 * A failure that says nothing about the work itself: an upstream's passing trouble, or Redis (where
 * the work's record lives) out of reach for a moment. Such a try is made again; an accepted job is
 * never failed for it while it has attempts left.
 */
export function isTransient(err: unknown): boolean {
  return isRetryable(err) || isRedisUnavailable(err);
}

/** Whether the try under way is the job's last (BullMQ counts the attempts made before it). */
export function isLastAttempt(job: Pick<Job, 'attemptsMade' | 'opts'>): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}
