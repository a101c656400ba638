/**
 * `GET /v1/me`: who the key is (Ferry's own; OpenAI's API has no such call). A tenant's key is its
 * tenant; the admin key also learns every tenant it may list (`?tenant=` narrows a list to one).
 */
import { Router } from 'express';
import { knownTenants } from '../domain/tenants.js';
import { principal } from './auth.js';
import type { ApiDeps } from './deps.js';

export function meRouter(deps: ApiDeps): Router {
  const r = Router();
  r.get('/', async (_req, res) => {
    const { tenant, admin } = principal(res);
    res.json({ object: 'principal', tenant, admin, tenants: admin ? await knownTenants(deps.services) : [tenant] });
  });
  return r;
}
