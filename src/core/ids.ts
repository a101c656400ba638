import { createHash, randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// Random bytes drawn from a pool refilled 4 KiB at a time: one call into the CSPRNG per 256 ids.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

/**
 * `<prefix>-<9 chars of base36 milliseconds><16 random base62 chars>`.
 * Ids sort by creation time as plain strings, which is what list pagination
 * (`after`, `order`) relies on; the random part makes them unguessable.
 * OpenAI spells some ids with "_" (`batch_…`): `separator` says which.
 */
export function newId(prefix: string, now = Date.now(), separator = '-'): string {
  const time = now.toString(36).padStart(9, '0');
  if (poolAt + 16 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  let rand = '';
  for (let i = poolAt; i < poolAt + 16; i++) rand += ALPHABET[pool[i] % 62];
  poolAt += 16;
  return `${prefix}${separator}${time}${rand}`;
}

/** `n` in fixed-width base62: such strings sort as their numbers do. */
export function base62(n: number, width: number): string {
  let out = '';
  for (let v = n; out.length < width; v = Math.floor(v / 62)) out = ALPHABET[v % 62] + out;
  return out;
}

/**
 * A deterministic id of the same shape as `newId`'s: the time part of `base`
 * (another id) and 16 characters derived from `seed`. Repeating the derivation
 * (a retried job) names the same object.
 */
export function derivedId(prefix: string, base: string, seed: string): string {
  const time = base.slice(base.length - 25, base.length - 16);
  const digest = createHash('sha256').update(`${base}\0${seed}`).digest();
  let rand = '';
  for (let i = 0; i < 16; i++) rand += ALPHABET[digest[i] % 62];
  return `${prefix}-${time}${rand}`;
}
