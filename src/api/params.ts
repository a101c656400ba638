/** What list and long-poll endpoints share: their query parameters, whose records they cover, and how a page is answered. */
import type { Request, Response } from 'express';
import { BadRequestError } from '../core/errors.js';
import { listedTenants } from '../domain/tenants.js';
import { principal } from './auth.js';
import type { ApiDeps } from './deps.js';

export const MAX_WAIT_SECONDS = 120;

/** `?wait=SECONDS` for long-polls, capped. */
export function waitSeconds(req: Request): number {
  const raw = req.query.wait;
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(n) || n < 0) {
    throw new BadRequestError('"wait" must be a number of seconds (0 or more).', { param: 'wait' });
  }
  return Math.min(n, MAX_WAIT_SECONDS);
}

/** OpenAI list parameters: `limit`, `after`, `order`. */
export function listQuery(req: Request, maxLimit: number, defaultLimit = maxLimit) {
  const { limit, after, order } = req.query;
  let n = defaultLimit;
  if (limit !== undefined) {
    n = Number(limit);
    if (typeof limit !== 'string' || !Number.isInteger(n) || n < 1 || n > maxLimit) {
      throw new BadRequestError(`"limit" must be a whole number from 1 to ${maxLimit}.`, { param: 'limit' });
    }
  }
  if (order !== undefined && order !== 'asc' && order !== 'desc') {
    throw new BadRequestError('"order" must be "asc" or "desc".', { param: 'order' });
  }
  if (after !== undefined && (typeof after !== 'string' || after.length > 100)) {
    throw new BadRequestError('"after" must be an object id.', { param: 'after' });
  }
  return { limit: n, after: after || undefined, order: (order ?? 'desc') as 'asc' | 'desc' };
}

/** OpenAI's list envelope. */
export function listPage<T extends { id: string }, V>(page: { data: T[]; has_more: boolean }, view: (rec: T) => V) {
  return {
    object: 'list' as const,
    data: page.data.map(view),
    first_id: page.data[0]?.id ?? null,
    last_id: page.data.at(-1)?.id ?? null,
    has_more: page.has_more,
  };
}

/** The tenants a list covers: the caller's; for the admin key all, or the one `?tenant=` names. */
export function listTenants(deps: ApiDeps, req: Request, res: Response): Promise<string[]> {
  const { tenant } = req.query;
  if (tenant !== undefined && (typeof tenant !== 'string' || tenant.length > 64)) {
    throw new BadRequestError('"tenant" must be one tenant name.', { param: 'tenant' });
  }
  return listedTenants(deps.services, principal(res), tenant || undefined);
}

/** For the admin key, the object with its owner (Ferry's `tenant`): the admin's lists hold every tenant's. */
export function withOwner<V extends object>(res: Response, rec: { tenant: string }, shown: V): V | (V & { tenant: string }) {
  return principal(res).admin ? { ...shown, tenant: rec.tenant } : shown;
}
