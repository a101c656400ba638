/** Cleaning up after a test or a benchmark: every key under its prefix, on every master of a cluster. */
import { Cluster, type Redis } from 'ioredis';

/** Whether a connection is a cluster client (core/redis.ts makes either behind one type). */
const isCluster = (redis: Redis): boolean => redis instanceof Cluster || (redis as { isCluster?: boolean }).isCluster === true;

/** Deletes every key under a prefix, answering how many. */
export async function deleteByPrefix(redis: Redis, prefix: string): Promise<number> {
  const nodes = isCluster(redis) ? (redis as unknown as Cluster).nodes('master') : [redis];
  let n = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      // One key per command: keys of a page may live in different slots.
      n += (await Promise.all(keys.map((k) => node.unlink(k)))).reduce((a, b) => a + b, 0);
    } while (cursor !== '0');
  }
  return n;
}
