/** Prometheus metrics (prom-client). One registry per process; API and workers add to it. */
import { createHash, timingSafeEqual } from 'node:crypto';
import client from 'prom-client';
import { isLoopback, type Config } from './config.js';
import { AuthenticationError, type FerryError } from './errors.js';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

export const upstreamCalls = new client.Counter({
  name: 'ferry_upstream_calls_total',
  help: 'Calls to upstream services by provider, operation and HTTP status (or "network")',
  labelNames: ['provider', 'operation', 'status'] as const,
  registers: [registry],
});

export const upstreamRetries = new client.Counter({
  name: 'ferry_upstream_retries_total',
  help: 'Retries of upstream calls after a transient failure',
  labelNames: ['provider', 'operation'] as const,
  registers: [registry],
});

export const bytesUploaded = new client.Counter({
  name: 'ferry_bytes_uploaded_total',
  help: 'Bytes acknowledged by the upstream storage',
  labelNames: ['storage'] as const,
  registers: [registry],
});

export const earlyUploads = new client.Counter({
  name: 'ferry_early_uploads_total',
  help: 'Files sent on to Gemini while still arriving: started (API), taken over by the upload job with bytes already at Gemini, cancelled',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const flexSheds = new client.Counter({
  name: 'ferry_flex_sheds_total',
  help: 'Flex calls Gemini refused for capacity (each waits and tries again, then falls back as FERRY_FLEX_FALLBACK says)',
  labelNames: ['model'] as const,
  registers: [registry],
});

export const usageTokens = new client.Counter({
  name: 'ferry_usage_tokens_total',
  help: 'Gemini tokens recorded in the usage ledger, by tenant, model, billed tier and kind (input, cached, output)',
  labelNames: ['tenant', 'model', 'tier', 'kind'] as const,
  registers: [registry],
});

export const usageCost = new client.Counter({
  name: 'ferry_usage_cost_usd_total',
  help: 'Cost of the Gemini calls recorded in the usage ledger, in USD at the configured prices, by tenant, model and billed tier',
  labelNames: ['tenant', 'model', 'tier'] as const,
  registers: [registry],
});

export const jobDuration = new client.Histogram({
  name: 'ferry_job_duration_seconds',
  help: 'Duration of worker jobs by queue and outcome',
  labelNames: ['queue', 'outcome'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
  registers: [registry],
});

export const httpRequests = new client.Counter({
  name: 'ferry_http_requests_total',
  help: 'API requests by method, route and status',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
});

type DepthReader = () => Promise<Array<{ queue: string; state: string; count: number }>>;
const depthReaders = new Set<DepthReader>();

new client.Gauge({
  name: 'ferry_queue_jobs',
  help: 'Jobs per queue and state',
  labelNames: ['queue', 'state'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const read of depthReaders) {
      for (const row of await read().catch(() => [])) this.set({ queue: row.queue, state: row.state }, row.count);
    }
  },
});

/** Adds a source of queue depth (read from Redis when scraped); answers a function that removes it. */
export function registerQueueDepth(read: DepthReader): () => void {
  depthReaders.add(read);
  return () => depthReaders.delete(read);
}

export const batchLines = new client.Counter({
  name: 'ferry_batch_lines_total',
  help: 'Lines of ended batches, by how they ran (direct or gemini_batch) and how they ended (completed or failed)',
  labelNames: ['execution', 'outcome'] as const,
  registers: [registry],
});

export const webhookDeliveries = new client.Counter({
  name: 'ferry_webhook_deliveries_total',
  help: 'Webhook delivery outcomes (delivered, retry, dead_letter) by endpoint',
  labelNames: ['outcome', 'endpoint'] as const,
  registers: [registry],
});

export const webhookAttemptSeconds = new client.Histogram({
  name: 'ferry_webhook_attempt_seconds',
  help: 'Latency of webhook delivery attempts',
  labelNames: ['outcome'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
  registers: [registry],
});

export const quotaDecisions = new client.Counter({
  name: 'ferry_gemini_admissions_total',
  help: 'Admission decisions for Gemini calls by model, lane (interactive, batch) and outcome (admitted, waiting)',
  labelNames: ['model', 'lane', 'outcome'] as const,
  registers: [registry],
});

export const quotaRefusals = new client.Counter({
  name: 'ferry_gemini_quota_refusals_total',
  help: 'Gemini calls answered 429 (quota) by model; the work waits and runs later',
  labelNames: ['model'] as const,
  registers: [registry],
});

export const quotaWaitSeconds = new client.Counter({
  name: 'ferry_gemini_quota_wait_seconds_total',
  help: 'Time jobs were sent back to wait for their model quota, by model and lane',
  labelNames: ['model', 'lane'] as const,
  registers: [registry],
});

type RateReader = () => Promise<Array<{ model: string; rate: number | null; learned: boolean }>>;
const rateReaders = new Set<RateReader>();

new client.Gauge({
  name: 'ferry_gemini_admitted_rate',
  help: 'Requests per second admitted per model: the configured quota, or the learned rate (absent while no limit is known)',
  labelNames: ['model', 'source'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const read of rateReaders) {
      for (const s of await read().catch(() => [])) {
        if (s.rate !== null) this.set({ model: s.model, source: s.learned ? 'learned' : 'configured' }, s.rate);
      }
    }
  },
});

/** Registers the admission state of a worker process for /metrics; returns the unregister function. */
export function registerAdmissionRates(read: RateReader): () => void {
  rateReaders.add(read);
  return () => rateReaders.delete(read);
}

/**
 * Why a scrape of /metrics is refused, or null when it may be served: with FERRY_METRICS_KEY
 * set, the request must carry it as a bearer key (`none`: anyone may scrape); unset, a process
 * listening beyond loopback serves it to no one (queue names, tenants and rates are not public).
 */
export function metricsRefusal(config: Pick<Config, 'host' | 'metricsKey'>, authorization: string | undefined): FerryError | null {
  const key = config.metricsKey;
  if (key === 'none' || (key === undefined && isLoopback(config.host))) return null;
  if (key === undefined)
    return new AuthenticationError(
      `/metrics is not served on ${config.host} without a key: set FERRY_METRICS_KEY and scrape with "Authorization: Bearer <key>", or FERRY_METRICS_KEY=none to serve it to anyone.`,
      { code: 'metrics_key_required' },
    );
  const given = /^Bearer (.+)$/.exec(authorization ?? '')?.[1] ?? '';
  const [a, b] = [createHash('sha256').update(given).digest(), createHash('sha256').update(key).digest()];
  if (timingSafeEqual(a, b)) return null;
  return new AuthenticationError('/metrics needs the FERRY_METRICS_KEY as "Authorization: Bearer <key>".', { code: 'invalid_metrics_key' });
}
