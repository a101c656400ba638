/**
 * Everything Ferry uses of Azure Blob Storage: built once per worker process,
 * and lazily by the API for the one read it makes (file content once the
 * staged bytes are gone). The client is built on first use, and the
 * container created (when allowed) once per process.
 */
import { retryPolicy } from '../../core/attempts.js';
import type { Readable } from 'node:stream';
import type { Config } from '../../core/config.js';
import type { RetryPolicy } from '../../core/retry.js';
import { uploadBlocks, type AzureCall, type BlockUploadInput, type UploadOutcome } from './blocks.js';
import { azureCall } from './call.js';
import { accountOf, containerCreator, createAzureClients, signedReadUrlOf, withoutQuery, type AzureClients } from './client.js';
import { copyBlob, SYNC_COPY_MAX_BYTES, type CopyInput } from './copy.js';
import { downloadStream } from './download.js';
import { unlessBlobMissing } from './errors.js';
import type { AzureSettings } from './settings.js';

export { blobMetadataOf, blobPathOf } from './paths.js';
export { describeMissing, missingAzureSettings } from './settings.js';
export type { UploadOutcome } from './blocks.js';
export type { CopyInput } from './copy.js';

export class AzureBlobStore {
  private built: AzureClients | null = null;
  /** Runs an SDK call under Ferry's retry policy, counting it in the metrics by operation and status. */
  readonly call: AzureCall;
  /** Creates the container if absent (FERRY_AZURE_CREATE_CONTAINER), once per process; a failure is tried again next time. */
  readonly ensureContainer: () => Promise<void>;
  /** The largest blob copied with one synchronous request (Copy Blob From URL's limit); larger ones are copied asynchronously. */
  syncCopyMaxBytes = SYNC_COPY_MAX_BYTES;

  constructor(
    private readonly settings: AzureSettings,
    private readonly chunkBytes: number,
    policy: RetryPolicy,
  ) {
    this.call = azureCall(policy, settings.fileSystem);
    this.ensureContainer = containerCreator(settings.createContainer, this.call, () => this.clients.container);
  }

  private get clients(): AzureClients {
    return (this.built ??= createAzureClients(this.settings));
  }

  private blob(path: string) {
    return this.clients.container.getBlockBlobClient(path);
  }

  /** The account the container is in (see accountOf): a blob of the same account can be copied in server-side. */
  get account(): string {
    return accountOf(this.clients.service);
  }

  /** `https://{account}.blob.core.windows.net/{container}/{path}` (or the custom endpoint's form), never with a query or SAS. */
  urlOf(path: string): string {
    return withoutQuery(this.blob(path).url);
  }

  /** Writes the blob with resumable block staging (see blocks.ts). */
  async upload(path: string, input: BlockUploadInput): Promise<UploadOutcome> {
    await this.ensureContainer();
    return uploadBlocks(this.blob(path), this.call, this.chunkBytes, input);
  }

  /** Writes the blob as a server-side copy of a blob in the same account (see copy.ts). */
  async copy(path: string, input: CopyInput): Promise<UploadOutcome> {
    await this.ensureContainer();
    return copyBlob(this.blob(path), this.call, this.syncCopyMaxBytes, input);
  }

  /** A stream of bytes [start, end] (inclusive) of the blob, answered at once and fed as the download arrives. */
  readRange(path: string, start: number, end: number): Readable {
    return downloadStream(
      this.call,
      'blob.download',
      this.blob(path),
      { offset: start, count: end - start + 1 },
      this.settings.fileSystem ?? '',
    );
  }

  /** The whole blob as a stream with its length, or null when the blob does not exist. */
  async open(path: string): Promise<{ stream: Readable; length: number } | null> {
    const res = await this.call('blob.download', () => unlessBlobMissing(this.blob(path).download(0)));
    if (!res?.readableStreamBody) return null;
    return { stream: res.readableStreamBody as Readable, length: res.contentLength ?? 0 };
  }

  /** Deletes the blob; one already gone counts as deleted. */
  async delete(path: string): Promise<void> {
    await this.call('blob.delete', () => this.blob(path).deleteIfExists());
  }

  /**
   * A read-only SAS URL for the blob, valid for `ttlMs`: signed with the
   * account key when there is one, otherwise with a user delegation key
   * obtained through DefaultAzureCredential.
   */
  async signedReadUrl(path: string, ttlMs: number): Promise<string> {
    return signedReadUrlOf(this.clients, this.blob(path), ttlMs, this.call);
  }
}

export function createAzureProvider(config: Config): AzureBlobStore {
  const policy = retryPolicy(config);
  return new AzureBlobStore(config.azure, config.uploadChunkBytes, policy);
}
