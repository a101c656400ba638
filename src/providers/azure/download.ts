/** Blob downloads as streams. */
import { PassThrough, type Readable } from 'node:stream';
import type { BlobClient } from '@azure/storage-blob';
import { UpstreamError } from '../../core/errors.js';
import type { AzureCall } from './blocks.js';
import { toAzureError } from './errors.js';

/**
 * `count` bytes of the blob from `offset` (to its end when `count` is
 * undefined), as a stream answered at once and fed as the download arrives.
 * The download is requested under the retry policy; a body cut off midway is
 * requested again from where it stopped by the SDK (maxRetryRequests).
 */
export function downloadStream(
  call: AzureCall,
  operation: string,
  blob: BlobClient,
  range: { offset: number; count?: number },
  container: string,
): Readable {
  const out = new PassThrough();
  const fail = (err: unknown) => out.destroy(toAzureError(err, container));
  call(operation, () => blob.download(range.offset, range.count, { maxRetryRequests: 5 }))
    .then((res) => {
      const body = res.readableStreamBody as Readable | undefined;
      if (!body)
        throw new UpstreamError('Azure Blob Storage answered a download without a body', { upstreamStatus: null, retryable: true });
      // A reader that gave up before the answer came leaves nothing open.
      if (out.destroyed) return void body.destroy();
      body.on('error', fail);
      out.on('close', () => body.destroy());
      body.pipe(out);
    })
    .catch(fail);
  return out;
}
