/**
 * Long-polls. `?wait=SECONDS` waits until a record is final (or gone), waking on its change
 * notifications; with `If-None-Match`, until what is asked for changes at all (the console's live pages).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Request, Response } from 'express';
import type { BaseRecord, RecordStore } from '../core/records/store.js';
import type { ApiDeps } from './deps.js';
import { waitSeconds } from './params.js';

/** The status a change message names (records publish theirs, JSON-encoded), or null. */
function statusIn(message: string): string | null {
  if (!message.startsWith('"')) return null;
  try {
    return JSON.parse(message) as string;
  } catch {
    return null;
  }
}

/**
 * A long-poll begins: its request is marked as one (the request log), and its signal aborts when
 * the client goes or the API stops (the caller then answers with what it has). `release()` when done.
 */
function holdRequest(deps: ApiDeps, res: Response): { signal: AbortSignal; release: () => void } {
  res.locals.longPoll = true;
  const ac = new AbortController();
  const stop = () => ac.abort();
  res.on('close', stop);
  deps.stopping.addEventListener('abort', stop);
  if (deps.stopping.aborted) stop();
  return {
    signal: ac.signal,
    release: () => {
      res.off('close', stop);
      deps.stopping.removeEventListener('abort', stop);
    },
  };
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
  const held = holdRequest(deps, res);
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
      held.signal,
      // A change to a status that is not final (progress, running) is not worth a read.
      (message) => {
        const status = statusIn(message);
        return status === null || isFinal({ ...rec, status });
      },
    );
  } finally {
    held.release();
  }
  return latest;
}

/** Whether the request holds a version of what it asks for (`If-None-Match`): a conditional long-poll. */
export const isConditional = (req: Request) => typeof req.headers['if-none-match'] === 'string';

const etagOf = (body: unknown) => `"${createHash('sha1').update(JSON.stringify(body)).digest('base64url')}"`;

/**
 * Whether `If-None-Match` names this version: `*`, or one of its comma-separated tags, weak or
 * strong alike (a compressing proxy makes Ferry's tag weak, `W/"…"`, on its way to the client).
 */
function holds(header: string | undefined, tag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const held = t.trim().replace(/^W\//, '');
    return held === '*' || held === tag;
  });
}

/**
 * How often a conditional long-poll looks again: every second (a batch's counts change without a
 * notification), or, when looking is slow (a long list), ten times as long as a look took, so
 * that waiting never spends more than a tenth of the time reading.
 */
const LOOK_AGAIN_MS = 1000;
const READING_SHARE = 10;

/**
 * Answers `render()` with its ETag. A request holding that version (`If-None-Match`) with
 * `?wait=SECONDS` is answered once what it asks for differs from it, looked at every second, or
 * with 304 Not Modified when the wait runs out first: a page stays current with one request
 * open, and nothing is sent while nothing changes. Without `wait`, an unchanged answer is 304 at once.
 */
export async function answerWhenChanged(deps: ApiDeps, req: Request, res: Response, render: () => Promise<unknown>): Promise<void> {
  const version = req.headers['if-none-match'];
  const seconds = waitSeconds(req);
  const deadline = Date.now() + seconds * 1000;
  // Held only when it may wait: a plain GET is an ordinary request.
  const held = version && seconds > 0 ? holdRequest(deps, res) : null;
  try {
    for (;;) {
      const started = Date.now();
      const body = await render();
      const tag = etagOf(body);
      const unchanged = holds(version, tag);
      const left = deadline - Date.now();
      if (!unchanged || left <= 0 || !held || held.signal.aborted) {
        res.setHeader('ETag', tag);
        // Decided here, not by Express's freshness check: fetch() sends "Cache-Control: no-cache"
        // with every conditional request, and Express then never answers 304.
        if (unchanged) res.status(304).end();
        else res.json(body);
        return;
      }
      const pause = Math.max(LOOK_AGAIN_MS, (Date.now() - started) * READING_SHARE);
      await sleep(Math.min(pause, left), undefined, { signal: held.signal }).catch(() => {});
    }
  } finally {
    held?.release();
  }
}
