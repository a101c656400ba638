import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { loadConfig } from '../src/core/config.js';
import { eventually, startFerry, type Ferry } from './harness.js';
import { createBatch, idsOf, MODEL, requests, results, waitFinal } from './batch-helpers.js';
import { startRedisCluster, type RedisCluster } from './redis-cluster.js';

describe('on a Redis Cluster of three masters', () => {
  let cluster: RedisCluster;
  let ferry: Ferry;
  let client: OpenAI;
  const hooks: string[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hooks.push(JSON.parse(body).type);
      res.writeHead(200).end();
    });
  });

  before(async () => {
    cluster = await startRedisCluster();
    ferry = await startFerry({
      env: { REDIS_CLUSTER_NODES: cluster.nodes.join(','), WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1', FERRY_WEBHOOK_RETRY_SCHEDULE: '0,0.2' },
    });
    client = ferry.client();
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    await client.post('/webhook_endpoints', { body: { url } });
  });
  after(async () => {
    await ferry?.close();
    await cluster?.stop();
    receiver.close();
  });

  test('a hash tag in the prefix is refused: every key would sit on one master', () => {
    assert.throws(() => loadConfig({ REDIS_CLUSTER_NODES: cluster.nodes[0], FERRY_REDIS_PREFIX: '{ferry}' }), /FERRY_REDIS_PREFIX/);
    assert.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'http://127.0.0.1:1' }), /REDIS_CLUSTER_NODES/);
  });

  test('files, completions (sync, async, streamed), idempotency, webhooks and deletion', { timeout: 60_000 }, async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from('a document'), 'doc.txt'), purpose: 'user_data' });
    await eventually(async () => (await client.files.retrieve(file.id)).status === 'processed', 20_000, 'the file processed');
    const content = [
      { type: 'text' as const, text: 'read it' },
      { type: 'file' as const, file: { file_id: file.id } },
    ];
    const sync = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content }] });
    assert.match(String(sync.choices[0].message.content), /file/);

    const accepted = await ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async', 'idempotency-key': 'cluster-1' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'later' }] }),
    });
    assert.equal(accepted.status, 202);
    const job = await accepted.json();
    const again = await ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async', 'idempotency-key': 'cluster-1' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'later' }] }),
    });
    assert.equal((await again.json()).id, job.id, 'the same job for the same key');
    const done = await (await ferry.fetch(`/v1/jobs/${job.id}?wait=20`)).json();
    assert.equal(done.status, 'succeeded');

    let streamed = '';
    const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'stream it' }], stream: true });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    assert.match(streamed, /stream it/);

    await eventually(async () => hooks.includes('file.processed') && hooks.includes('job.succeeded'), 20_000, 'webhook events');
    const listed = await client.files.list();
    assert.ok(listed.data.some((f) => f.id === file.id));
    await client.files.delete(file.id);
    await assert.rejects(client.files.retrieve(file.id), { status: 404 });
  });

  test('batches, direct and on Gemini Batch Mode: every custom_id once', { timeout: 90_000 }, async () => {
    const input = requests(200, 'cl');
    const direct = await waitFinal(client, (await createBatch(client, input)).id, 60);
    assert.equal(direct.status, 'completed');
    assert.equal((await results(client, direct, idsOf(input))).out.length, 200);
    const onGemini = await waitFinal(client, (await createBatch(client, input, '24h', undefined, 'gemini_batch')).id, 60);
    assert.equal(onGemini.status, 'completed');
    assert.equal((await results(client, onGemini, idsOf(input))).out.length, 200);
    // The activity's counts are written per minute's hash (a pipeline each: one slot), and read back.
    await eventually(
      async () => {
        const a = (await (await ferry.fetch('/v1/activity?seconds=600')).json()) as { series: Array<{ name: string; values: number[] }> };
        const lines = a.series.filter((s) => s.name === 'lines').flatMap((s) => s.values);
        return lines.reduce((n, v) => n + v, 0) >= 400;
      },
      10_000,
      'the 400 lines in the activity',
    );
  });

  test(
    'a 2,000-line batch and 500 async completions spread over the masters: none runs or holds more than 45%',
    { timeout: 180_000 },
    async (t) => {
      await cluster.resetStats();
      const input = requests(2000, 'spread');
      const batch = await createBatch(client, input);
      // Sent as a client pool would, 25 at a time.
      const jobs: string[] = [];
      await Promise.all(
        Array.from({ length: 25 }, async () => {
          while (jobs.length < 500) {
            const i = jobs.push('') - 1;
            const res = await ferry.fetch('/v1/chat/completions', {
              method: 'POST',
              headers: { 'content-type': 'application/json', prefer: 'respond-async' },
              body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `spread ${i}` }] }),
            });
            const body = await res.json();
            assert.equal(res.status, 202, JSON.stringify(body));
            jobs[i] = (body as { id: string }).id;
          }
        }),
      );
      const done = await waitFinal(client, batch.id, 150);
      assert.equal(done.status, 'completed');
      assert.equal((await results(client, done, idsOf(input))).out.length, 2000);
      for (const id of jobs) {
        const job = await (await ferry.fetch(`/v1/jobs/${id}?wait=30`)).json();
        assert.equal(job.status, 'succeeded', id);
      }
      const commands = await cluster.commandsPerNode();
      const keys = await cluster.keysPerNode();
      const share = (xs: number[]) => xs.map((x) => x / xs.reduce((a, b) => a + b));
      const report = `commands per master ${commands.join(', ')}; keys ${keys.join(', ')}`;
      t.diagnostic(report);
      for (const s of share(commands)) assert.ok(s <= 0.45, report);
      for (const s of share(keys)) assert.ok(s <= 0.45, report);
    },
  );

  test('the keys spread over every master', async () => {
    const perNode = await cluster.keysPerNode();
    assert.equal(perNode.length, 3);
    for (const n of perNode) assert.ok(n > 10, `keys per master: ${perNode.join(', ')}`);
  });
});
