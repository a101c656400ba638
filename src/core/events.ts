/**
 * Change notifications over Redis pub/sub, so that long-polls (`?wait=`) in any
 * API process wake as soon as a worker anywhere changes a record. A periodic
 * re-check covers a message lost while a connection was re-established.
 */
import type { Redis } from 'ioredis';
import { Keys } from './keys.js';

export function publishChange(redis: Redis, keys: Keys, topic: string): Promise<number> {
  return redis.publish(keys.channel(topic), '1');
}

/** The waiters of one channel, and its subscription (which each of them awaits before reading). */
interface Channel {
  fns: Set<(message: string) => void>;
  subscribed: Promise<unknown>;
}

export class ChangeWaiter {
  private readonly channels = new Map<string, Channel>();

  constructor(
    private readonly sub: Redis,
    private readonly keys: Keys,
  ) {
    sub.on('message', (channel: string, message: string) => {
      for (const fn of this.channels.get(channel)?.fns ?? []) fn(message);
    });
  }

  /**
   * Resolves when `done()` answers true or the timeout passes; answers whether it ended done.
   * `done()` is asked once subscribed, then after each change whose message (records: the status
   * after it) `worthAsking` does not rule out.
   */
  async waitFor(
    topic: string,
    timeoutMs: number,
    done: () => Promise<boolean>,
    signal?: AbortSignal,
    worthAsking: (message: string) => boolean = () => true,
  ): Promise<boolean> {
    if (timeoutMs <= 0) return done();
    const name = this.keys.channel(topic);
    // A change that arrives while `done()` is reading is remembered, so the loop reads again
    // instead of sleeping through it.
    let changed: boolean;
    let wake: () => void = () => {
      changed = true;
    };
    const fn = (message: string) => {
      if (worthAsking(message)) wake();
    };
    const mine = this.join(name);
    mine.fns.add(fn);
    const onAbort = () => wake();
    signal?.addEventListener('abort', onAbort, { once: true });
    const deadline = Date.now() + timeoutMs;
    try {
      // Not yet subscribed, the waiter re-reads every 2 s instead.
      await mine.subscribed.catch(() => {});
      while (!signal?.aborted) {
        changed = false;
        if (await done()) return true;
        const left = deadline - Date.now();
        if (left <= 0) return false;
        if (changed) continue;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 2000));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = () => {
          changed = true;
        };
      }
      return false;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await this.leave(name, mine, fn);
    }
  }

  /** The channel's subscription, shared by its waiters; made by the first. */
  private join(name: string): Channel {
    const existing = this.channels.get(name);
    if (existing) return existing;
    const made: Channel = { fns: new Set(), subscribed: Promise.resolve() };
    // A subscription that failed is forgotten, so the next waiter of the channel tries again.
    made.subscribed = this.sub.subscribe(name).catch((err: unknown) => {
      if (this.channels.get(name) === made) this.channels.delete(name);
      throw err;
    });
    this.channels.set(name, made);
    return made;
  }

  /** The last waiter of a subscription ends it (not one a later waiter made since). */
  private async leave(name: string, mine: Channel, fn: (message: string) => void) {
    mine.fns.delete(fn);
    if (mine.fns.size === 0 && this.channels.get(name) === mine) {
      this.channels.delete(name);
      await this.sub.unsubscribe(name).catch(() => {});
    }
  }
}
