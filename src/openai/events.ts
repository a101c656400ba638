/** The webhook events Ferry sends, by type (the Standard Webhooks payload's `type`). */
export const EVENT_TYPES = [
  'file.processed',
  'file.failed',
  'job.succeeded',
  'job.failed',
  'job.cancelled',
  'batch.completed',
  'batch.failed',
  'batch.expired',
  'batch.cancelled',
  'response.completed',
  'response.incomplete',
  'response.failed',
  'response.cancelled',
  'webhook_endpoint.disabled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
