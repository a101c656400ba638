/** Every Azure SDK call Ferry makes runs through here: Ferry's retry policy, error mapping and metrics. */
import { upstreamCalls } from '../../core/metrics.js';
import { withRetry, type RetryPolicy } from '../../core/retry.js';
import type { AzureCall } from './blocks.js';
import { toAzureError } from './errors.js';

const statusOf = (out: unknown) => String((out as { _response?: { status?: number } } | null)?._response?.status ?? 200);

/** Runs an SDK call under `policy`, counting it in the metrics by operation and status; `container` only sharpens error hints. */
export function azureCall(policy: RetryPolicy, container: string | undefined): AzureCall {
  return <T>(operation: string, fn: () => Promise<T>): Promise<T> =>
    withRetry({ provider: 'azure', operation }, policy, async () => {
      try {
        const out = await fn();
        upstreamCalls.inc({ provider: 'azure', operation, status: statusOf(out) });
        return out;
      } catch (err) {
        const e = toAzureError(err, container ?? '');
        upstreamCalls.inc({ provider: 'azure', operation, status: String(e.upstreamStatus ?? 'network') });
        throw e;
      }
    });
}
