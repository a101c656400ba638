/**
 * Where the shards of the generate and delivery queues live: on a cluster, each under a tag of
 * its own, spread evenly over the slot ranges that `redis-cli --cluster create` gives its masters.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import { loadConfig } from '../src/core/config.js';
import { queueAddresses, shardOf } from '../src/core/queues.js';

const SLOTS = 16384;
/** The master holding a slot in an n-master cluster made by redis-cli (equal ranges, in order). */
const masterOf = (slot: number, masters: number) => Math.min(masters - 1, Math.floor(slot / Math.ceil(SLOTS / masters)));
const tagOf = (prefix: string) => /\{([^}]+)\}/.exec(prefix)![1];

test('on a cluster, the default is three shards, one on each master of a three-master cluster', () => {
  const config = loadConfig({ REDIS_CLUSTER_NODES: 'redis://127.0.0.1:7000' });
  assert.equal(config.queueShards, 3);
  for (const queue of ['generate', 'deliver'] as const) {
    const addresses = queueAddresses(config, queue);
    assert.deepEqual(
      addresses.map((a) => a.name),
      [queue, `${queue}-1`, `${queue}-2`],
    );
    // Shard 0 is the queue as it was: its jobs queued before shards are still taken.
    assert.equal(addresses[0].prefix, `ferry:{${queue}}`);
    const masters = addresses.map((a) => masterOf(calculateSlot(tagOf(a.prefix)), 3));
    assert.deepEqual([...masters].sort(), [0, 1, 2], `${queue}: ${addresses.map((a) => a.prefix).join(', ')}`);
  }
});

test('six shards on a three-master cluster: two on each master', () => {
  const config = loadConfig({ REDIS_CLUSTER_NODES: 'redis://127.0.0.1:7000', FERRY_QUEUE_SHARDS: '6' });
  const masters = queueAddresses(config, 'generate').map((a) => masterOf(calculateSlot(tagOf(a.prefix)), 3));
  assert.deepEqual([...masters].sort(), [0, 0, 1, 1, 2, 2]);
});

test('on one Redis, one shard unless set; shards there are named queues under the prefix', () => {
  assert.equal(loadConfig({}).queueShards, 1);
  const config = loadConfig({ FERRY_QUEUE_SHARDS: '2', FERRY_REDIS_PREFIX: 'p' });
  assert.deepEqual(queueAddresses(config, 'deliver'), [
    { name: 'deliver', prefix: 'p' },
    { name: 'deliver-1', prefix: 'p' },
  ]);
  // Queues that are not sharded keep one address.
  assert.equal(queueAddresses(config, 'upload').length, 1);
  assert.throws(() => loadConfig({ FERRY_QUEUE_SHARDS: '0' }), /FERRY_QUEUE_SHARDS/);
});

test('work spreads evenly over the shards, and an id always goes to the same one', () => {
  const counts = [0, 0, 0];
  for (let i = 0; i < 30_000; i++) counts[shardOf(`job-${i.toString(36)}x`, 3)]++;
  for (const c of counts) assert.ok(c > 9_000 && c < 11_000, `per shard: ${counts.join(', ')}`);
  assert.equal(shardOf('job-abc', 3), shardOf('job-abc', 3));
  assert.equal(shardOf('anything', 1), 0);
});
