/**
 * Staged bytes in an Azure Blob container (FERRY_STAGING_CONTAINER) instead
 * of a local directory, so that API and worker processes on different
 * machines share them through the storage account as they share Redis. Same
 * account and credential as the Azure provider (AZURE_STORAGE_*); one block
 * blob per staging key.
 *
 * Writes stream: the source is cut into blocks of a few MiB, a few staged at
 * once, hashed and counted on the way, and the block list is committed at the
 * end. Memory stays at the blocks in flight whatever the file's size, and a
 * write that fails before its commit leaves nothing visible (Azure discards
 * uncommitted blocks); one that fails at or after its commit deletes the blob.
 */
import { retryPolicy } from '../../core/attempts.js';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlockBlobClient, RestError } from '@azure/storage-blob';
import { isRestError } from './sdk.js';
import type { Config } from '../../core/config.js';
import type { RetryPolicy } from '../../core/retry.js';
import { ByteTally, holdEarlyErrors, type SequentialReader, type StagedObject, type StagingStore } from '../../core/staging.js';
import type { AzureCall } from './blocks.js';
import { azureCall } from './call.js';
import { accountOf, containerCreator, createAzureClients, signedReadUrlOf, withoutQuery, type AzureClients } from './client.js';
import { downloadStream } from './download.js';
import type { AzureSettings } from './settings.js';
import { BlobReader } from './staging-reader.js';

const MIB = 1024 * 1024;

export interface BlobStagingOptions {
  /** Bytes of each staged block (the last one may be shorter). */
  blockBytes?: number;
  /** Blocks of one write being staged at once. */
  blocksInFlight?: number;
  /**
   * Block buffers of all the writes of this store together: parts of an upload arrive in parallel,
   * and each write taking `blocksInFlight` of its own would grow the process with every one.
   */
  blocksInProcess?: number;
  /** Download size of a sequential reader. */
  readSegmentBytes?: number;
  /** Segments a sequential reader downloads ahead of the one being read. */
  readSegmentsAhead?: number;
}

const DEFAULTS: Required<BlobStagingOptions> = {
  blockBytes: 4 * MIB,
  blocksInFlight: 4,
  blocksInProcess: 6,
  readSegmentBytes: 8 * MIB,
  readSegmentsAhead: 1,
};

/** Errors that mean the blob is not there (its container neither): absent, as a missing file is for the local store. */
function isAbsent(err: unknown): boolean {
  const e = err as RestError & { details?: { errorCode?: string } };
  const code = e?.details?.errorCode ?? e?.code;
  return isRestError(err) && e.statusCode === 404 && (code === 'BlobNotFound' || code === 'ContainerNotFound');
}

async function unlessAbsent<T>(call: Promise<T>): Promise<T | null> {
  try {
    return await call;
  } catch (err) {
    if (isAbsent(err)) return null;
    throw err;
  }
}

export class BlobStagingStore implements StagingStore {
  private built: AzureClients | null = null;
  private readonly call: AzureCall;
  private readonly ensureContainer: () => Promise<void>;
  private readonly opts: Required<BlobStagingOptions>;
  private readonly buffers: BlockBuffers;

  constructor(
    private readonly settings: AzureSettings,
    readonly container: string,
    policy: RetryPolicy,
    opts: BlobStagingOptions = {},
  ) {
    this.opts = { ...DEFAULTS, ...opts };
    this.buffers = new BlockBuffers(this.opts.blockBytes, this.opts.blocksInProcess);
    this.call = azureCall(policy, container);
    this.ensureContainer = containerCreator(settings.createContainer, this.call, () => this.clients.container);
  }

  private get clients(): AzureClients {
    return (this.built ??= createAzureClients(this.settings, this.container));
  }

  private blob(key: string): BlockBlobClient {
    if (!/^[A-Za-z0-9._-]+$/.test(key)) throw new Error(`invalid staging key ${key}`);
    return this.clients.container.getBlockBlobClient(key);
  }

  /** Block buffers this store has allocated, all writes together (at most `blocksInProcess`). */
  get blockBuffers(): number {
    return this.buffers.allocated;
  }

  /** The account the container is in (see accountOf): the Azure provider copies from it server-side when it is its own. */
  get account(): string {
    return accountOf(this.clients.service);
  }

  /** The container's URL (no query, so no SAS), for the start-up banner. */
  get location(): string {
    return withoutQuery(this.clients.container.url);
  }

