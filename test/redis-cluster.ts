/**
 * A real Redis Cluster of three masters for tests: three `redis-server --cluster-enabled yes`
 * processes on free loopback ports, joined with `redis-cli --cluster create`, in a temporary
 * directory that goes with them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { eventually, freePort } from './harness.js';

export interface RedisCluster {
  /** `redis://127.0.0.1:PORT` of each master, as REDIS_CLUSTER_NODES takes them. */
  nodes: string[];
  /** The masters' process ids (for their CPU time). */
  pids: number[];
  /** Keys held by each master. */
  keysPerNode(): Promise<number[]>;
  /** Commands each master ran since the last `resetStats` (INFO commandstats). */
  commandsPerNode(): Promise<number[]>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-cluster-'));
  const ports = await Promise.all(Array.from({ length: masters }, () => freePort()));
  const servers: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    ),
  );
  const clients = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 100 }));
  // Refused until each server listens: the wait below asks again.
  for (const c of clients) c.on('error', () => {});
  const stop = async () => {
    for (const c of clients) c.disconnect();
    for (const s of servers) s.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await eventually(
      async () => (await Promise.all(clients.map((c) => c.ping().catch(() => null)))).every((p) => p === 'PONG'),
      10_000,
      'redis-server nodes',
    );
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      {
        encoding: 'utf8',
      },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await eventually(
      async () => (await Promise.all(clients.map((c) => c.cluster('INFO')))).every((info) => /cluster_state:ok/.test(String(info))),
      20_000,
      'the cluster to be ok',
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes: ports.map((p) => `redis://127.0.0.1:${p}`),
    pids: servers.map((s) => s.pid!),
    keysPerNode: () => Promise.all(clients.map((c) => c.dbsize())),
    commandsPerNode: () => Promise.all(clients.map(async (c) => commandCount(String(await c.info('commandstats'))))),
    resetStats: async () => {
      await Promise.all(clients.map((c) => c.config('RESETSTAT')));
    },
    stop,
  };
}

/** The sum of `calls=` over a node's INFO commandstats. */
function commandCount(info: string): number {
  return [...info.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}
