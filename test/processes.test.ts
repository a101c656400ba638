/**
 * Several Ferry processes on one host: a second worker whose metrics port is taken runs on without
 * one (saying so) and takes its share of the work; a `ferry all` that cannot bind its port takes no
 * job before it exits; two checkouts started with default settings never take each other's work.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { loadConfig } from '../src/core/config.js';
import { eventually, freePort, processedFile, spawnFerry, startFerry, type Ferry } from './harness.js';
import { deleteByPrefix } from './redis-keys.js';

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) =>
    child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code)),
  );

/** What the child writes (stderr, and its log lines when piped), as it comes. */
const outputOf = (child: ChildProcess) => {
  let text = '';
  for (const s of [child.stdout, child.stderr]) s?.on('data', (c) => (text += c));
  return () => text;
};

async function submitJobs(ferry: Ferry, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const res = await ferry.fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'respond-async' },
        body: JSON.stringify({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `job ${i}` }] }),
      });
      assert.equal(res.status, 202);
      return ((await res.json()) as { id: string }).id;
    }),
  );
}

const statusOf = async (ferry: Ferry, id: string) => ((await (await ferry.fetch(`/v1/jobs/${id}`)).json()) as { status: string }).status;

describe('several processes on one host', () => {
  let ferry: Ferry;
  before(async () => {
    // The API here; the workers are the processes under test.
    ferry = await startFerry({ workers: false });
  });
  after(() => ferry.close());

  test('a `ferry all` whose port is taken says so and takes no job', { timeout: 60_000 }, async () => {
    const ids = await submitJobs(ferry, 5);
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const child = spawnFerry('all', { ...ferry.env, PORT: String(port), FERRY_LOG_LEVEL: 'info' }, { logs: true });
      const output = outputOf(child);
      assert.equal(await exited(child), 1);
      assert.match(output(), /cannot start: 127\.0\.0\.1:\d+ is already in use/);
      // Its workers never started: no job could have been taken, however fast it would have been.
      assert.doesNotMatch(output(), /workers started/);
    } finally {
      await new Promise((r) => taken.close(r));
    }
    for (const id of ids) assert.equal(await statusOf(ferry, id), 'queued', `${id} was not taken`);
  });

  test(
    'two `ferry worker` processes sharing a metrics port: both run, the second without metrics, saying why',
    { timeout: 60_000 },
    async () => {
      const metricsPort = await freePort();
      const env = { ...ferry.env, FERRY_METRICS_PORT: String(metricsPort), FERRY_LOG_LEVEL: 'info' };
      const first = spawnFerry('worker', env);
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${metricsPort}/healthz`).catch(() => null))?.ok,
        30_000,
        'the first worker',
      );
      const second = spawnFerry('worker', env, { logs: true });
      const output = outputOf(second);
      try {
        await eventually(async () => /no \/metrics for this worker/.test(output()), 30_000, 'the second worker to start');
        const ids = await submitJobs(ferry, 20);
        for (const id of ids) await eventually(async () => (await statusOf(ferry, id)) === 'succeeded', 30_000, `job ${id}`);
        assert.equal(first.exitCode, null, 'the first worker runs');
        assert.equal(second.exitCode, null, 'the second worker runs');
        assert.match(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(), /ferry_http_requests_total|process_cpu/);
        assert.match(output(), /no \/metrics for this worker: 127\.0\.0\.1:\d+ is already in use/);
        assert.match(output(), /FERRY_METRICS_PORT/);
        assert.doesNotMatch(output(), /Unhandled 'error' event/);
      } finally {
        for (const w of [first, second]) w.kill('SIGTERM');
        await Promise.all([exited(first), exited(second)]);
      }
    },
  );
});

describe('two checkouts on one machine, default settings', () => {
  test(
    'each finishes only its own work (uploads, completions, webhooks), and its lists hold only its own',
    { timeout: 90_000 },
    async () => {
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-two-'));
      // Instance one may deliver to loopback, instance two may not: a delivery of one's taken by
      // two's worker would be refused under two's settings.
      const received: string[] = [];
      const receiver = http.createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          received.push(JSON.parse(body).data?.id);
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
      const hookUrl = `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}/hook`;
      const instances = await Promise.all(
        ['one', 'two'].map(async (name) => {
          const dataDir = path.join(tmp, name, 'data');
          const port = await freePort();
          // Only what a second checkout would set: its own port; no REDIS_URL, no FERRY_REDIS_PREFIX.
          const env = {
            REDIS_URL: '',
            FERRY_REDIS_PREFIX: '',
            FERRY_DATA_DIR: dataDir,
            PORT: String(port),
            HOST: '127.0.0.1',
            FERRY_METRICS_PORT: '0',
            FERRY_API_KEYS: `sk-${name}:dev`,
            WEBHOOK_ALLOW_PRIVATE_NETWORKS: name === 'one' ? '1' : '0',
          };
          const child = spawnFerry('all', env);
          const url = `http://127.0.0.1:${port}`;
          await eventually(async () => (await fetch(`${url}/readyz`).catch(() => null))?.ok, 60_000, `instance ${name}`);
          return {
            name,
            child,
            prefix: loadConfig({ FERRY_DATA_DIR: dataDir }).prefix,
            client: new OpenAI({ apiKey: `sk-${name}`, baseURL: `${url}/v1`, maxRetries: 0 }),
          };
        }),
      );
      try {
        assert.notEqual(instances[0].prefix, instances[1].prefix);
        const uploaded = await Promise.all(
          instances.flatMap((inst) =>
            Array.from({ length: 5 }, async (_, i) => {
              const f = await inst.client.files.create({
                file: await toFile(Buffer.from(`${inst.name} document ${i}`), `${inst.name}-${i}.txt`),
                purpose: 'user_data',
              });
              return { inst, f: await processedFile(inst.client, f.id) };
            }),
          ),
        );
        assert.ok(
          uploaded.every(({ f }) => f.status === 'processed'),
          'every upload processed by its own instance',
        );
        for (const inst of instances) {
          const names = (await inst.client.files.list()).data.map((f) => f.filename).sort();
          assert.deepEqual(
            names,
            [0, 1, 2, 3, 4].map((i) => `${inst.name}-${i}.txt`),
          );
          const c = await inst.client.chat.completions.create({
            model: 'gemini-2.5-flash',
            messages: [{ role: 'user', content: `from ${inst.name}` }],
          });
          assert.match(String(c.choices[0].message.content), new RegExp(`from ${inst.name}$`));
        }
        await instances[0].client.post('/webhook_endpoints', { body: { url: hookUrl } });
        const jobs = await Promise.all(
          Array.from({ length: 10 }, async (_, i) => {
            const accepted = await instances[0].client.chat.completions.create(
              { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `hook ${i}` }] },
              { headers: { prefer: 'respond-async' } },
            );
            // The 202's body is the job (its id), which the SDK hands back as it is.
            return accepted.id;
          }),
        );
        await eventually(async () => jobs.every((id) => received.includes(id)), 20_000, 'every job.succeeded delivered');
        type Delivery = { status: string; attempts: unknown[] };
        const deliveries = (await instances[0].client.get('/webhook_deliveries')) as { data: Delivery[] };
        assert.equal(deliveries.data.length, 10);
        assert.ok(
          deliveries.data.every((d) => d.status === 'succeeded' && d.attempts.length === 1),
          `each delivered at its first attempt: ${JSON.stringify(deliveries.data)}`,
        );
        assert.equal(((await instances[1].client.get('/webhook_deliveries')) as { data: Delivery[] }).data.length, 0);
        for (const inst of instances) assert.equal(inst.child.exitCode, null, `instance ${inst.name} still runs`);
      } finally {
        const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
        for (const inst of instances) {
          const done = exited(inst.child);
          inst.child.kill('SIGTERM');
          await done;
          await deleteByPrefix(redis, inst.prefix);
        }
        redis.disconnect();
        receiver.close();
        await rm(tmp, { recursive: true, force: true });
      }
    },
  );
});

