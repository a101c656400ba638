/**
 * The 429 RESOURCE_EXHAUSTED bodies of a quota refusal, in the three forms clients meet:
 *
 *   - full: Gemini API today, QuotaFailure with each violated limit (quotaValue, and "limit: N" in
 *     the message), Help, RetryInfo;
 *   - unstated limit: Gemini API through 2025, the same violations without quotaValue and a message
 *     without limits, Help first, RetryInfo kept;
 *   - bare: Vertex AI (dynamic shared quota) and proxies, a message and no details at all.
 *
 * A client that learns its limit from the 429s only learns it from the first form; the other two
 * are how it is tested that it still converges when told nothing. None has a Retry-After header.
 */

import { RpcError } from './errors.js';
import type { MetricName } from './quota-setting.js';

const RATE_LIMITS_URL = 'https://ai.google.dev/gemini-api/docs/rate-limits';
const VERTEX_MESSAGE =
  'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.';
const QUOTA_SENTENCE = 'You exceeded your current quota, please check your plan and billing details.';
/**
 * A request with more tokens than the per-minute limit never fits; Gemini still refuses it with a
 * retry delay (and refuses it again after), so this stands for "not within this minute".
 */
const NEVER_FITS_RETRY_SECONDS = 60;

/** The metrics as the paid tier names them in QuotaFailure violations. */
const METRICS = {
  rpm: {
    quotaMetric: 'generativelanguage.googleapis.com/generate_content_paid_tier_requests',
    quotaId: 'GenerateRequestsPerMinutePerProjectPerModel',
  },
  tpm: {
    quotaMetric: 'generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count',
    quotaId: 'GenerateContentInputTokensPerModelPerMinute',
  },
} as const;

export interface QuotaViolation {
  name: MetricName;
  /** The limit the 429 states: the full limit, whatever share another client takes of it. */
  limit: number;
}

/** Which body a refusal has (QuotaSetting.detail and statesLimit). */
export interface RefusalForm {
  detail: 'full' | 'none';
  statesLimit: boolean;
}

const help = {
  '@type': 'type.googleapis.com/google.rpc.Help',
  links: [{ description: 'Learn more about Gemini API quotas', url: RATE_LIMITS_URL }],
};

/** Gemini's quota 429; retryDelay in whole seconds, at least 1. */
export function quotaExceeded(
  model: string,
  violations: QuotaViolation[],
  waitMs: number,
  form: RefusalForm = { detail: 'full', statesLimit: true },
): RpcError {
  if (form.detail === 'none') return new RpcError(429, VERTEX_MESSAGE, { status: 'RESOURCE_EXHAUSTED' });
  const seconds = Number.isFinite(waitMs) ? waitMs / 1000 : NEVER_FITS_RETRY_SECONDS;
  const retryInfo = { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${Math.max(1, Math.ceil(seconds))}s` };
  const failure = {
    '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
    violations: violations.map(({ name, limit }) => ({
      ...METRICS[name],
      quotaDimensions: { location: 'global', model },
      ...(form.statesLimit ? { quotaValue: String(limit) } : {}),
    })),
  };
  if (!form.statesLimit) {
    const message = `${QUOTA_SENTENCE} For more information on this error, head to: ${RATE_LIMITS_URL}.`;
    return new RpcError(429, message, { status: 'RESOURCE_EXHAUSTED', details: [help, failure, retryInfo] });
  }
  const lines = violations.map(
    ({ name, limit }) => `* Quota exceeded for metric: ${METRICS[name].quotaMetric}, limit: ${limit}, model: ${model}`,
  );
  const message =
    `${QUOTA_SENTENCE} ` +
    `For more information on this error, head to: ${RATE_LIMITS_URL}. To monitor your current usage, head to: https://ai.dev/rate-limit. \n` +
    `${lines.join('\n')}\nPlease retry in ${Number(seconds.toFixed(3))}s.`;
  return new RpcError(429, message, { status: 'RESOURCE_EXHAUSTED', details: [failure, help, retryInfo] });
}
