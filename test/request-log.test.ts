import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import express from 'express';
import { pino } from 'pino';
import { REDACT_PATHS } from '../src/core/logger.js';
import { requestLog, requestLogger } from '../src/api/request-log.js';
import { registry } from '../src/core/metrics.js';

async function withApp(level: string, fn: (url: string, lines: Record<string, unknown>[]) => Promise<void>) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  const logger = pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
  const app = express();
  app.use(requestLog(logger));
  app.get('/ok', (req, res) => {
    res.locals.principal = { tenant: 'acme' };
    requestLogger(req).info({ note: 'inside' }, 'handler line');
    res.json({ ok: true });
  });
  app.get('/boom', (_req, res) => void res.status(503).json({ error: 'x' }));
  app.get('/readyz', (_req, res) => void res.status(503).json({ status: 'not_ready' }));
  app.get('/slow', (_req, res) => void setTimeout(() => res.end(), 500));
  app.get('/watch', (_req, res) => {
    res.locals.longPoll = true;
    setTimeout(() => res.end(), 500);
  });
  // A mounted sub-app (as Bull Board is) swaps the request's prototype for its own while it answers.
  const sub = express();
  sub.get('/page', (req, res) => {
    requestLogger(req).info('sub-app line');
    res.send('page');
  });
  app.use('/sub', sub);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, lines);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test('one line per request, tagged with the request id and tenant, never the key', async () => {
  await withApp('info', async (url, lines) => {
    const res = await fetch(`${url}/ok?x=1`, { headers: { authorization: 'Bearer sk-very-secret', 'x-request-id': 'trace-9' } });
    assert.equal(res.headers.get('x-request-id'), 'trace-9');
    await res.text();
    await new Promise((r) => setTimeout(r, 20));
    const inside = lines.find((l) => l.msg === 'handler line');
    assert.equal(inside?.reqId, 'trace-9');
    const done = lines.filter((l) => l.msg === 'request completed');
    assert.equal(done.length, 1);
    assert.equal(done[0].reqId, 'trace-9');
    assert.deepEqual(done[0].req, { method: 'GET', url: '/ok?x=1' });
    assert.deepEqual(done[0].res, { statusCode: 200 });
    assert.equal(done[0].tenant, 'acme');
    assert.equal(typeof done[0].responseTime, 'number');
    assert.ok(!JSON.stringify(lines).includes('sk-very-secret'));
    // Counted once, by its route.
    assert.match(await registry.metrics(), /ferry_http_requests_total\{method="GET",route="\/ok",status="200"\} 1\n/);
  });
});

test('a 5xx is logged at error; a malformed request id is replaced', async () => {
  await withApp('error', async (url, lines) => {
    const res = await fetch(`${url}/boom`, { headers: { 'x-request-id': 'bad id with spaces' } });
    await res.text();
    assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].level, 50);
    assert.deepEqual(lines[0].res, { statusCode: 503 });
  });
});

test('a request the client hangs up on is logged at warn, not as an error', async () => {
  await withApp('info', async (url, lines) => {
    const hangUp = new AbortController();
    const pending = fetch(`${url}/slow`, { signal: hangUp.signal });
    await new Promise((r) => setTimeout(r, 50));
    hangUp.abort();
    await assert.rejects(pending);
    await new Promise((r) => setTimeout(r, 50));
    const aborted = lines.filter((l) => l.msg === 'request aborted');
    assert.equal(aborted.length, 1);
    assert.equal(aborted[0].level, 40);
    assert.deepEqual(aborted[0].res, { statusCode: null });
  });
});

test('a long-poll the client leaves (a console page moving on) is logged at debug, not warn', async () => {
  await withApp('debug', async (url, lines) => {
    const leave = new AbortController();
    const pending = fetch(`${url}/watch`, { signal: leave.signal });
    await new Promise((r) => setTimeout(r, 50));
    leave.abort();
    await assert.rejects(pending);
    await new Promise((r) => setTimeout(r, 50));
    const left = lines.filter((l) => l.msg === 'long-poll left by the client');
    assert.equal(left.length, 1);
    assert.equal(left[0].level, 20);
    assert.equal(lines.filter((l) => l.msg === 'request aborted').length, 0);
  });
});

test('a request answered by a mounted sub-app is logged like any other, without throwing', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    await withApp('info', async (url, lines) => {
      const res = await fetch(`${url}/sub/page`, { headers: { 'x-request-id': 'sub-1' } });
      assert.equal(await res.text(), 'page');
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(lines.find((l) => l.msg === 'sub-app line')?.reqId, 'sub-1');
      const done = lines.filter((l) => l.msg === 'request completed');
      assert.equal(done.length, 1);
      assert.deepEqual(done[0].req, { method: 'GET', url: '/sub/page' });
    });
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  assert.deepEqual(uncaught, []);
});

test('readiness probes (a process starting, an orchestrator polling) are debug lines: none at info, never an error', async () => {
  await withApp('info', async (url, lines) => {
    await (await fetch(`${url}/readyz`)).text();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(lines.filter((l) => l.msg === 'request completed').length, 0);
  });
  await withApp('debug', async (url, lines) => {
    await (await fetch(`${url}/readyz`)).text();
    await new Promise((r) => setTimeout(r, 20));
    const done = lines.filter((l) => l.msg === 'request completed');
    assert.equal(done.length, 1);
    assert.equal(done[0].level, 20);
    assert.deepEqual(done[0].res, { statusCode: 503 });
  });
});
