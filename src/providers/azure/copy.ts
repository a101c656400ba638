/**
 * Server-side copy of a blob of the same account (the staged bytes, when
 * staging is a blob container): the service moves the bytes, none pass
 * through the worker. Up to `syncMaxBytes` (256 MiB, Copy Blob From URL's
 * limit) one synchronous request; larger blobs an asynchronous Copy Blob,
 * polled until it ends. Either way the source is read through a short-lived
 * read-only SAS, which works whatever the account's credential (account key
 * or Entra ID, where the service cannot take the caller's own authorization
 * for the source).
 *
 * Safe to repeat: a blob that already holds the file (size, metadata and
 * type) is left alone, and a copy still pending from an earlier attempt, in
 * any process, is waited for rather than started again.
 */
import type { BlobBeginCopyFromUrlPollState, BlobGetPropertiesResponse, BlockBlobClient } from '@azure/storage-blob';
import { UpstreamError } from '../../core/errors.js';
import { bytesUploaded } from '../../core/metrics.js';
import { sleep } from '../../core/retry.js';
import type { AzureCall, UploadOutcome } from './blocks.js';
import { unlessBlobMissing } from './errors.js';

export const SYNC_COPY_MAX_BYTES = 256 * 1024 * 1024;
/** How long the source SAS lives: a synchronous copy ends within its request; an asynchronous one may queue a while. */
const SYNC_SOURCE_TTL_MS = 30 * 60_000;
const ASYNC_SOURCE_TTL_MS = 24 * 3600_000;
const POLL_FIRST_MS = 250;
const POLL_MAX_MS = 5000;

export interface CopyInput {
  size: number;
  contentType: string;
  metadata: Record<string, string>;
  /** A read-only URL of the source blob, valid for `ttlMs`. */
  sourceUrl: (ttlMs: number) => Promise<string>;
  /** Called with the bytes copied so far; answering false stops the copy (the file was deleted). */
  onProgress: (bytesCopied: number) => Promise<boolean>;
}

/** The blob already holds the file: an earlier attempt copied it and died before saying so. */
function holds(props: BlobGetPropertiesResponse | null, input: CopyInput): boolean {
  const meta = props?.metadata ?? {};
  return (
    props?.contentLength === input.size &&
    props.contentType === input.contentType &&
    (props.copyStatus === undefined || props.copyStatus === 'success') &&
    meta.ferry_file_id === input.metadata.ferry_file_id &&
    meta.sha256 === input.metadata.sha256
  );
}

const pathOf = (url: string | undefined) => (url ? new URL(url).pathname : null);

export async function copyBlob(blob: BlockBlobClient, call: AzureCall, syncMaxBytes: number, input: CopyInput): Promise<UploadOutcome> {
  const props = await call('blob.getProperties', () => unlessBlobMissing(blob.getProperties()));
  if (holds(props, input)) return (await input.onProgress(input.size)) ? 'committed' : 'aborted';
  if (!(await input.onProgress(0))) return 'aborted';

  if (input.size <= syncMaxBytes && props?.copyStatus !== 'pending') {
    const url = await input.sourceUrl(SYNC_SOURCE_TTL_MS);
    await call('blob.syncCopyFromURL', () => blob.syncCopyFromURL(url, { metadata: input.metadata }));
  } else if (!(await copyAsync(blob, call, props, input))) return 'aborted';

  // A copy takes the source's properties: the type is the file's, set once the bytes are there.
  await call('blob.setHTTPHeaders', () => blob.setHTTPHeaders({ blobContentType: input.contentType }));
  bytesUploaded.inc({ storage: 'azure_storage' }, input.size);
  return (await input.onProgress(input.size)) ? 'committed' : 'aborted';
}

/** Starts (or takes up) an asynchronous copy and waits for it; false when the file was deleted meanwhile (the copy is aborted). */
async function copyAsync(
  blob: BlockBlobClient,
  call: AzureCall,
  props: BlobGetPropertiesResponse | null,
  input: CopyInput,
): Promise<boolean> {
  const url = await input.sourceUrl(ASYNC_SOURCE_TTL_MS);
  let copyId = props?.copyStatus === 'pending' ? props.copyId : undefined;
  if (copyId && pathOf(props?.copySource) !== pathOf(url)) {
    // Pending from another source: it is not this file's copy.
    await call('blob.abortCopyFromURL', () => blob.abortCopyFromURL(copyId!)).catch(() => {});
    copyId = undefined;
  }
  if (!copyId) {
    const poller = await call('blob.startCopyFromURL', () => blob.beginCopyFromURL(url, { metadata: input.metadata }));
    copyId = (poller.getOperationState() as BlobBeginCopyFromUrlPollState).copyId;
  }
  for (let wait = POLL_FIRST_MS; ; wait = Math.min(2 * wait, POLL_MAX_MS)) {
    const now = await call('blob.getProperties', () => blob.getProperties());
    if (copyId && now.copyId !== copyId) {
      throw new UpstreamError('Another copy replaced this one on the blob', { upstreamStatus: null, retryable: true, provider: 'azure' });
    }
    if (now.copyStatus === 'success' || now.copyStatus === undefined) return true;
    if (now.copyStatus !== 'pending') {
      const why = now.copyStatusDescription ? `: ${now.copyStatusDescription}` : '';
      throw new UpstreamError(`Azure Blob Storage ended the copy of the staged bytes ${now.copyStatus}${why}`, {
        upstreamStatus: null,
        retryable: true,
        provider: 'azure',
      });
    }
    const copied = Number(/^(\d+)\//.exec(now.copyProgress ?? '')?.[1] ?? 0);
    if (!(await input.onProgress(copied))) {
      await call('blob.abortCopyFromURL', () => blob.abortCopyFromURL(now.copyId!)).catch(() => {});
      return false;
    }
    await sleep(wait);
  }
}
