/**
 * The learned rate's rules, on the admission itself against a real Redis: a rate the workers do not
 * use does not grow, a 429 that states its limit cuts to just under it, and the slow start does not
 * widen before anything has been answered.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { Admission, type AdmissionRequest, type Decision } from '../src/core/admission.js';
import { Keys } from '../src/core/keys.js';
import { deleteByPrefix } from './redis-keys.js';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `ferry-test-admission-${randomBytes(4).toString('hex')}`;
after(async () => {
  await deleteByPrefix(redis, prefix);
  redis.disconnect();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 0;

/** Runs `fn` with an admission of its own for `model` (no rate configured), closed afterwards. */
async function withAdmission(model: string, fn: (admission: Admission) => Promise<void>): Promise<void> {
  const admission = new Admission(redis, new Keys(prefix), { apiKey: `key-${model}`, rpm: 0, tpm: 0 });
  try {
    await fn(admission);
  } finally {
    admission.close();
  }
}

const request = (model: string): AdmissionRequest => ({ model, tenant: 't', lane: 'interactive', tokens: 10, jobId: `j${seq++}` });

async function rateOf(model: string): Promise<number> {
  const [key] = await redis.keys(`${prefix}:quota:*:${model}`);
  return Number(await redis.hget(key, 'rate'));
}

/** Admits one call and, once its turn comes, reports it answered (what a worker does). */
async function callOnce(admission: Admission, model: string): Promise<Decision> {
  const req = request(model);
  const decision = await admission.admit(req);
  if (decision.go) {
    await sleep(decision.waitMs);
    await admission.succeeded(req, decision, 10);
    admission.finished(req, decision);
  }
  return decision;
}

describe('the learned rate', () => {
  test('grows only to a margin above the calls admitted: a rate the workers do not use says nothing of the quota', async () => {
    const model = 'm-unused';
    await withAdmission(model, async (admission) => {
      // A 429 stating no limit after a few calls: a learned rate exists from here on.
      for (let i = 0; i < 12; i++) await callOnce(admission, model);
      await admission.refused(model, { retryAfterMs: 0, limits: {} });
      const start = await rateOf(model);
      assert.ok(start > 0, 'a rate was learned');
      // Four seconds of bursts of 3 calls, each burst filling the schedule (so the rate "binds"),
      // but 3 calls a second are far below any rate a quota allows: the rate may not run away.
      for (let s = 0; s < 4; s++) {
        await Promise.all([0, 1, 2].map(() => callOnce(admission, model)));
        await sleep(1000);
      }
      const rate = await rateOf(model);
      assert.ok(
        rate <= Math.max(start, 3 * 1.25 + 1) + 0.01,
        `the rate grew to ${rate.toFixed(2)}/s from ${start.toFixed(2)}/s on 3 calls a second`,
      );
    });
  });

  test('a 429 that states its limit cuts to just under it and recovers toward it, not toward the rate refused', async () => {
    const model = 'm-stated';
    await withAdmission(model, async (admission) => {
      await admission.refused(model, { retryAfterMs: 0, limits: { rpm: 600 } });
      assert.equal((await rateOf(model)).toFixed(2), (10 * 0.97).toFixed(2));
      // Raised far above the stated limit (as a probe beyond an old cap would), then refused again.
      const [key] = await redis.keys(`${prefix}:quota:*:${model}`);
      await redis.hset(key, 'rate', 40, 'cut', 0);
      await admission.refused(model, { retryAfterMs: 0, limits: { rpm: 600 } });
      assert.ok((await rateOf(model)) <= 10 * 0.97 + 1e-9, `cut to ${(await rateOf(model)).toFixed(2)}/s, not 0.8 × 40`);
      assert.ok(Number(await redis.hget(key, 'ceiling')) <= 10, 'recovers toward the stated limit');
    });
  });

  test('a 429 for a call admitted before the last cut does not cut again: it was refused at the old rate', async () => {
    const model = 'm-stale';
    await withAdmission(model, async (admission) => {
      for (let i = 0; i < 12; i++) await callOnce(admission, model);
      const before = Date.now();
      await admission.refused(model, { retryAfterMs: 0, limits: {} });
      const first = await rateOf(model);
      await sleep(700); // past the episode's own half second
      await admission.refused(model, { retryAfterMs: 0, limits: {}, admittedAt: before - 1 });
      assert.equal(await rateOf(model), first, 'a stale refusal leaves the rate');
      await admission.refused(model, { retryAfterMs: 0, limits: {}, admittedAt: Date.now() });
      assert.ok((await rateOf(model)) < first, 'a refusal at the new rate cuts it');
    });
  });

  test('with no limit known, the slow start stops widening while nothing is answered (a stall)', async () => {
    const model = 'm-stall';
    await withAdmission(model, async (admission) => {
      const first = request(model);
      const firstTurn = await admission.admit(first);
      await admission.succeeded(first, firstTurn, 10);
      admission.finished(first, firstTurn);
      // One answer, then nothing for two and a half seconds: time alone would have doubled the
      // window five times (to 544); answers stopped after the first, so it doubles for a second at most.
      await sleep(2500);
      let sent = 0;
      for (let i = 0; i < 300; i++) if ((await admission.admit(request(model))).go) sent++;
      assert.ok(sent <= 17 * 4, `${sent} calls sent with nothing answered for 2.5 s`);
    });
  });

  test('with no limit known, the slow start keeps its first window until something is answered', async () => {
    const model = 'm-slow';
    const held: Array<{ req: AdmissionRequest; decision: Decision }> = [];
    await withAdmission(model, async (admission) => {
      // Nothing answers for two seconds (a slow model, or a starved process): time alone would
      // have doubled the window four times.
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline) {
        const req = request(model);
        const decision = await admission.admit(req);
        if (decision.go) held.push({ req, decision });
        else await sleep(20);
      }
      assert.equal(held.length, 16, 'the first window, not a doubled one');
      // A first answer starts the clock: the window widens by one per success and doubles with time.
      for (const h of held.splice(0)) {
        await admission.succeeded(h.req, h.decision, 10);
        admission.finished(h.req, h.decision);
      }
      await sleep(1100);
      let more = 0;
      for (let i = 0; i < 100; i++) if ((await admission.admit(request(model))).go) more++;
      assert.ok(more > 32, `${more} calls in flight after the first answers`);
    });
  });
});
