/**
 * Everything Ferry uses of Azure Blob Storage: built once per worker process,
 * and lazily by the API for the one read it makes (file content once the
 * staged bytes are gone). The client is built on first use, and the
 * container created (when allowed) once per process.
 */
import { PassThrough, type Readable } from 'node:stream';
import { BlobSASPermissions, SASProtocol } from '@azure/storage-blob';
import type { Config } from '../../core/config.js';
import { UpstreamError } from '../../core/errors.js';
import { upstreamCalls } from '../../core/metrics.js';
import { withRetry, type RetryPolicy } from '../../core/retry.js';
import { uploadBlocks, type BlockUploadInput, type UploadOutcome } from './blocks.js';
import { createAzureClients, type AzureClients } from './client.js';
import { toAzureError, unlessBlobMissing } from './errors.js';
import type { AzureSettings } from './settings.js';

export { blobMetadataOf, blobPathOf } from './paths.js';
export { describeMissing, missingAzureSettings } from './settings.js';
export type { UploadOutcome } from './blocks.js';

/** Allowance for clocks that disagree, on the start of a SAS. */
const SAS_CLOCK_SKEW_MS = 5 * 60_000;

const statusOf = (out: unknown) => String((out as { _response?: { status?: number } } | null)?._response?.status ?? 200);

export class AzureBlobStore {
  private built: AzureClients | null = null;
  private containerReady: Promise<void> | null = null;

  constructor(
    private readonly settings: AzureSettings,
    private readonly chunkBytes: number,
    private readonly policy: RetryPolicy,
  ) {}

  private get clients(): AzureClients {
    return (this.built ??= createAzureClients(this.settings));
  }

  private blob(path: string) {
    return this.clients.container.getBlockBlobClient(path);
  }

  /** Runs an SDK call under Ferry's retry policy, counting it in the metrics by operation and status. */
  readonly call = <T>(operation: string, fn: () => Promise<T>): Promise<T> =>
    withRetry({ provider: 'azure', operation }, this.policy, async () => {
      try {
        const out = await fn();
        upstreamCalls.inc({ provider: 'azure', operation, status: statusOf(out) });
        return out;
      } catch (err) {
        const e = toAzureError(err, this.settings.fileSystem);
        upstreamCalls.inc({ provider: 'azure', operation, status: String(e.upstreamStatus ?? 'network') });
        throw e;
      }
    });

  /** Creates the container if absent (FERRY_AZURE_CREATE_CONTAINER), once per process; a failure is tried again next time. */
  ensureContainer(): Promise<void> {
    if (!this.settings.createContainer) return Promise.resolve();
    this.containerReady ??= this.call('container.createIfNotExists', () => this.clients.container.createIfNotExists()).then(
      () => undefined,
      (err: unknown) => {
        this.containerReady = null;
        throw err;
      },
    );
    return this.containerReady;
  }

  /** `https://{account}.blob.core.windows.net/{container}/{path}` (or the custom endpoint's form), never with a query or SAS. */
  urlOf(path: string): string {
    const u = new URL(this.blob(path).url);
    u.search = '';
    return u.toString();
  }

  /** Writes the blob with resumable block staging (see blocks.ts). */
  async upload(path: string, input: BlockUploadInput): Promise<UploadOutcome> {
    await this.ensureContainer();
    return uploadBlocks(this.blob(path), this.call, this.chunkBytes, input);
  }

  /** A stream of bytes [start, end] (inclusive) of the blob, answered at once and fed as the download arrives. */
  readRange(path: string, start: number, end: number): Readable {
    const out = new PassThrough();
    const fail = (err: unknown) => out.destroy(toAzureError(err, this.settings.fileSystem));
    this.call('blob.download', () => this.blob(path).download(start, end - start + 1))
      .then((res) => {
        const body = res.readableStreamBody as Readable | undefined;
        if (!body)
          throw new UpstreamError('Azure Blob Storage answered a download without a body', { upstreamStatus: null, retryable: true });
        body.on('error', fail);
        out.on('close', () => body.destroy());
        body.pipe(out);
      })
      .catch(fail);
    return out;
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
    const blob = this.blob(path);
    const startsOn = new Date(Date.now() - SAS_CLOCK_SKEW_MS);
    const expiresOn = new Date(Date.now() + ttlMs);
    const options = {
      permissions: BlobSASPermissions.parse('r'),
      startsOn,
      expiresOn,
      protocol: blob.url.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
    };
    if (this.clients.sharedKey) return blob.generateSasUrl(options);
    const key = await this.call('service.getUserDelegationKey', () => this.clients.service.getUserDelegationKey(startsOn, expiresOn));
    return blob.generateUserDelegationSasUrl(options, key);
  }
}

export function createAzureProvider(config: Config): AzureBlobStore {
  const policy = { attempts: config.upstreamAttempts, baseMs: config.retryBaseMs, maxMs: config.retryMaxMs };
  return new AzureBlobStore(config.azure, config.uploadChunkBytes, policy);
}
