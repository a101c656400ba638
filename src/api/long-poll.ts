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
  const ac = new AbortController();
  const onClose = () => ac.abort();
  res.on('close', onClose);
  let latest = rec;
  await deps.waiter.waitFor(
    store.topic(rec.id),
    seconds * 1000,
    async () => {
      const now = await store.get(rec.id);
      if (now) latest = now;
      return !now || isFinal(now);
    },
    AbortSignal.any([ac.signal, deps.stopping]),
    // A change to a status that is not final (progress, running) is not worth a read.
    (message) => {
      const status = statusIn(message);
      return status === null || isFinal({ ...rec, status });
    },
  );
  res.off('close', onClose);
  return latest;
}
