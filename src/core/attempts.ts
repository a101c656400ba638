/**
 * The attempt policy of queued work, one home for it: which failures are worth another try, and
 * whether a try is the job's last.
 */
import type { Job } from 'bullmq';
import type { Config } from './config.js';
import { isRedisUnavailable } from './redis.js';
import { isRetryable, type RetryPolicy } from './retry.js';

/** How often, and how far apart, a transient upstream failure is tried again (FERRY_UPSTREAM_ATTEMPTS, FERRY_RETRY_*). */
export function retryPolicy(config: Pick<Config, 'upstreamAttempts' | 'retryBaseMs' | 'retryMaxMs'>): RetryPolicy {
  return { attempts: config.upstreamAttempts, baseMs: config.retryBaseMs, maxMs: config.retryMaxMs };
}

/**
 * A failure that says nothing about the work itself: an upstream's passing trouble, or Redis (where
 * the work's record lives) out of reach for a moment. Such a try is made again; an accepted job is
 * never failed for it while it has attempts left.
 */
export function isTransient(err: unknown): boolean {
  return isRetryable(err) || isRedisUnavailable(err);
}

/** Whether a job's `failed` event is its end: attempts spent, refused for good, or stalled too often. */
export function failedForGood(job: Pick<Job, 'finishedOn' | 'attemptsMade' | 'opts'>, err: Error): boolean {
  return (
    (job.finishedOn !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1)) ||
    err.name === 'UnrecoverableError' ||
    /stalled more than/.test(err.message)
  );
}

/** Whether the try under way is the job's last (BullMQ counts the attempts made before it). */
export function isLastAttempt(job: Pick<Job, 'attemptsMade' | 'opts'>): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}
