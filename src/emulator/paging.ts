/** Page sizes and page tokens of the list calls (files.list, batches.list). */

import { invalidArgument } from './errors.js';

const DEFAULT_PAGE_SIZE = 10;
const MAX_PAGE_SIZE = 100;

export function parsePageSize(raw: string | null): number {
  if (raw === null || raw === '') return DEFAULT_PAGE_SIZE;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw invalidArgument(`Invalid value at 'page_size' (TYPE_INT32), "${raw}"`);
  if (n === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(n, MAX_PAGE_SIZE);
}

export const encodePageToken = (seq: number) => Buffer.from(`seq:${seq}`).toString('base64url');

export function decodePageToken(token: string): number {
  const match = /^seq:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!match) throw invalidArgument('Invalid page token.');
  return Number(match[1]);
}