  async write(key: string, source: Readable): Promise<StagedObject> {
    holdEarlyErrors(source);
    const blob = this.blob(key);
    const blocks = new BlockWriter(blob, this.call, this.opts, this.buffers);
    try {
      await this.ensureContainer();
      for await (const chunk of source) await blocks.add(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
      await blocks.flush();
    } catch (err) {
      source.destroy();
      await blocks.settle();
      throw err;
    }
    try {
      await this.call('staging.commitBlockList', () => blob.commitBlockList(blocks.ids));
    } catch (err) {
      // The commit may have taken effect with its answer lost: nothing half-written stays visible.
      await this.call('staging.delete', () => blob.deleteIfExists()).catch(() => {});
      throw err;
    }
    return blocks.tally.result();
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    const span = range ? { offset: range.start, count: range.end - range.start + 1 } : { offset: 0 };
    return downloadStream(this.call, 'staging.download', this.blob(key), span, this.container);
  }

  reader(key: string, buffer: Buffer): SequentialReader {
    const blob = this.blob(key);
    const source = {
      name: key,
      size: () => this.size(key),
      open: async (offset: number, count: number) => downloadStream(this.call, 'staging.download', blob, { offset, count }, this.container),
    };
    return new BlobReader(source, buffer, this.opts.readSegmentBytes, this.opts.readSegmentsAhead);
  }

  async size(key: string): Promise<number | null> {
    const blob = this.blob(key);
    const props = await this.call('staging.getProperties', () => unlessAbsent(blob.getProperties()));
    return props?.contentLength ?? null;
  }

  async delete(key: string): Promise<void> {
    const blob = this.blob(key);
    await this.call('staging.delete', () => unlessAbsent(blob.deleteIfExists()));
  }

  /** A server-side copy source (core/staging.ts), when the target is this container's own account. */
  copySourceIn(account: string, key: string): ((ttlMs: number) => Promise<string>) | null {
    return account === this.account ? (ttlMs) => this.copySourceUrl(key, ttlMs) : null;
  }

  /**
   * A URL through which the service itself reads the staged blob, for a server-side copy out of
   * it: a read-only SAS valid for `ttlMs`, or, when the connection string authenticates with a
   * SAS of its own (no key to sign with), the blob's URL under that SAS, which only ever goes back
   * to the same account.
   */
  private copySourceUrl(key: string, ttlMs: number): Promise<string> {
    const blob = this.blob(key);
    if (!this.clients.sharedKey && new URL(blob.url).searchParams.has('sig')) return Promise.resolve(blob.url);
    return signedReadUrlOf(this.clients, blob, ttlMs, this.call);
  }
}

/**
 * The block buffers of one store, shared by its writes: at most `limit` exist, and a write that
 * needs one when all are staging waits (its source with it), so concurrent writes hold the same
 * memory as a few. Buffers are used again rather than allocated (and faulted in) every few MiB.
 */
class BlockBuffers {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<(b: Buffer) => void> = [];
  private made = 0;

  constructor(
    private readonly bytes: number,
    private readonly limit: number,
  ) {}

  /** Buffers allocated so far (never more than the limit). */
  get allocated(): number {
    return this.made;
  }

  take(): Promise<Buffer> {
    const ready = this.free.pop();
    if (ready) return Promise.resolve(ready);
    if (this.made < this.limit) {
      this.made += 1;
      return Promise.resolve(Buffer.allocUnsafeSlow(this.bytes));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(buffer: Buffer): void {
    const next = this.waiting.shift();
    if (next) next(buffer);
    else this.free.push(buffer);
  }
}

/**
 * The blocks of one write: bytes are copied into a buffer of the store as they come, and a full
 * buffer is staged while the next fills; taking a buffer waits while `blocksInFlight` of this
 * write, or all the store's buffers, are in use. No piece of the source is held once copied, so
 * a write holds only the store's buffers. Block ids carry a random tag of this write, so two
 * writes of the same key never mix their blocks.
 */
class BlockWriter {
  readonly ids: string[] = [];
  readonly tally = new ByteTally();
  private readonly tag = randomBytes(4).toString('hex');
  private current: Buffer | null = null;
  private filled = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { err: unknown } | null = null;

  constructor(
    private readonly blob: BlockBlobClient,
    private readonly call: AzureCall,
    private readonly opts: Required<BlobStagingOptions>,
    private readonly buffers: BlockBuffers,
  ) {}

  async add(chunk: Buffer): Promise<void> {
    this.tally.add(chunk);
    for (let at = 0; at < chunk.length;) {
      const into = this.current ?? (this.current = await this.nextBuffer());
      const copied = chunk.copy(into, this.filled, at);
      this.filled += copied;
      at += copied;
      if (this.filled === into.length) this.stage();
    }
  }

  /** Stages what is gathered and waits for every block. */
  async flush(): Promise<void> {
    if (this.filled > 0) this.stage();
    await this.settle();
    if (this.failure) throw this.failure.err;
  }

  /** Waits for the blocks in flight, whatever their outcome; a buffer still filling goes back. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    if (this.current) this.buffers.give(this.current);
    this.current = null;
  }

  private async nextBuffer(): Promise<Buffer> {
    while (this.inFlight.size >= this.opts.blocksInFlight && !this.failure) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure.err;
    return this.buffers.take();
  }

  private stage(): void {
    const buffer = this.current!;
    const body = buffer.subarray(0, this.filled);
    this.current = null;
    this.filled = 0;
    // The same length for every index below a million (a blob holds at most 50,000 blocks), as Azure requires.
    const id = Buffer.from(`${this.tag}-${String(this.ids.length).padStart(6, '0')}`).toString('base64');
    this.ids.push(id);
    const staged: Promise<void> = this.call('staging.stageBlock', () => this.blob.stageBlock(id, body, body.length))
      .then(
        () => {},
        (err: unknown) => void (this.failure ??= { err }),
      )
      .finally(() => {
        this.buffers.give(buffer);
        this.inFlight.delete(staged);
      });
    this.inFlight.add(staged);
  }
}

export function createBlobStagingStore(config: Config, opts?: BlobStagingOptions): BlobStagingStore {
  if (!config.stagingContainer) throw new Error('FERRY_STAGING_CONTAINER is not set');
  const policy = retryPolicy(config);
  return new BlobStagingStore(config.azure, config.stagingContainer, policy, opts);
}
