import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * `<prefix>-<9 chars of base36 milliseconds><16 random base62 chars>`.
 * Ids sort by creation time as plain strings, which is what list pagination
 * (`after`, `order`) relies on; the random part makes them unguessable.
 */
export function newId(prefix: string, now = Date.now()): string {
  const time = now.toString(36).padStart(9, '0');
  const bytes = randomBytes(16);
  let rand = '';
  for (const b of bytes) rand += ALPHABET[b % 62];
  return `${prefix}-${time}${rand}`;
}

export const ID_PATTERN = /^[a-z]+-[0-9a-z]{9}[0-9A-Za-z]{16}$/;
