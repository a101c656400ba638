/** /metrics beyond loopback: behind FERRY_METRICS_KEY, or served openly only when it says `none`. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFerry } from './harness.js';

test('listening on every interface, /metrics asks for FERRY_METRICS_KEY; with the key set, only its bearer is served', async () => {
  const open = await startFerry({ env: { HOST: '0.0.0.0' } });
  try {
    const refused = await open.fetch('/metrics', { key: null });
    assert.equal(refused.status, 401);
    const body = await refused.json();
    assert.match(body.error.message, /FERRY_METRICS_KEY/);
    assert.equal(body.error.code, 'metrics_key_required');
  } finally {
    await open.close();
  }
  const keyed = await startFerry({ env: { HOST: '0.0.0.0', FERRY_METRICS_KEY: 'scrape-me' } });
  try {
    const wrong = await keyed.fetch('/metrics', { key: 'not-it' });
    assert.equal(wrong.status, 401);
    assert.equal((await wrong.json()).error.code, 'invalid_metrics_key');
    const right = await keyed.fetch('/metrics', { key: 'scrape-me' });
    assert.equal(right.status, 200);
    assert.match(await right.text(), /ferry_http_requests_total/);
  } finally {
    await keyed.close();
  }
  const none = await startFerry({ env: { HOST: '0.0.0.0', FERRY_METRICS_KEY: 'none' } });
  try {
    assert.equal((await none.fetch('/metrics', { key: null })).status, 200);
  } finally {
    await none.close();
  }
});
