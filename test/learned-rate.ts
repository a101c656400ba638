/** The rate Ferry has learned for a model, as the quota tests read it from Redis. */
import { Redis } from 'ioredis';
import type { Ferry } from './harness.js';

/**
 * The learned rate, read every half second while `done` is pending: the median of the second half
 * of the readings. An AIMD estimate saw-tooths around the quota (probing above it between 429s),
 * so one reading says where in a tooth it was taken; the median says where the teeth sit.
 */
export async function learnedRate(ferry: Ferry, model: string, done: Promise<unknown>): Promise<number> {
  const redis = new Redis(ferry.env.REDIS_URL);
  const readings: number[] = [];
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => {});
  try {
    while (!finished) {
      const [key] = await redis.keys(`${ferry.config.prefix}:quota:*:${model}`);
      const rate = key ? Number(await redis.hget(key, 'rate')) : NaN;
      if (Number.isFinite(rate) && rate > 0) readings.push(rate);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    redis.disconnect();
  }
  const late = readings.slice(Math.floor(readings.length / 2)).sort((a, b) => a - b);
  return late.length ? late[Math.floor(late.length / 2)] : NaN;
}
