/**
 * Guard for outbound requests to user-given URLs (webhooks, image URLs):
 * only http(s), and no loopback, private, link-local (cloud metadata),
 * CGNAT, multicast, reserved or IPv6-equivalent addresses — checked when a
 * URL is accepted and again when connecting (so DNS rebinding cannot slip
 * through), unless WEBHOOK_ALLOW_PRIVATE_NETWORKS is set.
 */
import dns from 'node:dns';
import net from 'node:net';
import { Agent, buildConnector } from 'undici';
import { BadRequestError } from './errors.js';

const blocked = new net.BlockList();
for (const [addr, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(addr, bits, 'ipv4');
for (const [addr, bits] of [
  // IPv4-compatible (deprecated), which holds :: and ::1.
  ['::', 96],
  ['64:ff9b::', 96],
  // Teredo and 6to4 carry an IPv4 address inside (obfuscated, or any of them): both long deprecated.
  ['2001::', 32],
  ['2002::', 16],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  blocked.addSubnet(addr, bits, 'ipv6');

export function isPrivateAddress(ip: string): boolean {
  const family = net.isIP(ip);
  if (family === 4) return blocked.check(ip, 'ipv4');
  if (family !== 6) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return blocked.check(mapped[1], 'ipv4');
  return blocked.check(ip, 'ipv6');
}

const ALLOW_HINT = 'WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 on the service allows private networks';

export class BlockedAddressError extends Error {
  override name = 'BlockedAddressError';
  constructor(host: string, ip: string) {
    const what = host === ip ? `${ip} is a private or reserved address` : `${host} resolves to ${ip}, a private or reserved address`;
    super(`${what} (${ALLOW_HINT})`);
  }
}

/** Checks a URL when it is given: scheme, and every address its host resolves to. */
export async function assertPublicUrl(raw: string, allowPrivate: boolean, param = 'url'): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BadRequestError(`"${raw}" is not a valid URL.`, { param: param, code: 'invalid_url' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BadRequestError(`Only http and https URLs are allowed, not ${url.protocol}`, { param: param, code: 'invalid_url' });
  }
  if (url.username || url.password)
    throw new BadRequestError('URLs with credentials are not allowed.', { param: param, code: 'invalid_url' });
  if (url.port === '0')
    throw new BadRequestError(`"${raw}" names port 0, which nothing listens on.`, { param: param, code: 'invalid_url' });
  if (allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = net.isIP(host) ? [host] : (await dns.promises.lookup(host, { all: true })).map((a) => a.address);
  } catch {
    throw new BadRequestError(`The host "${host}" cannot be resolved.`, { param: param, code: 'invalid_url' });
  }
  const bad = addresses.find(isPrivateAddress);
  if (bad) {
    throw new BadRequestError(
      `"${raw}" is not allowed: ${host} is a private, loopback or reserved address (${bad}). Use a public URL (${ALLOW_HINT}).`,
      { param: param, code: 'url_not_allowed' },
    );
  }
  return url;
}

/**
 * An undici dispatcher whose connections refuse private addresses at connect
 * time: host names through the DNS answer they resolve to, IP literals (which
 * skip DNS) before connecting. Every request and redirect hop through it is
 * guarded, so callers need no check of their own per request.
 */
export function guardedAgent(allowPrivate: boolean, opts: { connectTimeoutMs?: number } = {}): Agent {
  const connect = buildConnector({
    timeout: opts.connectTimeoutMs ?? 10_000,
    lookup(hostname, options, callback) {
      dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, '', 0);
        const list = addresses as dns.LookupAddress[];
        const bad = allowPrivate ? undefined : list.find((a) => isPrivateAddress(a.address));
        if (bad) return callback(new BlockedAddressError(hostname, bad.address), '', 0);
        if ((options as dns.LookupOptions).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
        callback(null, list[0].address, list[0].family);
      });
    },
  });
  return new Agent({
    connect(options, callback) {
      const host = options.hostname.replace(/^\[|\]$/g, '');
      if (!allowPrivate && net.isIP(host) && isPrivateAddress(host)) return callback(new BlockedAddressError(host, host), null);
      connect(options, callback);
    },
  });
}
