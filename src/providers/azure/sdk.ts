/**
 * The Azure SDK, loaded on first use: most processes never talk to Azure (no Azure settings, local
 * staging), and loading its modules was about a third of a start-up's time. Loaded with `require`
 * so that building a client stays synchronous; every runtime use of the SDK goes through here.
 */
import { createRequire } from 'node:module';
import type { RestError } from '@azure/storage-blob';

const load = createRequire(import.meta.url);

export const storageSdk = (): typeof import('@azure/storage-blob') => load('@azure/storage-blob');
export const identitySdk = (): typeof import('@azure/identity') => load('@azure/identity');

/** Whether the SDK threw it (any failed request), told without loading the SDK to ask. */
export function isRestError(err: unknown): err is RestError {
  return err instanceof Error && err.name === 'RestError';
}
