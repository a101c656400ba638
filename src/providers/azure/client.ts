/** The Blob service and container clients, built from Ferry's Azure settings. */
import { DefaultAzureCredential } from '@azure/identity';
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { UpstreamError } from '../../core/errors.js';
import type { AzureSettings } from './settings.js';

export interface AzureClients {
  service: BlobServiceClient;
  container: ContainerClient;
  /** Present when requests are signed with an account key (service SAS); otherwise SAS needs a user delegation key. */
  sharedKey: StorageSharedKeyCredential | null;
}

/**
 * A connection string wins when set (Azurite, other clouds); otherwise the
 * account URL (AZURE_STORAGE_ENDPOINT, or https://{account}.blob.core.windows.net)
 * with the account key, or DefaultAzureCredential without one.
 * The SDK's own retries are off: Ferry's retry policy (core/retry.ts) governs every call.
 */
export function createAzureClients(azure: AzureSettings): AzureClients {
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
      : new DefaultAzureCredential();
    service = new BlobServiceClient(url, credential, options);
  }
  const sharedKey = service.credential instanceof StorageSharedKeyCredential ? service.credential : null;
  return { service, container: service.getContainerClient(azure.fileSystem!), sharedKey };
}
