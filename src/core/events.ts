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
  private readonly listeners = new Map<string, Set<() => void>>();

  constructor(private readonly sub: Redis, private readonly keys: Keys) {
    sub.on('message', (channel: string) => {
      for (const fn of this.listeners.get(channel) ?? []) fn();
    });
  }

  /**
   * Resolves when `done()` answers true or the timeout passes; answers
   * whether it ended done.
   */
  async waitFor(topic: string, timeoutMs: number, done: () => Promise<boolean>, signal?: AbortSignal): Promise<boolean> {
    if (await done()) return true;
    if (timeoutMs <= 0) return false;
    const channel = this.keys.channel(topic);
    let wake: () => void = () => {};
    const fn = () => wake();
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      await this.sub.subscribe(channel);
    }
    set.add(fn);
    signal?.addEventListener('abort', fn, { once: true });
    const deadline = Date.now() + timeoutMs;
    try {
      while (!signal?.aborted) {
        if (await done()) return true;
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 2000));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      return false;
    } finally {
      signal?.removeEventListener('abort', fn);
      set.delete(fn);
      if (set.size === 0) {
        this.listeners.delete(channel);
        await this.sub.unsubscribe(channel).catch(() => {});
      }
    }
  }
}
