/**
 * `/v1/webhook_endpoints` (per tenant; the `whsec_…` secret is shown at
 * creation and rotation only) and `/v1/webhook_deliveries` (attempts, dead
 * letters, replay).
 */
import { Router } from 'express';
import { BadRequestError } from '../core/errors.js';
import { checkDeliveryStatus, checkEndpointParams, deliveryObject, endpointObject } from '../openai/webhooks.js';
import { assertPublicUrl } from '../core/ssrf.js';
import { changeEndpoint, createEndpoint, retryDelivery, rotateSecret, type EndpointFields } from '../domain/webhooks.js';
import { principal } from './auth.js';
import { jsonBody } from './json-body.js';
import type { ApiDeps } from './deps.js';
import { listPage, listQuery, listTenants, withOwner } from './params.js';
import { answerWhenChanged } from './long-poll.js';
import type { WebhookDelivery } from '../core/records/webhooks.js';

/** Checks a webhook URL as given (scheme and address, SSRF guard); answers it normalised. */
export async function checkWebhookUrl(deps: ApiDeps, url: unknown, param = 'url'): Promise<string> {
  if (typeof url !== 'string') throw new BadRequestError(`"${param}" must be an http(s) URL.`, { param: param, code: 'invalid_url' });
  if (url.length > 2048)
    throw new BadRequestError(`"${param}" is ${url.length} characters long; at most 2048 are allowed.`, { param, code: 'invalid_url' });
  return (await assertPublicUrl(url, deps.services.config.allowPrivateNetworks, param)).toString();
}

/**
 * A request's own `webhook_url` (a completion's or an upload's): absent, or a public URL, and only
 * for a tenant with an endpoint, whose secret signs the events sent there.
 */
export async function requestWebhookUrl(deps: ApiDeps, tenant: string, given: unknown): Promise<string | null> {
  if (given === undefined) return null;
  const url = await checkWebhookUrl(deps, given, 'webhook_url');
  if (!(await deps.services.endpoints.defaultFor(tenant))) {
    throw new BadRequestError(
      '"webhook_url" needs a registered webhook endpoint: its secret signs the events (POST /v1/webhook_endpoints).',
      {
        param: 'webhook_url',
      },
    );
  }
  return url;
}

export function webhookEndpointsRouter(deps: ApiDeps): Router {
  const { endpoints } = deps.services;
  const r = Router();
  r.use(jsonBody('64kb'));

  r.post('/', async (req, res) => {
    const { tenant } = principal(res);
    const params = checkEndpointParams(req.body ?? {});
    const fields = {
      url: await checkWebhookUrl(deps, params.url),
      events: params.events ?? null,
      description: params.description ?? null,
    };
    const { endpoint, secret } = await createEndpoint(deps.services, tenant, fields);
    res.status(201).json(endpointObject(endpoint, secret));
  });

  r.get('/', async (req, res) => {
    const page = await endpoints.list(await listTenants(deps, req, res), listQuery(req, 100, 100));
    res.json(listPage(page, (e) => withOwner(res, e, endpointObject(e))));
  });

  r.get('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const e = await endpoints.getOwned(req.params.id, tenant, admin);
    res.json(withOwner(res, e, endpointObject(e)));
  });

  r.patch('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const e = await endpoints.getOwned(req.params.id, tenant, admin);
    const params = checkEndpointParams(req.body ?? {});
    const fields: Partial<EndpointFields> = {};
    if (params.url !== undefined) fields.url = await checkWebhookUrl(deps, params.url);
    if (params.events !== undefined) fields.events = params.events;
    if (params.description !== undefined) fields.description = params.description;
    await changeEndpoint(deps.services, e, fields, params.enabled);
    res.json(endpointObject((await endpoints.get(e.id)) ?? e));
  });

  r.delete('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const e = await endpoints.getOwned(req.params.id, tenant, admin);
    await endpoints.remove(e.id);
    res.json({ id: e.id, object: 'webhook_endpoint', deleted: true });
  });

  r.post('/:id/rotate_secret', async (req, res) => {
    const { tenant, admin } = principal(res);
    const e = await endpoints.getOwned(req.params.id, tenant, admin);
    const secret = await rotateSecret(deps.services, e);
    res.json(endpointObject(e, secret));
  });

  return r;
}

export function webhookDeliveriesRouter(deps: ApiDeps): Router {
  const { deliveries } = deps.services;
  const r = Router();

  r.get('/', async (req, res) => {
    const { status, endpoint_id } = req.query;
    checkDeliveryStatus(status);
    const [tenants, q] = [await listTenants(deps, req, res), listQuery(req, 1000, 100)];
    const where = (d: WebhookDelivery) => (!status || d.status === status) && (!endpoint_id || d.endpoint_id === endpoint_id);
    const shown = (d: WebhookDelivery) => withOwner(res, d, deliveryObject(d));
    await answerWhenChanged(deps, req, res, async () => listPage(await deliveries.list(tenants, { ...q, where }), shown));
  });

  r.get('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const d = await deliveries.getOwned(req.params.id, tenant, admin);
    res.json(withOwner(res, d, deliveryObject(d)));
  });

  r.post('/:id/retry', async (req, res) => {
    const { tenant, admin } = principal(res);
    const d = await deliveries.getOwned(req.params.id, tenant, admin);
    res.status(202).json(deliveryObject(await retryDelivery(deps.services, d)));
  });

  return r;
}
