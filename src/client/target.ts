/**
 * Which Ferry a client command talks to, and with which key: `--base-url` or FERRY_BASE_URL
 * (default http://127.0.0.1:8080; with or without `/v1`); `--api-key` or FERRY_API_KEY, else the
 * development key `ferry all` keeps in ./data/dev-api-key (FERRY_DATA_DIR).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export class UsageError extends Error {}

export interface Target {
  baseUrl: string;
  apiKey: string;
}

function devKey(): string | undefined {
  try {
    return readFileSync(path.join(process.env.FERRY_DATA_DIR ?? './data', 'dev-api-key'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function target(opts: { baseUrl?: string; apiKey?: string }): Target {
  const base = (opts.baseUrl ?? process.env.FERRY_BASE_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '').replace(/\/v1$/, '');
  try {
    new URL(base);
  } catch {
    throw new UsageError(`not a URL: "${base}" (--base-url or FERRY_BASE_URL)`);
  }
  const apiKey = opts.apiKey ?? process.env.FERRY_API_KEY ?? devKey();
  if (!apiKey) throw new UsageError('no API key: pass --api-key or set FERRY_API_KEY');
  return { baseUrl: base, apiKey };
}
