/**
 * The relay of a streamed completion: the worker appends entries to the job's Redis Stream and
 * the API reads them as they come. Entries: `chunk` (a chat.completion.chunk, as JSON), `usage`,
 * then exactly one ending: `done`, `error` (the job's error) or `cancelled`.
 */
import type { Redis } from 'ioredis';
import type { ErrorBody } from '../core/errors.js';
import type { Keys } from '../core/keys.js';

/** How long a stream is kept after its last entry: a client that reconnects late finds it gone. */
const STREAM_TTL_SECONDS = 3600;

export type JobStreamError = ErrorBody['error'];
export type StreamEnding = { kind: 'done' } | { kind: 'error'; error: JobStreamError } | { kind: 'cancelled' };
export type StreamEntry = { kind: 'chunk'; chunk: string } | { kind: 'usage'; usage: unknown } | StreamEnding;

/** The stream relay over a process's records connection. */
export function jobStream(services: { redis: Redis; keys: Keys }): JobStream {
  return new JobStream(services.redis, services.keys);
}

export class JobStream {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async appendChunk(jobId: string, chunk: unknown): Promise<void> {
    await this.redis.xadd(this.keys.jobStream(jobId), '*', 'chunk', JSON.stringify(chunk));
  }

  async appendUsage(jobId: string, usage: unknown): Promise<void> {
    const key = this.keys.jobStream(jobId);
    await this.redis.multi().xadd(key, '*', 'usage', JSON.stringify(usage)).expire(key, STREAM_TTL_SECONDS).exec();
  }

  async end(jobId: string, ending: StreamEnding): Promise<void> {
    const key = this.keys.jobStream(jobId);
    const value = ending.kind === 'error' ? JSON.stringify(ending.error) : '1';
    await this.redis.multi().xadd(key, '*', ending.kind, value).expire(key, STREAM_TTL_SECONDS).exec();
  }

  /** Whether anything was relayed already (a retry must not send an answer twice). */
  async started(jobId: string): Promise<boolean> {
    return (await this.redis.xlen(this.keys.jobStream(jobId))) > 0;
  }

  /**
   * The entries after `after` (an entry id; '0' for the start), waiting up to `blockMs` on the
   * blocking connection `reader`; null when none came.
   */
  async read(reader: Redis, jobId: string, after: string, blockMs: number): Promise<{ last: string; entries: StreamEntry[] } | null> {
    const got = await reader.xread('COUNT', 100, 'BLOCK', blockMs, 'STREAMS', this.keys.jobStream(jobId), after);
    if (!got) return null;
    let last = after;
    const entries: StreamEntry[] = [];
    for (const [id, [kind, value]] of got[0][1]) {
      last = id;
      entries.push(toEntry(kind, value));
    }
    return { last, entries };
  }
}

function toEntry(kind: string, value: string): StreamEntry {
  switch (kind) {
    case 'chunk':
      return { kind, chunk: value };
    case 'usage':
      return { kind, usage: JSON.parse(value) };
    case 'done':
    case 'cancelled':
      return { kind };
    default:
      return { kind: 'error', error: JSON.parse(value) as JobStreamError };
  }
}
