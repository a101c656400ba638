/**
 * Several machines, nothing shared but Redis and a blob container: two `ferry api` and three
 * `ferry worker` processes, each with a staging directory of its own that nothing may pass
 * through, against a three-master Redis Cluster and Azurite staging, at the default log level.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { startEmulator, type Emulator } from '../src/emulator/index.js';
import { startAzurite, type Azurite } from './azurite.js';
import { createBatch, idsOf, requests, results, waitFinal } from './batch-helpers.js';
import { KEYS, eventually, freePort, spawnFerry } from './harness.js';
import { startRedisCluster, type RedisCluster } from './redis-cluster.js';

/** Neither exited nor ended by a signal (a process killed by one keeps a null exitCode). */
const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

interface Proc {
  name: string;
  child: ChildProcess;
  stagingDir: string;
}

describe('two API and three worker processes, sharing only a Redis Cluster and a blob container', () => {
  let cluster: RedisCluster;
  let azurite: Azurite;
  let emulator: Emulator;
  let tmp: string;
  const procs: Proc[] = [];
  const apis: string[] = [];
  let env: Record<string, string>;

  async function start(name: string, command: 'api' | 'worker', extra: Record<string, string> = {}): Promise<Proc> {
    const stagingDir = path.join(tmp, name, 'staging');
    const child = spawnFerry(command, { ...env, FERRY_STAGING_DIR: stagingDir, FERRY_DATA_DIR: path.join(tmp, name, 'data'), ...extra });
    const proc = { name, child, stagingDir };
    procs.push(proc);
    return proc;
  }

  const client = (i: number) => new OpenAI({ apiKey: KEYS.a, baseURL: `${apis[i]}/v1`, maxRetries: 2, timeout: 60_000 });

  before(async () => {
    [cluster, azurite, emulator] = await Promise.all([
      startRedisCluster(),
      startAzurite(),
      startEmulator({ quiet: true, processingDelayMs: 0 }),
    ]);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-machines-'));
    env = {
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      FERRY_REDIS_PREFIX: 'machines',
      FERRY_STAGING_CONTAINER: 'ferry-staging',
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
      AZURE_STORAGE_FILE_SYSTEM: 'ferry-files',
      FERRY_API_KEYS: `${KEYS.a}:tenant-a`,
      GEMINI_API_KEY: 'emulator-key',
      GEMINI_BASE_URL: emulator.url,
      HOST: '127.0.0.1',
      FERRY_JOB_LOCK_MS: '3000',
      FERRY_RETRY_BASE_MS: '50',
      FERRY_METRICS_PORT: '0',
      FERRY_LOG_LEVEL: 'info',
    };
    for (let i = 1; i <= 3; i++) await start(`worker-${i}`, 'worker');
    for (let i = 1; i <= 2; i++) {
      const port = await freePort();
      await start(`api-${i}`, 'api', { PORT: String(port) });
      apis.push(`http://127.0.0.1:${port}`);
    }
    for (const url of apis) {
      await eventually(async () => (await fetch(`${url}/readyz`).catch(() => null))?.status === 200, 60_000, `${url} ready`);
    }
  });

  after(async () => {
    const running = procs.filter((p) => alive(p.child));
    for (const p of running) p.child.kill('SIGTERM');
    await Promise.all(running.map((p) => (alive(p.child) ? new Promise((r) => p.child.once('exit', r)) : null)));
    await emulator?.close();
    await azurite?.stop();
    await cluster?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('an upload through API 1 is processed by a worker and read back through API 2', { timeout: 60_000 }, async () => {
    const bytes = Buffer.from('bytes that cross machines '.repeat(40_000));
    const file = await client(0).files.create({ file: await toFile(bytes, 'crossing.txt'), purpose: 'user_data' });
    await eventually(async () => (await client(1).files.retrieve(file.id)).status === 'processed', 30_000, 'processed, seen through API 2');
    const back = Buffer.from(await (await client(1).files.content(file.id)).arrayBuffer());
    assert.ok(back.equals(bytes), 'the same bytes through the other API');
    const answer = await client(1).chat.completions.create({
      model: 'gemini-2.0-flash',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'read' },
            { type: 'file', file: { file_id: file.id } },
          ],
        },
      ],
    });
    assert.match(String(answer.choices[0].message.content), /file/);
    for (const p of procs) {
      const left = await readdir(p.stagingDir).catch(() => []);
      assert.deepEqual(left, [], `nothing staged on ${p.name}'s disk`);
    }
  });

  test('a 1,000-line batch while a worker is SIGKILLed: every custom_id exactly once', { timeout: 120_000 }, async () => {
    emulator.setFaults([{ route: 'generate', kind: 'latency', latencyMs: 50 }]);
    try {
      const input = requests(1000, 'm');
      const created = await createBatch(client(1), input);
      await eventually(
        async () => ((await client(0).batches.retrieve(created.id)).request_counts?.completed ?? 0) >= 100,
        60_000,
        '100 lines done',
      );
      const victim = procs.find((p) => p.name === 'worker-1')!;
      victim.child.kill('SIGKILL');
      await new Promise((r) => (alive(victim.child) ? victim.child.once('exit', r) : r(null)));
      const b = await waitFinal(client(0), created.id, 100);
      assert.equal(b.status, 'completed');
      const { out } = await results(client(0), b, idsOf(input));
      assert.equal(out.length, 1000);
      for (const l of out) assert.match(l.response.body.choices[0].message.content, new RegExp(`text=question ${l.custom_id}$`));
    } finally {
      emulator.setFaults([]);
    }
  });

  test('every process but the one killed is still running', () => {
    for (const p of procs) if (p.name !== 'worker-1') assert.ok(alive(p.child), `${p.name} is alive`);
  });
});
