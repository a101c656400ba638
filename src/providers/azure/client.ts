/** The Blob service and container clients, built from Ferry's Azure settings. */
import type { BlobClient, BlobServiceClient, ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { UpstreamError } from '../../core/errors.js';
import type { AzureCall } from './blocks.js';
import type { AzureSettings } from './settings.js';
import { identitySdk, storageSdk } from './sdk.js';

export interface AzureClients {
  service: BlobServiceClient;
  container: ContainerClient;
  /** Present when requests are signed with an account key (service SAS); otherwise SAS needs a user delegation key. */
  sharedKey: StorageSharedKeyCredential | null;
}

/** Allowance for clocks that disagree, on the start of a SAS. */
const SAS_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * A connection string wins when set (Azurite, other clouds); otherwise the
 * account URL (AZURE_STORAGE_ENDPOINT, or https://{account}.blob.core.windows.net)
 * with the account key, or DefaultAzureCredential without one.
 * The SDK's own retries are off: Ferry's retry policy (core/retry.ts) governs every call.
 * `container` defaults to AZURE_STORAGE_FILE_SYSTEM; staging names its own.
 */
export function createAzureClients(azure: AzureSettings, container = azure.fileSystem!): AzureClients {
  const { BlobServiceClient, StorageSharedKeyCredential } = storageSdk();
  const options = { retryOptions: { maxTries: 1 } };
  let service: BlobServiceClient;
  if (azure.connectionString) {
    try {
      service = BlobServiceClient.fromConnectionString(azure.connectionString, options);
    } catch (err) {
      throw new UpstreamError(`AZURE_STORAGE_CONNECTION_STRING is not usable: ${(err as Error).message}`, {
        upstreamStatus: null,
        retryable: false,
      });
    }
  } else {
    const url = azure.endpoint ?? `https://${azure.accountName}.blob.core.windows.net`;
    const credential = azure.accountKey
      ? new StorageSharedKeyCredential(azure.accountName!, azure.accountKey)
      : new (identitySdk().DefaultAzureCredential)();
    service = new BlobServiceClient(url, credential, options);
  }
  const sharedKey = service.credential instanceof StorageSharedKeyCredential ? service.credential : null;
  return { service, container: service.getContainerClient(container), sharedKey };
}

/**
 * The account a service client reaches, as its name and host: blobs of two
 * clients with the same account can be copied from one to the other by the
 * service itself.
 */
export function accountOf(service: BlobServiceClient): string {
  return `${service.accountName}@${new URL(service.url).host}`;
}

/** A URL without its query: a connection string's SAS must never reach a log or a banner. */
export function withoutQuery(url: string): string {
  const u = new URL(url);
  u.search = '';
  return u.toString();
}

/** Creates the container if absent (when `allowed`), once per process; a failure is tried again next time. */
export function containerCreator(allowed: boolean, call: AzureCall, container: () => ContainerClient): () => Promise<void> {
  let ready: Promise<void> | null = null;
  return () => {
    if (!allowed) return Promise.resolve();
    ready ??= call('container.createIfNotExists', () => container().createIfNotExists()).then(
      () => undefined,
      (err: unknown) => {
        ready = null;
        throw err;
      },
    );
    return ready;
  };
}

/**
 * A read-only SAS URL for `blob`, valid for `ttlMs`: signed with the account
 * key when there is one, otherwise with a user delegation key obtained
 * through DefaultAzureCredential.
 */
export async function signedReadUrlOf(clients: AzureClients, blob: BlobClient, ttlMs: number, call: AzureCall): Promise<string> {
  const { BlobSASPermissions, SASProtocol } = storageSdk();
  const startsOn = new Date(Date.now() - SAS_CLOCK_SKEW_MS);
  const expiresOn = new Date(Date.now() + ttlMs);
  const options = {
    permissions: BlobSASPermissions.parse('r'),
    startsOn,
    expiresOn,
    protocol: blob.url.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
  };
  if (clients.sharedKey) return blob.generateSasUrl(options);
  const key = await call('service.getUserDelegationKey', () => clients.service.getUserDelegationKey(startsOn, expiresOn));
  return blob.generateUserDelegationSasUrl(options, key);
}
