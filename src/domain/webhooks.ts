/**
 * The rules of webhook endpoints and deliveries. An event goes to a tenant's endpoints (and a
 * per-request `webhook_url`): one delivery record and one delivery job per target. Ids derive
 * from the object and event type, so emitting the same event again (a retried job, a crash
 * between a status change and this call) never duplicates a delivery, and receivers see one
 * `webhook-id`. An endpoint's secrets rotate with an overlap; one that keeps failing is disabled.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ConflictError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Services } from '../core/services.js';
import { enqueueDelivery } from '../core/enqueue.js';
import type { WebhookDelivery, WebhookEndpoint } from '../core/records/webhooks.js';
import type { EventType } from '../openai/events.js';
import { endpointObject } from '../openai/webhooks.js';
import { nowSeconds } from '../core/time.js';

/** How long a rotated-out secret keeps signing beside the new one, so receivers can switch without a gap. */
export const ROTATION_OVERLAP_SECONDS = 24 * 3600;
const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;

export interface EndpointFields {
  url: string;
  events: EventType[] | null;
  description: string | null;
}

/** A new endpoint, enabled, with its first secret (shown to the tenant this once). */
export async function createEndpoint(services: Services, tenant: string, fields: EndpointFields) {
  const secret = newSecret();
  const endpoint: WebhookEndpoint = {
    id: newId('we'),
    tenant,
    status: 'enabled',
    ...fields,
    secrets: [{ secret, created_at: nowSeconds(), expires_at: null }],
    created_at: nowSeconds(),
    failing_since: null,
    disabled_at: null,
    disabled_reason: null,
  };
  await services.endpoints.create(endpoint);
  return { endpoint, secret };
}

/** Changes what the owner may change; switching it on clears its failure history. */
export async function changeEndpoint(services: Services, e: WebhookEndpoint, fields: Partial<EndpointFields>, enabled?: boolean) {
  if (enabled === undefined) return void (await services.endpoints.update(e.id, fields));
  const status = enabled
    ? { status: 'enabled' as const, disabled_at: null, disabled_reason: null, failing_since: null }
    : { status: 'disabled' as const, disabled_at: nowSeconds(), disabled_reason: 'disabled by request' };
  await services.endpoints.transition(e.id, { ...fields, ...status });
}

/** A new secret; the current ones keep signing for the overlap. Answers the new secret. */
export async function rotateSecret(services: Services, e: WebhookEndpoint): Promise<string> {
  const secret = newSecret();
  const t = nowSeconds();
  const kept = e.secrets
    .filter((s) => s.expires_at === null || s.expires_at > t)
    .map((s) => ({ ...s, expires_at: Math.min(s.expires_at ?? Infinity, t + ROTATION_OVERLAP_SECONDS) }));
  await services.endpoints.update(e.id, { secrets: [{ secret, created_at: t, expires_at: null }, ...kept] });
  return secret;
}

/** Sends a finished delivery again (a replay by its owner): pending, with a job of its own. */
export async function retryDelivery(services: Services, d: WebhookDelivery): Promise<WebhookDelivery> {
  if (d.status === 'pending') throw new ConflictError('This delivery is still being attempted.', { code: 'delivery_pending' });
  const retries = d.retries + 1;
  await services.deliveries.transition(d.id, { status: 'pending', retries, finished_at: null });
  await enqueueDelivery(services, d.id, `${d.id}-retry-${retries}`);
  return { ...d, status: 'pending', retries };
}

/** Marks an endpoint failing; one failing past FERRY_WEBHOOK_DISABLE_AFTER_SECONDS is disabled. */
export async function markFailing(services: Services, id: string, since: number | null) {
  if (!since) return void (await services.endpoints.update(id, { failing_since: nowSeconds() }));
  if (nowSeconds() - since >= services.config.webhookDisableAfterSeconds) {
    await disableEndpoint(services, id, `deliveries have failed since ${new Date(since * 1000).toISOString()}`);
  }
}

/** Disables an endpoint and records why; the tenant's other endpoints get a `webhook_endpoint.disabled` event. */
export async function disableEndpoint(services: Services, id: string, reason: string) {
  const at = nowSeconds();
  const e = await services.endpoints.transitionGet(
    id,
    { status: 'disabled', disabled_at: at, disabled_reason: reason },
    { from: ['enabled'] },
  );
  if (!e) return;
  services.logger.warn({ endpoint_id: id, tenant: e.tenant, reason }, 'webhook endpoint disabled');
  await emitSafely(services, {
    type: 'webhook_endpoint.disabled',
    tenant: e.tenant,
    objectId: `${e.id}:${at}`,
    // The endpoint as GET answers it, disabled.
    data: endpointObject(e),
  });
}

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
  const created_at = nowSeconds();
  // OpenAI's event envelope, so the SDKs' `webhooks.unwrap` reads Ferry's events as its own.
  const full = JSON.stringify({ id, object: 'event', type, created_at, data });
  if (Buffer.byteLength(full) <= services.config.webhookMaxPayloadBytes) return full;
  // Too large: the object without its result; the receiver fetches it.
  const { result: _omitted, ...rest } = data;
  return JSON.stringify({ id, object: 'event', type, created_at, data: { ...rest, result_omitted: true } });
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
      created_at: nowSeconds(),
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

/** Emits, logging instead of failing: delivering never blocks or fails the work itself. */
export async function emitSafely(services: Services, input: EmitInput): Promise<void> {
  try {
    await emit(services, input);
  } catch (err) {
    services.logger.error({ err: (err as Error).message, event: input.type, object_id: input.objectId }, 'could not emit webhook event');
  }
}
