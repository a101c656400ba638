/** Webhook endpoints (per tenant, with signing secrets) and deliveries (one per event and target). */
import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { RecordStore, type Lifecycle } from './store.js';
import { nowSeconds } from '../time.js';
import type { EventType } from '../../openai/events.js';

export interface SigningSecret {
  secret: string;
  created_at: number;
  /** Set when rotated out: it keeps signing alongside the new one until then. */
  expires_at: number | null;
}

export interface WebhookEndpoint {
  id: string;
  tenant: string;
  status: 'enabled' | 'disabled';
  url: string;
  events: EventType[] | null;
  description: string | null;
  secrets: SigningSecret[];
  created_at: number;
  failing_since: number | null;
  disabled_at: number | null;
  disabled_reason: string | null;
}

export interface DeliveryAttempt {
  at: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export interface WebhookDelivery {
  id: string;
  tenant: string;
  status: 'pending' | 'succeeded' | 'failed';
  event_id: string;
  event_type: EventType;
  /** The endpoint delivered to, or null for a per-request `webhook_url`. */
  endpoint_id: string | null;
  /** Whose secrets sign it: the endpoint, or the tenant's default endpoint for a `webhook_url`. */
  signing_endpoint_id: string;
  url: string;
  payload: string;
  attempts: DeliveryAttempt[];
  retries: number;
  created_at: number;
  finished_at: number | null;
}

export const activeSecrets = (e: WebhookEndpoint, now = nowSeconds()) =>
  e.secrets.filter((s) => s.expires_at === null || s.expires_at > now).map((s) => s.secret);

/** An endpoint is switched on and off by its owner, and off by failing deliveries. */
export const ENDPOINT_LIFECYCLE: Lifecycle<WebhookEndpoint['status']> = {
  enabled: ['enabled', 'disabled'],
  disabled: ['enabled', 'disabled'],
};

/** A delivery is attempted until it succeeds or its attempts are spent; a retry by request makes it pending again. */
export const DELIVERY_LIFECYCLE: Lifecycle<WebhookDelivery['status']> = {
  pending: ['succeeded', 'failed'],
  succeeded: ['pending'],
  failed: ['pending'],
};

export class EndpointStore extends RecordStore<WebhookEndpoint> {
  constructor(redis: Redis, keys: Keys) {
    super(redis, keys, { kind: 'webhook_endpoint', retentionSeconds: 10 * 365 * 86400, lifecycle: ENDPOINT_LIFECYCLE });
  }
  /** Every endpoint of the tenant, oldest first: the targets of its events. */
  async ofTenant(tenant: string): Promise<WebhookEndpoint[]> {
    return (await this.list(tenant, { limit: 1000, order: 'asc' })).data;
  }
  /** The tenant's oldest enabled endpoint: its secrets sign per-request `webhook_url` deliveries. */
  async defaultFor(tenant: string): Promise<WebhookEndpoint | null> {
    const { data } = await this.list(tenant, { limit: 1, order: 'asc', where: (e) => e.status === 'enabled' });
    return data[0] ?? null;
  }
}

export class DeliveryStore extends RecordStore<WebhookDelivery> {
  constructor(redis: Redis, keys: Keys, retentionSeconds: number) {
    super(redis, keys, { kind: 'webhook_delivery', retentionSeconds, lifecycle: DELIVERY_LIFECYCLE });
  }
}
