import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { emit } from '../src/domain/webhooks.js';
import { KEYS, eventually, startFerry, type Ferry } from './harness.js';

const MODEL = 'gemini-2.0-flash';

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver on loopback whose answer per path can be scripted. */
class Receiver {
  received: Received[] = [];
  script = new Map<string, number[]>();
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      this.received.push({ path: req.url ?? '', headers: req.headers, body });
      const queue = this.script.get(req.url ?? '');
      const status = queue && queue.length ? queue.shift()! : 200;
      res.writeHead(status).end();
    });
  });
  port = 0;
  async listen(port = 0) {
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
  }
  async close() {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
  url(path: string) {
    return `http://127.0.0.1:${this.port}${path}`;
  }
  at(path: string) {
    return this.received.filter((r) => r.path === path);
  }
}

function verify(secret: string, r: Received): any {
  return new Webhook(secret).verify(r.body, {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  });
}

describe('webhooks', () => {
  let ferry: Ferry;
  let rx: Receiver;
  const json = (method: string, body?: unknown, key: string = KEYS.a) => ({
    key,
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const register = async (path: string, extra: Record<string, unknown> = {}, key: string = KEYS.a) => {
    const res = await ferry.fetch('/v1/webhook_endpoints', json('POST', { url: rx.url(path), ...extra }, key));
    assert.equal(res.status, 201);
    return res.json();
  };

  before(async () => {
    rx = new Receiver();
    await rx.listen();
    ferry = await startFerry({
      env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1', FERRY_WEBHOOK_RETRY_SCHEDULE: '0,0.2,0.2,0.2,0.2', FERRY_SYNC_WAIT_SECONDS: '20' },
    });
  });
  after(async () => {
    await ferry.close();
    await rx.close();
  });

  test('a job with webhook_url: the receiver verifies job.succeeded once, with the result', async () => {
    const ep = await register('/endpoint', { events: ['file.processed'] });
    assert.match(ep.secret, /^whsec_/);
    assert.equal((await (await ferry.fetch(`/v1/webhook_endpoints/${ep.id}`)).json()).secret, undefined, 'the secret is shown once');
    const res = await ferry.fetch(
      '/v1/chat/completions',
      json('POST', { model: MODEL, messages: [{ role: 'user', content: 'notify me' }], webhook_url: rx.url('/job-hook') }),
    );
    assert.equal(res.status, 200);
    const completion = await res.json();
    await eventually(async () => rx.at('/job-hook').length >= 1, 10_000, 'delivery');
    await new Promise((r) => setTimeout(r, 500));
    const got = rx.at('/job-hook');
    assert.equal(got.length, 1, 'delivered once');
    const event = verify(ep.secret, got[0]);
    assert.equal(event.type, 'job.succeeded');
    assert.match(event.id, /^evt_/);
    assert.equal(got[0].headers['webhook-id'], event.id);
    assert.equal(event.data.object, 'job');
    assert.equal(event.data.status, 'succeeded');
    assert.equal(event.data.result.id, completion.id);
    assert.equal(rx.at('/endpoint').length, 0, 'the endpoint filtered to file.processed got nothing');
  });

  test('receiver answers 500 twice then 200: one event, three attempts, one webhook-id', async () => {
    rx.script.set('/flaky', [500, 500]);
    const ep = await register('/flaky');
    await emit(ferry.services, { type: 'job.succeeded', tenant: 'tenant-a', objectId: 'job-flaky', data: { id: 'job-flaky' } });
    await eventually(async () => rx.at('/flaky').length >= 3, 10_000, 'three attempts');
    const got = rx.at('/flaky');
    assert.equal(new Set(got.map((g) => g.headers['webhook-id'])).size, 1);
    for (const g of got) verify(ep.secret, g);
    const list = await (await ferry.fetch(`/v1/webhook_deliveries?endpoint_id=${ep.id}`)).json();
    const d = await eventually(
      async () => {
        const one = await (await ferry.fetch(`/v1/webhook_deliveries/${list.data[0].id}`)).json();
        return one.status === 'succeeded' ? one : null;
      },
      5000,
      'succeeded',
    );
    assert.deepEqual(
      d.attempts.map((a: any) => a.status_code),
      [500, 500, 200],
    );
  });

  test('receiver down for a stretch, then up: every event delivered after, none lost, none with a new id', async () => {
    const down = new Receiver();
    await down.listen();
    const port = down.port;
    await down.close();
    const res = await ferry.fetch('/v1/webhook_endpoints', json('POST', { url: `http://127.0.0.1:${port}/down` }, KEYS.b));
    const ep = await res.json();
    for (let i = 0; i < 10; i++) {
      await emit(ferry.services, { type: 'job.succeeded', tenant: 'tenant-b', objectId: `job-down-${i}`, data: { id: `job-down-${i}` } });
    }
    await new Promise((r) => setTimeout(r, 500));
    const up = new Receiver();
    await up.listen(port);
    try {
      await eventually(async () => new Set(up.received.map((r) => r.headers['webhook-id'])).size >= 10, 15_000, 'all ten');
      const ids = new Set(up.received.map((r) => verify(ep.secret, r).id));
      assert.equal(ids.size, 10);
      const deliveries = (await (await ferry.fetch(`/v1/webhook_deliveries?endpoint_id=${ep.id}`, { key: KEYS.b })).json()).data;
      assert.ok(
        deliveries.every((d: any) => d.attempts.length >= 2 && d.attempts[0].status_code === null),
        'first attempts failed to connect',
      );
      assert.deepEqual(new Set(deliveries.map((d: any) => d.event_id)), ids, 'same ids as when the receiver was down');
    } finally {
      await up.close();
    }
  });

  test('500 events to one endpoint: all delivered, ids unique, payloads verify', { timeout: 60_000 }, async (t) => {
    const rx500 = new Receiver();
    await rx500.listen();
    try {
      const res = await ferry.fetch('/v1/webhook_endpoints', json('POST', { url: rx500.url('/many') }, 'sk-test-admin'));
      const ep = await res.json();
      const started = Date.now();
      for (let i = 0; i < 500; i++) {
        await emit(ferry.services, {
          type: 'job.succeeded',
          tenant: 'admin',
          objectId: `job-many-${i}`,
          data: { id: `job-many-${i}`, n: i },
        });
      }
      await eventually(async () => rx500.received.length >= 500, 50_000, '500 deliveries');
      const seconds = (Date.now() - started) / 1000;
      t.diagnostic(`delivered 500 events in ${seconds.toFixed(2)} s: ${(500 / seconds).toFixed(0)} events/s`);
      const events = rx500.received.map((r) => verify(ep.secret, r));
      assert.equal(new Set(events.map((e) => e.id)).size, 500);
      assert.deepEqual(new Set(events.map((e) => e.data.n)).size, 500);
    } finally {
      await rx500.close();
    }
  });

  test('dead letter after the last try; replay succeeds with the same webhook-id', async () => {
    rx.script.set('/dead', [500, 500, 500, 500, 500]);
    const ep = await register('/dead');
    await emit(ferry.services, { type: 'job.failed', tenant: 'tenant-a', objectId: 'job-dead', data: { id: 'job-dead' } });
    const failed = await eventually(
      async () => {
        const list = (await (await ferry.fetch(`/v1/webhook_deliveries?status=failed&endpoint_id=${ep.id}`)).json()).data;
        return list[0];
      },
      10_000,
      'dead letter',
    );
    assert.equal(failed.attempts.length, 5);
    assert.ok(failed.attempts.every((a: any) => a.status_code === 500));
    const retried = await ferry.fetch(`/v1/webhook_deliveries/${failed.id}/retry`, json('POST'));
    assert.equal(retried.status, 202);
    const ok = await eventually(
      async () => {
        const d = await (await ferry.fetch(`/v1/webhook_deliveries/${failed.id}`)).json();
        return d.status === 'succeeded' ? d : null;
      },
      10_000,
      'replayed',
    );
    assert.equal(ok.attempts.at(-1).status_code, 200);
    const got = rx.at('/dead');
    assert.equal(new Set(got.map((g) => g.headers['webhook-id'])).size, 1);
    verify(ep.secret, got.at(-1)!);
  });

  test('410 Gone disables the endpoint', async () => {
    rx.script.set('/gone', [410]);
    const ep = await register('/gone');
    await emit(ferry.services, { type: 'job.succeeded', tenant: 'tenant-a', objectId: 'job-gone', data: {} });
    const e = await eventually(
      async () => {
        const one = await (await ferry.fetch(`/v1/webhook_endpoints/${ep.id}`)).json();
        return one.enabled === false ? one : null;
      },
      10_000,
      'disabled',
    );
    assert.match(e.disabled_reason, /410/);
    assert.equal(rx.at('/gone').length, 1, 'no retries after 410');
    // The tenant's other endpoints hear of it.
    const notice = await eventually(
      async () => rx.received.find((r) => r.body.includes('"webhook_endpoint.disabled"')),
      10_000,
      'disabled event',
    );
    // The endpoint as GET answers it.
    const now = await (await ferry.fetch(`/v1/webhook_endpoints/${ep.id}`)).json();
    assert.deepEqual(JSON.parse(notice.body).data, now);
  });

  test('secret rotation: both signatures present during the overlap; each verifies', async () => {
    const ep = await register('/rotate');
    const rotated = await (await ferry.fetch(`/v1/webhook_endpoints/${ep.id}/rotate_secret`, json('POST'))).json();
    assert.notEqual(rotated.secret, ep.secret);
    await emit(ferry.services, { type: 'job.succeeded', tenant: 'tenant-a', objectId: 'job-rotate', data: {} });
    await eventually(async () => rx.at('/rotate').length >= 1, 10_000, 'delivery');
    const got = rx.at('/rotate')[0];
    assert.equal(String(got.headers['webhook-signature']).split(' ').length, 2);
    assert.equal(verify(ep.secret, got).type, 'job.succeeded');
    assert.equal(verify(rotated.secret, got).type, 'job.succeeded');
  });

  test('an event over the size limit carries the object without its result', async () => {
    const small = await startFerry({
      env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1', FERRY_WEBHOOK_MAX_PAYLOAD_BYTES: '2048' },
      workers: true,
    });
    try {
      const res = await small.fetch('/v1/webhook_endpoints', json('POST', { url: rx.url('/big') }));
      const ep = await res.json();
      await emit(small.services, {
        type: 'job.succeeded',
        tenant: 'tenant-a',
        objectId: 'job-big',
        data: { id: 'job-big', result: { text: 'x'.repeat(10_000) } },
      });
      await eventually(async () => rx.at('/big').length >= 1, 10_000, 'delivery');
      const event = verify(ep.secret, rx.at('/big')[0]);
      assert.equal(event.data.id, 'job-big');
      assert.equal(event.data.result, undefined);
      assert.equal(event.data.result_omitted, true);
    } finally {
      await small.close();
    }
  });

  test('endpoints are per tenant and managed with list, patch and delete', async () => {
    const ep = await register('/mine');
    assert.equal((await ferry.fetch(`/v1/webhook_endpoints/${ep.id}`, { key: KEYS.b })).status, 404);
    const patched = await (
      await ferry.fetch(`/v1/webhook_endpoints/${ep.id}`, json('PATCH', { enabled: false, events: ['job.failed'] }))
    ).json();
    assert.equal(patched.enabled, false);
    assert.deepEqual(patched.events, ['job.failed']);
    const list = await (await ferry.fetch('/v1/webhook_endpoints')).json();
    assert.ok(list.data.some((e: any) => e.id === ep.id));
    assert.ok(list.data.every((e: any) => e.secret === undefined));
    assert.equal((await ferry.fetch(`/v1/webhook_endpoints/${ep.id}`, json('DELETE'))).status, 200);
    assert.equal((await ferry.fetch(`/v1/webhook_endpoints/${ep.id}`)).status, 404);
  });
});

describe('webhook SSRF guard (on by default)', () => {
  let ferry: Ferry;
  before(async () => {
    ferry = await startFerry({ workers: false });
  });
  after(() => ferry.close());

  const refused = [
    'http://169.254.169.254/latest/meta-data',
    'http://localhost/hook',
    'http://10.0.0.1/hook',
    'http://[::1]/hook',
    'http://127.0.0.1:9/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://100.64.0.1/hook',
    'http://[2002:7f00:1::]/hook',
    'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook',
    'http://[::127.0.0.1]/hook',
    'http://93.184.216.34:0/hook',
    `https://example.com/${'a'.repeat(2100)}`,
    'file:///etc/passwd',
    'gopher://example.com/',
    'not a url',
  ];
  for (const url of refused) {
    test(`refuses ${url.slice(0, 60)}`, async () => {
      const res = await ferry.fetch('/v1/webhook_endpoints', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url }),
      });
      assert.equal(res.status, 400);
      const body = await res.json();
      assert.equal(body.error.param, 'url');
    });
  }

  test('a webhook_url on a completion is guarded the same way', async () => {
    const res = await ferry.fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], webhook_url: 'http://127.0.0.1/x' }),
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.param, 'webhook_url');
  });
});
