/**
 * Bearer keys map to tenants. Keys are compared by their SHA-256 (a map
 * look-up on the digest: no timing hint about the key, and no key kept in
 * plain text after start-up). The admin key sees every tenant's records and
 * opens Bull Board.
 */
import { createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { AuthenticationError } from '../core/errors.js';
import { ADMIN_TENANT } from '../domain/tenants.js';

export interface Principal {
  tenant: string;
  admin: boolean;
}

const digest = (key: string) => createHash('sha256').update(key).digest('hex');

export class KeyRing {
  private readonly tenants = new Map<string, string>();
  private readonly admin: string | null;

  constructor(keys: Map<string, string>, adminKey?: string) {
    for (const [key, tenant] of keys) this.tenants.set(digest(key), tenant);
    this.admin = adminKey ? digest(adminKey) : null;
  }

  get hasAdmin(): boolean {
    return this.admin !== null;
  }

  resolve(key: string | undefined): Principal | null {
    if (!key) return null;
    const d = digest(key);
    if (this.admin && d === this.admin) return { tenant: ADMIN_TENANT, admin: true };
    const tenant = this.tenants.get(d);
    return tenant ? { tenant, admin: false } : null;
  }
}

/** The key from `Authorization: Bearer <key>`, or from Basic auth's password (browsers, for Bull Board). */
export function presentedKey(req: Request): string | undefined {
  const h = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(.+)$/i.exec(h);
  if (bearer) return bearer[1].trim();
  const basic = /^Basic\s+(.+)$/i.exec(h);
  if (basic) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1);
  }
  return undefined;
}

export function principal(res: Response): Principal {
  return res.locals.principal as Principal;
}

export function requireKey(ring: KeyRing) {
  return (req: Request, res: Response, next: NextFunction) => {
    const p = ring.resolve(presentedKey(req));
    if (!p) return next(new AuthenticationError());
    res.locals.principal = p;
    next();
  };
}

export function requireAdmin(ring: KeyRing) {
  return (req: Request, res: Response, next: NextFunction) => {
    const p = ring.resolve(presentedKey(req));
    if (!p?.admin) {
      res.setHeader('WWW-Authenticate', 'Basic realm="ferry admin"');
      return next(
        new AuthenticationError(
          ring.hasAdmin
            ? 'The admin key is required here: send FERRY_ADMIN_KEY as "Authorization: Bearer <key>" or as the Basic-auth password.'
            : 'No admin key is configured: start Ferry with FERRY_ADMIN_KEY set, then send it as "Authorization: Bearer <key>" or as the Basic-auth password.',
        ),
      );
    }
    res.locals.principal = p;
    next();
  };
}
