/**
 * Server-Sent Events relayed from a job's Redis Stream (domain/job-stream.ts) as the worker writes
 * them. The loop is the same for every answer shape; what each entry becomes on the wire is the
 * caller's (chat chunks, response events).
 */
import type { Request, Response } from 'express';
import { isFinalJob, type JobRecord } from '../core/records/jobs.js';
import { jobStream, type StreamEntry } from '../domain/job-stream.js';
import type { ApiDeps } from './deps.js';
import { requestLogger } from './request-log.js';

const KEEPALIVE_MS = 15_000;

export interface RelayHandlers {
  /** The first events, sent before the worker's (made from the record). */
  opening?(): void;
  /** Sends the entries; answers whether the stream has ended. */
  entries(entries: StreamEntry[]): boolean;
  /** The job ended without a final entry (its stream expired, or it failed outside a worker's hands): answer from its record. */
  ended(now: JobRecord | null): void;
  /** This API is stopping mid-stream: the last word (the job goes on). */
  stopping(): void;
}

/** Relays the stream until it ends, the client goes, or this API stops. */
export async function relayJobStream(deps: ApiDeps, req: Request, res: Response, rec: JobRecord, on: RelayHandlers): Promise<void> {
  const stream = jobStream(deps.services);
  const reader = deps.readers.take();
  let open = true;
  let reading = false;
  const interrupt = () => {
    // A client gone, or the API stopping, mid-read: the blocked read ends with its connection.
    if (reading) reader.disconnect();
  };
  res.on('close', () => {
    open = false;
    interrupt();
  });
  deps.stopping.addEventListener('abort', interrupt, { once: true });
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  res.flushHeaders();
  on.opening?.();
  let last = '0';
  try {
    while (open && !deps.stopping.aborted) {
      reading = true;
      const batch = await stream.read(reader, rec.id, last, KEEPALIVE_MS);
      reading = false;
      if (!batch) {
        const now = await deps.services.jobs.get(rec.id);
        if (!now || isFinalJob(now)) return on.ended(now);
        res.write(': keep-alive\n\n');
        continue;
      }
      last = batch.last;
      if (on.entries(batch.entries)) return;
    }
    if (open) on.stopping();
  } catch (err) {
    if (open && deps.stopping.aborted) on.stopping();
    else if (open) requestLogger(req).warn({ err: (err as Error).message, job_id: rec.id }, 'stream relay failed');
  } finally {
    deps.stopping.removeEventListener('abort', interrupt);
    deps.readers.give(reader, !reading);
    if (open) res.end();
  }
}
