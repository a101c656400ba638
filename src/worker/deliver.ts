/**
 * The deliver queue: POSTs a signed event (Standard Webhooks) to its target.
 * 2xx is success; redirects are not followed; 410 Gone disables the endpoint;
 * anything else is retried on FERRY_WEBHOOK_RETRY_SCHEDULE, with the same
 * `webhook-id` every time. After the last try the delivery is a dead letter,
 * listed by `GET /v1/webhook_deliveries?status=failed` and sent again on request.
 */
import { isLastAttempt } from '../core/attempts.js';
import { UnrecoverableError, type Job } from 'bullmq';
import { Webhook } from 'standardwebhooks';
import { request, type Dispatcher } from 'undici';
import { guardedAgent } from '../core/ssrf.js';
import { webhookAttemptSeconds, webhookDeliveries } from '../core/metrics.js';
import { activeSecrets, type DeliveryAttempt, type WebhookDelivery } from '../core/records/webhooks.js';
import type { DeliverJobData } from '../core/queues.js';
import type { Services } from '../core/services.js';
import { disableEndpoint, markFailing } from '../domain/webhooks.js';
import { nowSeconds } from '../core/time.js';

/** Signs `payload` with every active secret (several during a rotation), space-separated. */
export function signatures(secrets: string[], msgId: string, at: Date, payload: string): string {
  return secrets.map((s) => new Webhook(s).sign(msgId, at, payload)).join(' ');
}

class DeliveryFailed extends Error {}

/** One signed POST of the delivery's payload: the status it was answered, or why it was not. */
async function send(
  agent: Dispatcher,
  timeoutMs: number,
  d: WebhookDelivery,
  secrets: string[],
): Promise<{ statusCode: number | null; error: string | null }> {
  try {
    if (secrets.length === 0) throw new DeliveryFailed('no signing secret: the endpoint that signs was deleted');
    const at = new Date();
    const res = await request(d.url, {
      method: 'POST',
      dispatcher: agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Ferry-Webhooks/1',
        'webhook-id': d.event_id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': signatures(secrets, d.event_id, at, d.payload),
      },
      body: d.payload,
    });
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
    return { statusCode: res.statusCode, error: null };
  } catch (err) {
    return { statusCode: null, error: (err as Error).message };
  }
}

export function deliverProcessor(services: Services) {
  const agent = guardedAgent(services.config.allowPrivateNetworks);
  const { deliveries, endpoints, config } = services;

  const finish = async (d: WebhookDelivery, status: 'succeeded' | 'failed', attempts: DeliveryAttempt[]) => {
    await deliveries.transition(d.id, { status, attempts, finished_at: nowSeconds() });
    webhookDeliveries.inc({ outcome: status === 'succeeded' ? 'delivered' : 'dead_letter', endpoint: d.endpoint_id ?? 'webhook_url' });
  };

  return async (job: Job<DeliverJobData>): Promise<unknown> => {
    const d = await deliveries.get(job.data.deliveryId);
    if (!d || d.status !== 'pending') return { skipped: d?.status ?? 'gone' };
    const endpoint = d.endpoint_id ? await endpoints.get(d.endpoint_id) : null;
    if (d.endpoint_id && (!endpoint || endpoint.status === 'disabled')) {
      await finish(d, 'failed', [
        ...d.attempts,
        { at: nowSeconds(), status_code: null, error: 'endpoint disabled or deleted', duration_ms: 0 },
      ]);
      return { skipped: 'endpoint disabled' };
    }
    const signer = endpoint ?? (await endpoints.get(d.signing_endpoint_id));
    const secrets = signer ? activeSecrets(signer) : [];
    const last = isLastAttempt(job);
    const started = Date.now();
    const { statusCode, error } = await send(agent, config.webhookTimeoutSeconds * 1000, d, secrets);
    const attempt: DeliveryAttempt = { at: nowSeconds(), status_code: statusCode, error, duration_ms: Date.now() - started };
    webhookAttemptSeconds.observe({ outcome: statusCode && statusCode < 300 ? 'success' : 'failure' }, attempt.duration_ms / 1000);
    const attempts = [...d.attempts, attempt];

    if (statusCode !== null && statusCode >= 200 && statusCode < 300) {
      await finish(d, 'succeeded', attempts);
      if (endpoint?.failing_since) await endpoints.update(endpoint.id, { failing_since: null });
      return { status: statusCode };
    }
    if (statusCode === 410 && endpoint) {
      await disableEndpoint(services, endpoint.id, 'the endpoint answered 410 Gone');
      await finish(d, 'failed', attempts);
      throw new UnrecoverableError('410 Gone');
    }
    if (endpoint) await markFailing(services, endpoint.id, endpoint.failing_since);
    if (last || error?.startsWith('no signing secret')) {
      await finish(d, 'failed', attempts);
      throw new UnrecoverableError(`delivery failed: ${statusCode ?? error}`);
    }
    await deliveries.update(d.id, { attempts });
    webhookDeliveries.inc({ outcome: 'retry', endpoint: d.endpoint_id ?? 'webhook_url' });
    throw new DeliveryFailed(`attempt ${attempts.length} failed: ${statusCode ?? error}`);
  };
}

/** Delay before retry number `attemptsMade` (1-based): the configured schedule. */
export function webhookBackoffMs(schedule: number[], attemptsMade: number): number {
  return Math.round((schedule[Math.min(attemptsMade, schedule.length - 1)] ?? 0) * 1000);
}

/** A delivery job that will not run again (stalled too often, or an error outside an attempt): a dead letter. */
export async function onDeliveryFailedForGood(services: Services, job: Job<DeliverJobData>, err: Error): Promise<void> {
  const id = job.data.deliveryId;
  await services.deliveries.transition(id, { status: 'failed', finished_at: nowSeconds() });
  services.logger.warn({ delivery_id: id, err: err.message }, 'webhook delivery ended without a final attempt');
}
