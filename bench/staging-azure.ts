/**
 * The upload section's variant with staging in Azure Blob Storage
 * (BENCH_UPLOAD_STAGING=azure): Azurite from the npm package holds the staged
 * bytes (FERRY_STAGING_CONTAINER), so the worker leg reads them from it. Its
 * reference, in the same run: a plain read of the same staged blob from the
 * same Azurite, range by range in upload-chunk-sized downloads, one after
 * another, as the SDK does it (the bytes only counted); and the same ranges
 * as one stream, for a plain copy from Azurite to the emulator.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startAzurite } from '../test/azurite.js';
import { now, type Scope } from './lib.js';

const CONTAINER = 'ferry-bench-staging';

export interface AzureStaging {
  /** Environment for the API and the worker. */
  env: Record<string, string>;
  /** Reads the staged blob `key` (`size` bytes) range by range; answers the milliseconds it took. */
  readRanges(key: string, size: number, rangeBytes: number): Promise<number>;
  /** The staged blob `key` as one stream of range downloads, one after another. */
  rangeStream(key: string, size: number, rangeBytes: number): Readable;
  /**
   * The ingest ceiling with Azurite as the store: the Azure SDK stages `file` into the same
   * container, in blocks of Ferry's size and as many at once, then it is deleted. Milliseconds.
   */
  stagePlain(file: string): Promise<number>;
}

async function* ranges(container: ContainerClient, key: string, size: number, rangeBytes: number) {
  const blob = container.getBlobClient(key);
  for (let offset = 0; offset < size; offset += rangeBytes) {
    const res = await blob.download(offset, Math.min(rangeBytes, size - offset));
    for await (const chunk of res.readableStreamBody!) yield chunk as Buffer;
  }
}

export async function startAzureStaging(scope: Scope): Promise<AzureStaging> {
  const azurite = await startAzurite();
  scope.defer('stop azurite', () => azurite.stop());
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER);
  return {
    env: { FERRY_STAGING_CONTAINER: CONTAINER, AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
    async readRanges(key, size, rangeBytes) {
      const t0 = now();
      let read = 0;
      for await (const chunk of ranges(container, key, size, rangeBytes)) read += chunk.length;
      const ms = now() - t0;
      if (read !== size) throw new Error(`plain range read: ${read} bytes of the staged blob, not ${size}`);
      return ms;
    },
    rangeStream: (key, size, rangeBytes) => Readable.from(ranges(container, key, size, rangeBytes), { objectMode: false }),
    async stagePlain(file) {
      const blob = container.getBlockBlobClient(`bench-plain-stage-${Date.now()}`);
      const t0 = now();
      await blob.uploadStream(createReadStream(file, { highWaterMark: 1 << 20 }), 4 * 1024 * 1024, 4);
      const ms = now() - t0;
      await blob.deleteIfExists();
      return ms;
    },
  };
}
