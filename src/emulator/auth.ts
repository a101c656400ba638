/** API key check, worded like Google's answers. */

import type { IncomingMessage } from 'node:http';
import { RpcError } from './errors.js';
import { header } from './http.js';

/** Throws unless the request carries `expected` (x-goog-api-key header or ?key=); no-op without a key. */
export function checkApiKey(expected: string | undefined, req: IncomingMessage, url: URL): void {
  if (!expected) return;
  const given = header(req, 'x-goog-api-key') ?? url.searchParams.get('key') ?? '';
  if (!given) {
    throw new RpcError(
      403,
      "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
    );
  }
  if (given !== expected) {
    throw new RpcError(400, 'API key not valid. Please pass a valid API key.', {
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'API_KEY_INVALID',
          domain: 'googleapis.com',
          metadata: { service: 'generativelanguage.googleapis.com' },
        },
      ],
    });
  }
}
