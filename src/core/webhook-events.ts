/**
 * Emits an event to a tenant's webhook endpoints (and a per-request
 * `webhook_url`): one delivery record and one delivery job per target.
 * Ids derive from the object and event type, so emitting the same event
 * again (a retried job, a crash between a status change and this call)
 * never duplicates a delivery, and receivers see one `webhook-id`.
 */
import { createHash } from 'node:crypto';
import { DELIVER_JOB } from './queues.js';
import type { Services } from './services.js';
import type { EventType, WebhookDelivery, WebhookEndpoint } from './records/webhooks.js';

const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 24);

export function eventId(type: EventType, objectId: string): string {
  return `evt_${hash(type, objectId)}`;
}

export interface EmitInput {
  type: EventType;
  tenant: string;
  objectId: string;
  data: Record<string, unknown>;
  webhookUrl?: string | null;
  /** The tenant's endpoints, when the caller has just read them (EndpointStore.ofTenant). */
  endpoints?: WebhookEndpoint[];
}

export function payloadOf(services: Services, id: string, type: EventType, data: Record<string, unknown>): string {
  const created_at = Math.floor(Date.now() / 1000);
  const full = JSON.stringify({ id, type, created_at, data });
  if (Buffer.byteLength(full) <= services.config.webhookMaxPayloadBytes) return full;
  // Too large: the object without its result; the receiver fetches it.
  const { result: _omitted, ...rest } = data;
  return JSON.stringify({ id, type, created_at, data: { ...rest, result_omitted: true } });
}

export async function emit(services: Services, input: EmitInput): Promise<number> {
  const { endpoints, deliveries, logger } = services;
  const targets: Array<{ endpointId: string | null; signing: string; url: string }> = [];
  const all = input.endpoints ?? (await endpoints.ofTenant(input.tenant));
  for (const e of all) {
    if (e.status === 'enabled' && (!e.events || e.events.includes(input.type)))
      targets.push({ endpointId: e.id, signing: e.id, url: e.url });
  }
  if (input.webhookUrl) {
    const signer = all.find((e) => e.status === 'enabled');
    if (signer) targets.push({ endpointId: null, signing: signer.id, url: input.webhookUrl });
    else logger.warn({ tenant: input.tenant, event: input.type }, 'webhook_url given but the tenant has no enabled endpoint to sign with');
  }
  if (targets.length === 0) return 0;
  const id = eventId(input.type, input.objectId);
  const payload = payloadOf(services, id, input.type, input.data);
  let created = 0;
  for (const t of targets) {
    const delivery: WebhookDelivery = {
      id: `whd_${hash(id, t.endpointId ?? t.url)}`,
      tenant: input.tenant,
      status: 'pending',
      event_id: id,
      event_type: input.type,
      endpoint_id: t.endpointId,
      signing_endpoint_id: t.signing,
      url: t.url,
      payload,
      attempts: [],
      retries: 0,
      created_at: Math.floor(Date.now() / 1000),
      finished_at: null,
    };
    const existing = await deliveries.get(delivery.id);
    if (existing) {
      // Still pending: make sure a delivery job exists (one lost in a crash is queued again; the id dedupes).
      if (existing.status === 'pending') await enqueueDelivery(services, delivery.id, delivery.id);
      continue;
    }
    await deliveries.create(delivery);
    await enqueueDelivery(services, delivery.id, delivery.id);
    created++;
  }
  return created;
}

export async function enqueueDelivery(services: Services, deliveryId: string, jobId: string): Promise<void> {
  const schedule = services.config.webhookRetrySchedule;
  await services.queues.deliver.add(
    DELIVER_JOB,
    { deliveryId },
    { jobId, delay: Math.round(schedule[0] * 1000), attempts: schedule.length, backoff: { type: 'webhook' } },
  );
}

/** Emits, logging instead of failing: delivering never blocks or fails the work itself. */
export async function emitSafely(services: Services, input: EmitInput): Promise<void> {
  try {
    await emit(services, input);
  } catch (err) {
    services.logger.error({ err: (err as Error).message, event: input.type, object_id: input.objectId }, 'could not emit webhook event');
  }
}
