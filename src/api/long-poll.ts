/** `?wait=SECONDS` long-polls: wait until a record is final (or gone), waking on its change notifications. */
import type { Response } from 'express';
import type { BaseRecord, RecordStore } from '../core/records/store.js';
import type { ApiDeps } from './deps.js';

/** The status a change message names (records publish theirs, JSON-encoded), or null. */
function statusIn(message: string): string | null {
  if (!message.startsWith('"')) return null;
  try {
    return JSON.parse(message) as string;
  } catch {
    return null;
  }
}

export async function waitUntilFinal<T extends BaseRecord>(
  deps: ApiDeps,
  store: RecordStore<T>,
  rec: T,
  isFinal: (r: T) => boolean,
  seconds: number,
  res: Response,
): Promise<T> {
  if (seconds <= 0 || isFinal(rec)) return rec;
  // A client gone, or the API stopping (the caller then answers with what it has), ends the wait.
  const ac = new AbortController();
  const stop = () => ac.abort();
  res.on('close', stop);
  deps.stopping.addEventListener('abort', stop);
  if (deps.stopping.aborted) stop();
  let latest = rec;
  try {
    await deps.waiter.waitFor(
      store.topic(rec.id),
      seconds * 1000,
      async () => {
        const now = await store.get(rec.id);
        if (now) latest = now;
        return !now || isFinal(now);
      },
      ac.signal,
      // A change to a status that is not final (progress, running) is not worth a read.
      (message) => {
        const status = statusIn(message);
        return status === null || isFinal({ ...rec, status });
      },
    );
  } finally {
    res.off('close', stop);
    deps.stopping.removeEventListener('abort', stop);
  }
  return latest;
}
