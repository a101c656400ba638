/**
 * What the console reads beyond OpenAI's API: who a key is (`/v1/me`), the admin key's lists over
 * every tenant with a tenant filter, the last hour's activity (`/v1/activity`), and conditional
 * long-polls (`If-None-Match` with `?wait=`) that answer when what is asked for changes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { toFile } from 'openai';
import { createBatch, MODEL, requests, waitFinal } from './batch-helpers.js';
import { countLine } from '../src/domain/batches.js';
import { KEYS, eventually, startFerry, type Ferry } from './harness.js';

const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as any });

describe('the console API', () => {
  let ferry: Ferry;
  before(async () => {
    // A quota of 600 requests a minute: the activity's admitted rate is the configured 10 per second.
    ferry = await startFerry({ env: { FERRY_GEMINI_RPM: '600' } });
  });
  after(() => ferry.close());

  test('/v1/me says whose key it is; the admin learns every tenant', async () => {
    assert.deepEqual((await json(await ferry.fetch('/v1/me'))).body, {
      object: 'principal',
      tenant: 'tenant-a',
      admin: false,
      tenants: ['tenant-a'],
    });
    const admin = (await json(await ferry.fetch('/v1/me', { key: KEYS.admin }))).body;
    assert.equal(admin.admin, true);
    assert.deepEqual(admin.tenants, ['admin', 'tenant-a', 'tenant-b']);
    assert.equal((await ferry.fetch('/v1/me', { key: 'sk-nobody' })).status, 401);
  });

  test('the admin key lists every tenant’s records, newest first across them, and narrows them with ?tenant=', async () => {
    const upload = async (key: string, name: string) =>
      ferry.client(key).files.create({ file: await toFile(Buffer.from(`${name}\n`), `${name}.txt`), purpose: 'user_data' });
    const a1 = await upload(KEYS.a, 'a1');
    const b1 = await upload(KEYS.b, 'b1');
    const a2 = await upload(KEYS.a, 'a2');
    const all = (await json(await ferry.fetch('/v1/files?limit=2', { key: KEYS.admin }))).body;
    assert.deepEqual(
      all.data.map((f: any) => f.id),
      [a2.id, b1.id],
    );
    assert.equal(all.has_more, true);
    assert.deepEqual(
      all.data.map((f: any) => f.tenant),
      ['tenant-a', 'tenant-b'],
      'the admin sees whose each is',
    );
    const rest = (await json(await ferry.fetch(`/v1/files?limit=2&after=${all.last_id}`, { key: KEYS.admin }))).body;
    assert.deepEqual(
      rest.data.map((f: any) => f.id),
      [a1.id],
    );
    assert.equal(rest.has_more, false);
    const onlyB = (await json(await ferry.fetch('/v1/files?tenant=tenant-b', { key: KEYS.admin }))).body;
    assert.deepEqual(
      onlyB.data.map((f: any) => f.id),
      [b1.id],
    );
    // A tenant's key lists its own; another tenant is not there for it, and an unknown one is named.
    const mine = (await json(await ferry.fetch('/v1/files'))).body;
    assert.deepEqual(mine.data.map((f: any) => f.id).sort(), [a1.id, a2.id].sort());
    assert.ok(
      mine.data.every((f: any) => !('tenant' in f)),
      'a tenant is not told its own name on every object',
    );
    const other = await json(await ferry.fetch('/v1/files?tenant=tenant-b'));
    assert.equal(other.status, 404);
    assert.equal(other.body.error.param, 'tenant');
    const unknown = await json(await ferry.fetch('/v1/batches?tenant=nobody', { key: KEYS.admin }));
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /Known tenants: admin, tenant-a, tenant-b/);
  });

  test('the admin key sees each tenant’s jobs and deliveries with ?tenant=', async () => {
    const job = (key: string) =>
      ferry.fetch('/v1/chat/completions', {
        key,
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'respond-async' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
      });
    const ja = (await json(await job(KEYS.a))).body;
    const jb = (await json(await job(KEYS.b))).body;
    assert.ok(ja.id && jb.id, 'both accepted as jobs');
    const ids = async (q: string) => (await json(await ferry.fetch(`/v1/jobs${q}`, { key: KEYS.admin }))).body.data.map((j: any) => j.id);
    assert.ok((await ids('')).includes(ja.id) && (await ids('')).includes(jb.id));
    assert.deepEqual(await ids('?tenant=tenant-b'), [jb.id]);
    assert.deepEqual(
      (await json(await ferry.fetch('/v1/jobs', { key: KEYS.b }))).body.data.map((j: any) => j.id),
      [jb.id],
    );
    assert.equal((await ferry.fetch('/v1/webhook_deliveries?tenant=tenant-a', { key: KEYS.admin })).status, 200);
    assert.equal((await ferry.fetch('/v1/webhook_endpoints?tenant=tenant-a', { key: KEYS.admin })).status, 200);
  });

  test('a conditional long-poll answers when the batch changes, and 304 when nothing did', async () => {
    // A 3 s model call per line: the batch's counts change while the poll waits.
    ferry.emulator.setLatency({ kind: 'fixed', ms: 3000 });
    try {
      const client = ferry.client();
      const batch = await createBatch(client, requests(3));
      const first = await ferry.fetch(`/v1/batches/${batch.id}`);
      const tag = first.headers.get('etag');
      assert.ok(tag, 'an ETag on the batch');
      // Unchanged, asked without waiting: 304 at once.
      const same = await ferry.fetch(`/v1/batches/${batch.id}`, { headers: { 'if-none-match': tag } });
      const before = (await first.json()) as any;
      if (same.status === 200) assert.notDeepEqual(await same.json(), before, 'a 200 only when it changed');
      else assert.equal(same.status, 304);
      // Waiting: answered with the batch once its counts or status move, before the wait runs out.
      const t0 = Date.now();
      const changed = await ferry.fetch(`/v1/batches/${batch.id}?wait=30`, { headers: { 'if-none-match': tag } });
      assert.equal(changed.status, 200);
      assert.ok(Date.now() - t0 < 25_000, `answered on the change (${Date.now() - t0} ms)`);
      const now = (await changed.json()) as any;
      assert.notDeepEqual([now.status, now.request_counts], [before.status, before.request_counts]);
      assert.notEqual(changed.headers.get('etag'), tag);
      const done = await waitFinal(client, batch.id, 60);
      assert.equal(done.status, 'completed');
      // Final: nothing changes any more, so a wait of 2 s ends in 304 after about 2 s.
      const final = await ferry.fetch(`/v1/batches/${batch.id}`);
      const t1 = Date.now();
      const idle = await ferry.fetch(`/v1/batches/${batch.id}?wait=2`, { headers: { 'if-none-match': final.headers.get('etag')! } });
      assert.equal(idle.status, 304);
      assert.ok(Date.now() - t1 >= 1800, `held for the wait (${Date.now() - t1} ms)`);
    } finally {
      ferry.emulator.setLatency({ kind: 'fixed', ms: 0 });
    }
  });

  test('a version held as a weak tag, in a list or as * is still the version: 304; /v1 answers are never cached', async () => {
    const first = await ferry.fetch('/v1/files');
    assert.equal(first.headers.get('cache-control'), 'no-store');
    const tag = first.headers.get('etag')!;
    for (const held of [`W/${tag}`, `"other", ${tag}`, '*']) {
      assert.equal((await ferry.fetch('/v1/files', { headers: { 'if-none-match': held } })).status, 304, held);
    }
    assert.equal((await ferry.fetch('/v1/files', { headers: { 'if-none-match': '"other"' } })).status, 200);
  });

  test('a batch line seen final twice counts once in the activity, as in the batch', async () => {
    const batchId = 'batch_activitytwice0000000000';
    const countedLines = async () =>
      (await ferry.services.activity.read(Math.floor(Date.now() / 1000) - 60, Math.floor(Date.now() / 1000) + 20))
        .filter((p) => p.series === 'lines' && p.subject === 'tenant-once')
        .reduce((n, p) => n + p.value, 0);
    const line = { status: 'succeeded' as const, tenant: 'tenant-once' };
    const first = await countLine(ferry.services, batchId, 7, line);
    const again = await countLine(ferry.services, batchId, 7, line);
    assert.equal(first.completed, 1);
    assert.equal(again.completed, 1);
    await ferry.services.activity.flush();
    assert.equal(await countedLines(), 1);
  });

  test('/v1/activity has the last hour: each tenant its own counts, everyone the calls per model and the queues', async () => {
    const client = ferry.client();
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'count me' }] });
    const batch = await createBatch(client, requests(5, 'act'));
    assert.equal((await waitFinal(client, batch.id, 60)).status, 'completed');
    await client.files.create({ file: await toFile(Buffer.alloc(300_000, 7), 'bytes.bin'), purpose: 'user_data' });

    const series = (body: any, name: string, subject: Record<string, string>) =>
      body.series.find((s: any) => s.name === name && Object.entries(subject).every(([k, v]) => s[k] === v));
    const total = (s: any) => (s?.values ?? []).reduce((a: number, v: number | null) => a + (v ?? 0), 0);

    const a = await eventually(
      async () => {
        const r = (await json(await ferry.fetch('/v1/activity'))).body;
        const sampled = series(r, 'queued', { queue: 'generate' }) && series(r, 'admitted_rate', { model: MODEL });
        return total(series(r, 'lines', { tenant: 'tenant-a' })) >= 5 &&
          total(series(r, 'upload_bytes', { tenant: 'tenant-a' })) > 0 &&
          sampled
          ? r
          : null;
      },
      30_000,
      'tenant-a activity with samples',
    );
    assert.equal(a.object, 'activity');
    assert.equal(a.bucket_width_seconds, 10);
    assert.equal(a.buckets.length, 360);
    assert.equal(a.end_time - a.start_time, 3600);
    for (const s of a.series) assert.equal(s.values.length, 360, `${s.name} has a value per bucket`);
    assert.ok(total(series(a, 'completions', { tenant: 'tenant-a' })) >= 1);
    assert.ok(total(series(a, 'calls', { model: MODEL })) >= 6);
    assert.equal(
      series(a, 'upload_bytes', { tenant: 'tenant-a' }) && total(series(a, 'upload_bytes', { tenant: 'tenant-a' })) >= 300_000,
      true,
    );
    assert.equal(Math.max(...series(a, 'admitted_rate', { model: MODEL }).values.filter((v: any) => v !== null)), 10);
    assert.ok(!a.series.some((s: any) => s.tenant && s.tenant !== 'tenant-a'), 'no other tenant’s series');

    // Tenant b sees the shared series, not tenant a's.
    const b = (await json(await ferry.fetch('/v1/activity', { key: KEYS.b }))).body;
    assert.equal(series(b, 'lines', { tenant: 'tenant-a' }), undefined);
    assert.ok(total(series(b, 'calls', { model: MODEL })) >= 6);
    // The admin sees every tenant's, or one with ?tenant=.
    const all = (await json(await ferry.fetch('/v1/activity', { key: KEYS.admin }))).body;
    assert.ok(series(all, 'completions', { tenant: 'tenant-b' }), 'tenant b’s job from the test before');
    assert.ok(series(all, 'lines', { tenant: 'tenant-a' }));
    const onlyB = (await json(await ferry.fetch('/v1/activity?tenant=tenant-b&seconds=600', { key: KEYS.admin }))).body;
    assert.equal(onlyB.buckets.length, 60);
    assert.ok(!onlyB.series.some((s: any) => s.tenant && s.tenant !== 'tenant-b'));

    const bad = await json(await ferry.fetch('/v1/activity?seconds=99999'));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'seconds');
  });
});

describe('the activity under a quota Gemini does not state', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({ emulator: { quota: { rpm: 300, statesLimit: false }, latency: { kind: 'fixed', ms: 300 } } });
  });
  after(() => ferry.close());

  test('its 429s are counted and the rate learned from them is drawn as the admitted rate', { timeout: 90_000 }, async () => {
    const post = () =>
      ferry.fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'respond-async' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'under quota' }] }),
      });
    const ids = await Promise.all(Array.from({ length: 80 }, async () => ((await (await post()).json()) as any).id as string));
    for (const id of ids) {
      const job = await eventually(
        async () => {
          const j = (await (await ferry.fetch(`/v1/jobs/${id}?wait=30`)).json()) as any;
          return j.status === 'succeeded' && j;
        },
        60_000,
        `job ${id}`,
      );
      assert.equal(job.status, 'succeeded');
    }
    assert.ok(ferry.emulator.stats().generateByModel[MODEL].refusedForQuota > 0, 'Gemini refused some calls for quota');
    const a = await eventually(
      async () => {
        const r = (await (await ferry.fetch('/v1/activity?seconds=600')).json()) as any;
        const rate = r.series.find((s: any) => s.name === 'admitted_rate' && s.model === MODEL);
        const refusals = r.series.find((s: any) => s.name === 'quota_refusals' && s.model === MODEL);
        return rate?.values.some((v: number | null) => v !== null && v > 0) && refusals && r;
      },
      20_000,
      'a learned rate sampled',
    );
    const refused = a.series.find((s: any) => s.name === 'quota_refusals' && s.model === MODEL);
    assert.ok(refused.values.reduce((n: number, v: number) => n + v, 0) > 0);
    // Learned, not configured: at most what the quota allows (300 a minute = 5 a second) with some margin.
    const learned = a.series
      .find((s: any) => s.name === 'admitted_rate' && s.model === MODEL)
      .values.filter((v: number | null) => v !== null);
    assert.ok(Math.max(...learned) <= 10, `learned rates ${learned.join(', ')}`);
  });
});
