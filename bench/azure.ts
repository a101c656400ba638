/**
 * Section `azure`: a large file (default 1 GiB; BENCH_AZURE_BYTES) through Ferry to Azure Blob
 * Storage (Azurite from the npm package), against the SDK's plain `uploadData` of the same bytes
 * to the same Azurite in the same run: the worker leg's throughput ratio, and peak RSS.
 */
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from '../test/azurite.js';
import { envInt, fmtMB, fmtMs, mbps, now, round, startStack, tempDir, verdict, writeRandomFile, type Section } from './lib.js';
import { throughFerry } from './upload.js';

const CONTAINER = 'ferry-bench';
const RSS_TARGET_BYTES = 200e6;

const section: Section = {
  name: 'azure',
  title: 'one large file through Ferry to Azure Blob Storage (Azurite) vs a plain uploadData',
  async run({ scope, log }) {
    const size = envInt('BENCH_AZURE_BYTES', 1 << 30);
    const azurite = await startAzurite();
    scope.defer('stop azurite', () => azurite.stop());
    const stack = await startStack(scope, {
      env: { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString, AZURE_STORAGE_FILE_SYSTEM: CONTAINER },
    });
    const file = path.join(await tempDir(scope), 'bench-azure.mp4');
    const sha256 = await writeRandomFile(file, size);

    // The reference: the SDK's own parallel block upload, 8 MiB blocks, 4 at once, from memory.
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(`${CONTAINER}-plain`);
    await container.createIfNotExists();
    const bytes = await readFile(file);
    const t0 = now();
    await container.getBlockBlobClient('plain.bin').uploadData(bytes, { blockSize: 8 << 20, concurrency: 4 });
    const plainMs = now() - t0;
    log(`plain uploadData     ${fmtMs(plainMs).padStart(8)}  ${mbps(size, plainMs).toFixed(0)} MB/s`);

    const ferry = await throughFerry(stack, file, size, sha256, { target_storage: 'azure_storage' });
    const ratio = plainMs / ferry.workerMs;
    log(`ferry API leg        ${fmtMs(ferry.apiMs).padStart(8)}  ${mbps(size, ferry.apiMs).toFixed(0)} MB/s`);
    log(`ferry worker leg     ${fmtMs(ferry.workerMs).padStart(8)}  ${mbps(size, ferry.workerMs).toFixed(0)} MB/s`);
    log(`worker leg / plain uploadData  ${ratio.toFixed(2)}`);
    const rss = { api: stack.api.peakRss(), worker: stack.worker.peakRss() };
    log(
      `peak RSS api ${fmtMB(rss.api)}, worker ${fmtMB(rss.worker)}   target < 200 MB: ${verdict(rss.api !== null && rss.worker !== null && Math.max(rss.api, rss.worker) < RSS_TARGET_BYTES)}`,
    );
    return {
      bytes: size,
      plain_upload_data_ms: round(plainMs),
      plain_mbps: round(mbps(size, plainMs)),
      ferry_api_ms: round(ferry.apiMs),
      ferry_worker_ms: round(ferry.workerMs),
      ferry_worker_mbps: round(mbps(size, ferry.workerMs)),
      worker_vs_plain: round(ratio, 2),
      peak_rss_mb: { api: rss.api && round(rss.api / 1e6), worker: rss.worker && round(rss.worker / 1e6) },
    };
  },
};

export default section;
