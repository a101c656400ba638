/**
 * Resumable block blob upload.
 *
 * The SDK's `uploadStream` / `uploadFile` pick random block ids, so an attempt
 * that dies cannot be resumed: a new attempt cannot tell which blocks were
 * already staged and sends everything again. Here block ids are derived from
 * the chunk index (fixed length, as Azure requires within one blob): every
 * attempt asks the blob for its uncommitted blocks, stages only those it
 * lacks, a few at a time, and commits the full list.
 */
import type { Readable } from 'node:stream';
import type { BlockBlobClient } from '@azure/storage-blob';
import { bytesUploaded } from '../../core/metrics.js';
import { unlessBlobMissing } from './errors.js';

/** Blocks staged concurrently for one blob. */
export const BLOCKS_IN_FLIGHT = 4;

export interface Block {
  id: string;
  start: number;
  /** Exclusive. */
  end: number;
}

export interface BlockUploadInput {
  size: number;
  contentType: string;
  metadata: Record<string, string>;
  /** Bytes [start, end] inclusive of the source. */
  source: (start: number, end: number) => Readable;
  /** Called with the bytes staged so far, in order; answering false stops the upload (the file was deleted). */
  onProgress: (bytesStaged: number) => Promise<boolean>;
}

export type UploadOutcome = 'committed' | 'aborted';

/** Runs an SDK call under the provider's retry policy and metrics. */
export type AzureCall = <T>(operation: string, fn: () => Promise<T>) => Promise<T>;

/** base64 of "ferry-block-NNNNNN": the same length for every index below a million (a blob holds at most 50,000 blocks). */
export function blockId(index: number): string {
  return Buffer.from(`ferry-block-${String(index).padStart(6, '0')}`).toString('base64');
}

export function planBlocks(size: number, chunkBytes: number): Block[] {
  const blocks: Block[] = [];
  for (let start = 0, i = 0; start < size; start += chunkBytes, i++) {
    blocks.push({ id: blockId(i), start, end: Math.min(start + chunkBytes, size) });
  }
  return blocks;
}

const lengthOf = (b: Block) => b.end - b.start;

/** Runs `fn` over `items` with at most `width` at once; stops taking new items after a failure or when `stopped()`. */
async function runPool<T>(items: T[], width: number, fn: (item: T) => Promise<void>, stopped: () => boolean): Promise<void> {
  let next = 0;
  let failed = false;
  let failure: unknown;
  const lane = async () => {
    while (!failed && !stopped() && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        if (!failed) [failed, failure] = [true, err];
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  if (failed) throw failure;
}

export async function uploadBlocks(
  blob: BlockBlobClient,
  call: AzureCall,
  chunkBytes: number,
  input: BlockUploadInput,
): Promise<UploadOutcome> {
  // An earlier attempt may have committed and died before saying so.
  const props = await call('blob.getProperties', () => unlessBlobMissing(blob.getProperties()));
  const meta = props?.metadata ?? {};
  if (props?.contentLength === input.size && meta.ferry_file_id === input.metadata.ferry_file_id && meta.sha256 === input.metadata.sha256) {
    return (await input.onProgress(input.size)) ? 'committed' : 'aborted';
  }

  const plan = planBlocks(input.size, chunkBytes);
  const list = await call('blob.getBlockList', () => unlessBlobMissing(blob.getBlockList('uncommitted')));
  const staged = new Map((list?.uncommittedBlocks ?? []).map((b) => [b.name, b.size]));
  const missing = plan.filter((b) => staged.get(b.id) !== lengthOf(b));

  let done = input.size - missing.reduce((n, b) => n + lengthOf(b), 0);
  let alive = await input.onProgress(done);
  let reports = Promise.resolve();
  await runPool(
    missing,
    BLOCKS_IN_FLIGHT,
    async (b) => {
      await call('blob.stageBlock', () => blob.stageBlock(b.id, () => input.source(b.start, b.end - 1), lengthOf(b)));
      bytesUploaded.inc({ storage: 'azure_storage' }, lengthOf(b));
      done += lengthOf(b);
      const now = done;
      reports = reports.then(async () => {
        if (alive && !(await input.onProgress(now))) alive = false;
      });
      await reports;
    },
    () => !alive,
  );
  if (!alive) return 'aborted';

  await call('blob.commitBlockList', () =>
    blob.commitBlockList(
      plan.map((b) => b.id),
      { blobHTTPHeaders: { blobContentType: input.contentType }, metadata: input.metadata },
    ),
  );
  return 'committed';
}
