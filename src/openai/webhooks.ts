/**
 * The webhooks' wire contract: the event types, what `POST` and `PATCH /v1/webhook_endpoints` take
 * (the URL's reachability aside: the API checks it against the SSRF guard), and the endpoint and
 * delivery objects.
 */
import { BadRequestError } from '../core/errors.js';
import type { WebhookDelivery, WebhookEndpoint } from '../core/records/webhooks.js';
import { EVENT_TYPES, type EventType } from './events.js';

/** The fields of an endpoint a request may set, checked; absent ones are undefined. */
export interface EndpointParams {
  url?: unknown;
  events?: EventType[] | null;
  description?: string | null;
  enabled?: boolean;
}

/** Checks a create or change body (the `url` is checked by the caller, which can reach the network). */
export function checkEndpointParams(body: Record<string, unknown>): EndpointParams {
  if (body.enabled !== undefined && typeof body.enabled !== 'boolean')
    throw new BadRequestError('"enabled" must be true or false.', { param: 'enabled' });
  return {
    url: body.url,
    events: body.events === undefined ? undefined : parseEvents(body.events),
    description: body.description === undefined ? undefined : parseDescription(body.description),
    enabled: body.enabled as boolean | undefined,
  };
}

function parseEvents(v: unknown): EventType[] | null {
  if (v === null) return null;
  if (!Array.isArray(v) || v.length === 0 || v.some((e) => !EVENT_TYPES.includes(e))) {
    throw new BadRequestError(`"events" must be a non-empty list of: ${EVENT_TYPES.join(', ')}.`, { param: 'events' });
  }
  return [...new Set(v as EventType[])];
}

function parseDescription(v: unknown): string | null {
  if (v === null) return null;
  if (typeof v !== 'string' || v.length > 500)
    throw new BadRequestError('"description" must be a string of at most 500 characters.', { param: 'description' });
  return v;
}

/** The status filter of `GET /v1/webhook_deliveries`. */
export function checkDeliveryStatus(status: unknown): void {
  if (status !== undefined && !['pending', 'succeeded', 'failed'].includes(String(status))) {
    throw new BadRequestError('"status" must be pending, succeeded or failed.', { param: 'status' });
  }
}

/** The endpoint as the API shows it; its secret only when just made or rotated. */
export function endpointObject(e: WebhookEndpoint, secret?: string) {
  return {
    id: e.id,
    object: 'webhook_endpoint' as const,
    url: e.url,
    events: e.events,
    description: e.description,
    enabled: e.status === 'enabled',
    status: e.status,
    created_at: e.created_at,
    failing_since: e.failing_since,
    disabled_at: e.disabled_at,
    disabled_reason: e.disabled_reason,
    ...(secret ? { secret } : {}),
  };
}

/** The delivery as the API shows it. */
export function deliveryObject(d: WebhookDelivery) {
  return {
    id: d.id,
    object: 'webhook_delivery' as const,
    status: d.status,
    event_id: d.event_id,
    event_type: d.event_type,
    endpoint_id: d.endpoint_id,
    url: d.url,
    attempts: d.attempts,
    created_at: d.created_at,
    finished_at: d.finished_at,
  };
}
