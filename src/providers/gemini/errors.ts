/** Turns Gemini's error answers (raw HTTP or the SDK's ApiError) into UpstreamError. */
import { ApiError } from '@google/genai';
import { UpstreamError, isRetryableStatus } from '../../core/errors.js';
import { parseRetryAfter } from '../../core/retry.js';
import { upstreamCalls } from '../../core/metrics.js';

interface GoogleErrorBody {
  error?: { code?: number; message?: string; status?: string; details?: Array<Record<string, unknown>> };
}

function retryInfoMs(body: GoogleErrorBody | undefined): number | null {
  for (const d of body?.error?.details ?? []) {
    if (String(d['@type'] ?? '').endsWith('google.rpc.RetryInfo') && typeof d.retryDelay === 'string') {
      const m = /^(\d+(?:\.\d+)?)s$/.exec(d.retryDelay);
      if (m) return Math.round(Number(m[1]) * 1000);
    }
  }
  return null;
}

function parseBody(text: string): GoogleErrorBody | undefined {
  try {
    return JSON.parse(text) as GoogleErrorBody;
  } catch {
    return undefined;
  }
}

/** An HTTP answer that was not 2xx. */
export function geminiHttpError(status: number, bodyText: string, retryAfter?: string | string[] | null): UpstreamError {
  const body = parseBody(bodyText);
  const detail = body?.error?.message ?? (bodyText.slice(0, 300) || `HTTP ${status}`);
  const label = body?.error?.status ? `${status} ${body.error.status}` : `${status}`;
  const err = new UpstreamError(`Gemini answered ${label}: ${detail}`, {
    upstreamStatus: status,
    retryable: isRetryableStatus(status),
    retryAfterMs: parseRetryAfter(retryAfter) ?? retryInfoMs(body),
  });
  // Every 429 is the quota speaking, whether it names the quota (Gemini's QuotaFailure) or not
  // (Vertex AI, a dynamic shared quota, a proxy): admission learns from each.
  if (status === 429) err.quotaExceeded = true;
  const failure =
    status === 429 ? (body?.error?.details ?? []).find((d) => String(d['@type'] ?? '').endsWith('google.rpc.QuotaFailure')) : undefined;
  if (failure) {
    err.quotaLimits = perMinuteLimits(failure);
    err.namesQuota = true;
  }
  return err;
}

/** The per-minute request and input-token limits a QuotaFailure names (its quotaValue), if any. */
function perMinuteLimits(failure: Record<string, unknown>): { rpm?: number; tpm?: number } {
  const out: { rpm?: number; tpm?: number } = {};
  for (const v of (failure.violations as Array<Record<string, unknown>> | undefined) ?? []) {
    const id = `${v.quotaId ?? ''} ${v.quotaMetric ?? ''}`;
    const value = Number(v.quotaValue);
    if (!/PerMinute/i.test(id) || !Number.isFinite(value) || value <= 0) continue;
    if (/token/i.test(id)) out.tpm = value;
    else if (/request/i.test(id)) out.rpm = value;
  }
  return out;
}

/** Anything the SDK or a socket threw. */
export function toGeminiError(err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (err instanceof ApiError) return geminiHttpError(err.status, err.message);
  const e = err as NodeJS.ErrnoException;
  // A plain Error with no code and no cause is the SDK refusing the request before sending it:
  // asking again cannot help. Network failures carry a code or a cause (fetch failed: ECONNRESET).
  if (e instanceof Error && e.constructor === Error && !e.code && !e.cause) {
    return new UpstreamError(`Gemini's client refused the request: ${e.message}`, { upstreamStatus: 400, retryable: false });
  }
  const reason = e?.cause instanceof Error ? `${e.message}: ${e.cause.message}` : String(e?.message ?? err);
  return new UpstreamError(`Gemini could not be reached: ${reason}`, { upstreamStatus: null, retryable: true });
}

/** Runs one SDK call, counting it by outcome and turning its failure into an UpstreamError. */
export async function measured<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    const out = await fn();
    upstreamCalls.inc({ provider: 'gemini', operation, status: '200' });
    return out;
  } catch (err) {
    const e = toGeminiError(err);
    upstreamCalls.inc({ provider: 'gemini', operation, status: String(e.upstreamStatus ?? 'network') });
    throw e;
  }
}
