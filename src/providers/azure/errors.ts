/** Turns what the Azure SDK throws (RestError, socket and credential failures) into UpstreamError. */
import type { RestError } from '@azure/storage-blob';
import { isRestError } from './sdk.js';
import { UpstreamError, isRetryableStatus } from '../../core/errors.js';
import { parseRetryAfter } from '../../core/retry.js';

const RETRYABLE_NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'REQUEST_SEND_ERROR',
]);

const KEY_HINT = 'check AZURE_STORAGE_ACCOUNT_KEY (or the AccountKey of AZURE_STORAGE_CONNECTION_STRING) and AZURE_STORAGE_ACCOUNT_NAME';
const ROLE_HINT = 'the identity DefaultAzureCredential found needs the "Storage Blob Data Contributor" role on the account';

function hintFor(status: number, code: string | undefined, container: string): string {
  if (status === 403) return code === 'AuthorizationPermissionMismatch' ? ROLE_HINT : KEY_HINT;
  if (code === 'ContainerNotFound') return `create container "${container}" or set FERRY_AZURE_CREATE_CONTAINER=1`;
  if (code === 'AccountNotFound' || code === 'ResourceNotFound') return 'check AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ENDPOINT';
  return '';
}

/** `container` only sharpens the hints. */
export function toAzureError(err: unknown, container = ''): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as RestError & { details?: { errorCode?: string }; cause?: unknown };
  if (isRestError(err) && typeof e.statusCode === 'number') {
    const status = e.statusCode;
    const code = e.details?.errorCode ?? e.code;
    const firstLine = (e.message || '').split('\n')[0].trim();
    const hint = hintFor(status, code, container);
    const message = `Azure Blob Storage answered ${status}${code ? ` ${code}` : ''}${firstLine ? `: ${firstLine}` : ''}${hint ? ` (${hint})` : ''}`;
    const retryAfter = parseRetryAfter(e.response?.headers.get('retry-after'));
    return new UpstreamError(message, {
      upstreamStatus: status,
      retryable: isRetryableStatus(status),
      retryAfterMs: retryAfter,
      provider: 'azure',
    });
  }
  const code = String(e?.code ?? '');
  const text = e?.message ?? String(err);
  if (code === 'ENOTFOUND') {
    return new UpstreamError(
      `Azure Blob Storage account not found (${text}): check AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ENDPOINT`,
      { upstreamStatus: null, retryable: false, provider: 'azure' },
    );
  }
  if (/CredentialUnavailable|AuthenticationError|AggregateAuthentication/.test(e?.name ?? '')) {
    return new UpstreamError(
      `No Azure credential: without AZURE_STORAGE_ACCOUNT_KEY, DefaultAzureCredential is used and failed: ${text.split('\n')[0]}`,
      { upstreamStatus: null, retryable: false, provider: 'azure' },
    );
  }
  // A RestError without a status is a transport failure; anything else unknown is not worth retrying.
  const retryable = RETRYABLE_NETWORK.has(code) || isRestError(err);
  const what = retryable ? 'could not be reached' : 'request failed';
  return new UpstreamError(`Azure Blob Storage ${what}: ${text}`, { upstreamStatus: null, retryable: retryable, provider: 'azure' });
}

/** The SDK call's result, or null when the blob does not exist (a missing container still throws). */
export async function unlessBlobMissing<T>(call: Promise<T>): Promise<T | null> {
  try {
    return await call;
  } catch (err) {
    const e = err as RestError & { details?: { errorCode?: string } };
    if (isRestError(err) && e.statusCode === 404 && (e.details?.errorCode ?? e.code) === 'BlobNotFound') return null;
    throw err;
  }
}