describe('a worker that cannot see the staged bytes', () => {
  let ferry: Ferry;
  before(async () => {
    // The API here, staging in its own directory; the workers are spawned with theirs.
    ferry = await startFerry({ workers: false });
  });
  after(() => ferry.close());

  const upload = async (name: string) =>
    (await ferry.client().files.create({ file: await toFile(Buffer.from(`the text of ${name}`), `${name}.txt`), purpose: 'user_data' })).id;
  const settled = (id: string) =>
    eventually(
      async () => {
        const f: any = await ferry.client().files.retrieve(id);
        return f.status === 'uploaded' ? null : f;
      },
      30_000,
      `file ${id} to settle`,
    );

  test(
    'hands the upload back; with no worker that can read them, the file fails naming where its bytes are',
    { timeout: 60_000 },
    async () => {
      const elsewhere = path.join(ferry.tmp, 'elsewhere');
      const blind = spawnFerry('worker', {
        ...ferry.env,
        FERRY_STAGING_DIR: elsewhere,
        FERRY_STAGING_HANDBACK_SECONDS: '3',
        FERRY_METRICS_PORT: '0',
      });
      try {
        const f = await settled(await upload('far'));
        assert.equal(f.status, 'error');
        assert.ok(f.status_details.includes(`${os.hostname()}:${ferry.env.FERRY_STAGING_DIR}`), f.status_details);
        assert.match(f.status_details, /FERRY_STAGING_DIR/);
        assert.match(f.status_details, /FERRY_STAGING_CONTAINER/);
        assert.doesNotMatch(f.status_details, /no longer retained/);
      } finally {
        blind.kill('SIGTERM');
        await exited(blind);
      }
    },
  );

  test(
    'beside a worker that can read them, every upload is processed; the one that cannot warns as it starts',
    { timeout: 60_000 },
    async () => {
      const seeing = spawnFerry('worker', { ...ferry.env, FERRY_METRICS_PORT: '0' });
      await eventually(
        async () => (await ferry.services.redis.hlen(ferry.services.keys.instances())) === 1,
        30_000,
        'the first worker to announce itself',
      );
      const blind = spawnFerry('worker', { ...ferry.env, FERRY_STAGING_DIR: path.join(ferry.tmp, 'elsewhere'), FERRY_METRICS_PORT: '0' });
      const output = outputOf(blind);
      try {
        await eventually(async () => output().includes('WARNING'), 30_000, 'the second worker’s banner');
        assert.ok(
          output()
            .replace(/[│\s]+/g, ' ')
            .includes(`stages at ${os.hostname()}:${ferry.env.FERRY_STAGING_DIR}`),
          output(),
        );
        assert.match(output(), /FERRY_REDIS_PREFIX/);
        const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => upload(`near-${i}`)));
        for (const id of ids) assert.equal((await settled(id)).status, 'processed');
      } finally {
        for (const w of [blind, seeing]) w.kill('SIGTERM');
        await Promise.all([exited(blind), exited(seeing)]);
      }
    },
  );
});
