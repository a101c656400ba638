/**
 * Retry policy shared by every upstream call: exponential backoff with jitter,
 * honouring a delay the upstream named (Retry-After, Gemini's RetryInfo).
 */
import { setTimeout as sleepTimer } from 'node:timers/promises';
import { UpstreamError } from './errors.js';
import { upstreamRetries } from './metrics.js';

export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  maxMs: number;
}

/** "Equal jitter": half the exponential step for sure, the other half at random. */
export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>): number {
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + Math.random() * (step / 2));
}

/** The delay before retrying after `err` (the upstream's word wins over our backoff). */
export function retryDelayMs(err: unknown, attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>): number {
  if (err instanceof UpstreamError && err.retryAfterMs !== null) return Math.min(err.retryAfterMs, 15 * 60_000);
  return backoffMs(attempt, policy);
}

export function isRetryable(err: unknown): boolean {
  return err instanceof UpstreamError && err.retryable;
}

export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await sleepTimer(ms, undefined, { signal }).catch((e) => {
    if (signal?.aborted) throw signal.reason ?? e;
    throw e;
  });
}

/** Runs `fn`, retrying transient upstream failures under `policy`. */
export async function withRetry<T>(
  label: { provider: string; operation: string },
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isRetryable(err) || attempt >= policy.attempts || signal?.aborted) throw err;
      upstreamRetries.inc(label);
      await sleep(retryDelayMs(err, attempt, policy), signal);
    }
  }
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined | null): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return null;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}
