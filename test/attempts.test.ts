/** The attempt policy (core/attempts.ts): which failures are tried again, and which try is the last. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { isLastAttempt, isTransient } from '../src/core/attempts.js';
import { UpstreamError } from '../src/core/errors.js';
import { freePort } from './harness.js';

test('Redis out of reach is transient, as ioredis reports it to a connection that answers requests', async () => {
  const port = await freePort();
  // As Ferry's records connection is set up (core/redis.ts): no retries per request.
  const redis = new Redis({ port, maxRetriesPerRequest: 0, retryStrategy: () => 200, lazyConnect: true });
  redis.on('error', () => {});
  const err = await redis.hget('job:x', 'status').then(
    () => null,
    (e: unknown) => e,
  );
  redis.disconnect();
  assert.ok(err, 'the command failed');
  assert.equal(isTransient(err), true, `${(err as Error).name}: ${(err as Error).message}`);
});

test('upstream failures: 503 and 429 are transient, 400 and a plain bug are not', () => {
  assert.equal(isTransient(new UpstreamError('busy', { upstreamStatus: 503, retryable: true })), true);
  assert.equal(isTransient(new UpstreamError('slow down', { upstreamStatus: 429, retryable: true })), true);
  assert.equal(isTransient(new UpstreamError('bad', { upstreamStatus: 400, retryable: false })), false);
  assert.equal(isTransient(new TypeError('x is undefined')), false);
});

test('the last attempt is the one after attempts − 1 made', () => {
  assert.equal(isLastAttempt({ attemptsMade: 0, opts: { attempts: 3 } }), false);
  assert.equal(isLastAttempt({ attemptsMade: 2, opts: { attempts: 3 } }), true);
  assert.equal(isLastAttempt({ attemptsMade: 0, opts: {} }), true);
});
