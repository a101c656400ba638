/**
 * Who may see which tenants' records. A tenant's key sees its own; the admin key (whose own
 * records are kept under the reserved tenant "admin") sees every tenant Ferry knows of, and may
 * narrow a list to one of them.
 */
import { NotFoundError } from '../core/errors.js';
import type { Services } from '../core/services.js';

/** The tenant the admin key's own records belong to (config refuses it as a key's tenant). */
export const ADMIN_TENANT = 'admin';

/** Every tenant with records or usage: those of the configured keys, the admin's own, and any with usage. */
export async function knownTenants(services: Services): Promise<string[]> {
  const named = new Set([...services.config.apiKeys.values(), ADMIN_TENANT, ...(await services.usage.tenants())]);
  return [...named].sort();
}

/**
 * The tenants a list covers: the caller's own; for the admin key every known tenant, or the one
 * `filter` names. Another tenant named by a tenant's key is not there for it (404, as its ids are).
 */
export async function listedTenants(services: Services, caller: { tenant: string; admin: boolean }, filter?: string): Promise<string[]> {
  if (!caller.admin) {
    if (filter && filter !== caller.tenant) throw new NotFoundError(`No such tenant: '${filter}'`, { param: 'tenant' });
    return [caller.tenant];
  }
  const known = await knownTenants(services);
  if (!filter) return known;
  if (!known.includes(filter))
    throw new NotFoundError(`No such tenant: '${filter}'. Known tenants: ${known.join(', ')}.`, { param: 'tenant' });
  return [filter];
}
