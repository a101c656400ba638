/**
 * Change notifications over Redis pub/sub, so that long-polls (`?wait=`) in any
 * API process wake as soon as a worker anywhere changes a record. A periodic
 * re-check covers a message lost while a connection was re-established.
 */
import type { Redis } from 'ioredis';
import { Keys } from './redis.js';

export function publishChange(redis: Redis, keys: Keys, topic: string): Promise<number> {
  return redis.publish(keys.channel(topic), '1');
}

export class ChangeWaiter {
  private readonly listeners = new Map<string, Set<(message: string) => void>>();

  constructor(private readonly sub: Redis, private readonly keys: Keys) {
    sub.on('message', (channel: string, message: string) => {
      for (const fn of this.listeners.get(channel) ?? []) fn(message);
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
    const channel = this.keys.channel(topic);
    // A change that arrives while `done()` is reading is remembered, so the loop reads again
    // instead of sleeping through it.
    let changed = false;
    let wake: () => void = () => {
      changed = true;
    };
    const fn = (message: string) => {
      if (worthAsking(message)) wake();
    };
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      await this.sub.subscribe(channel);
    }
    set.add(fn);
    const onAbort = () => wake();
    signal?.addEventListener('abort', onAbort, { once: true });
    const deadline = Date.now() + timeoutMs;
    try {
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
      set.delete(fn);
      if (set.size === 0) {
        this.listeners.delete(channel);
        await this.sub.unsubscribe(channel).catch(() => {});
      }
    }
  }
}
