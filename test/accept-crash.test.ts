/**
 * Acceptance killed between each two of its steps (claim, record, complete, enqueue) by
 * injection (FERRY_CRASH_AT), for a job, a file and a batch: a resend with the same
 * Idempotency-Key waits at most the lease, then answers the one record under the id the first
 * attempt claimed, with its work queued and the key complete.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { isPending } from '../src/core/enqueue.js';
import { FerryError } from '../src/core/errors.js';
import { newId } from '../src/core/ids.js';
import { BATCH_JOBS, jobIds } from '../src/core/queues.js';
import { newFileRecord } from '../src/core/records/files.js';
import { ACCEPT_STEPS } from '../src/domain/accept.js';
import { acceptRequest, FILE_BYTES, type Kind } from './accept-cases.js';
import { eventually, startFerry, type Ferry } from './harness.js';

const LEASE_MS = 1500;
const root = path.resolve(import.meta.dirname, '..');

let ferry: Ferry;
let batchInput: string;
before(async () => {
  // No workers: what acceptance queued stays where the test can see it.
  ferry = await startFerry({ workers: false, env: { FERRY_IDEMPOTENCY_LEASE_MS: String(LEASE_MS) } });
  batchInput = newId('file');
  const staged = await ferry.services.staging.write(batchInput, Readable.from(['{}\n']));
  const input = newFileRecord({
    id: batchInput,
    tenant: 'crash',
    filename: 'in.jsonl',
    purpose: 'batch',
    bytes: staged.bytes,
    sha256: staged.sha256,
    mime_type: 'application/jsonl',
    storage: 'local',
    contentRetentionSeconds: 3600,
  });
  await ferry.services.files.create(input);
});
after(() => ferry.close());

/** Runs one acceptance in a child process that SIGKILLs itself at `step`. */
async function acceptAndDie(kind: Kind, tenant: string, key: string, step: string): Promise<NodeJS.Signals | null> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/accept-child.ts'], {
    cwd: root,
    env: {
      ...process.env,
      ...ferry.env,
      FERRY_CRASH_AT: step,
      ACCEPT_KIND: kind,
      ACCEPT_TENANT: tenant,
      ACCEPT_KEY: key,
      ACCEPT_BATCH_INPUT: batchInput,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
}

async function queuedWork(kind: Kind, id: string) {
  const { queues } = ferry.services;
  if (kind === 'job' || kind === 'response' || kind === 'embedding') return queues.generate.of(id).getJob(id);
  if (kind === 'file') return queues.upload.getJob(jobIds.upload(id));
  return queues.batch.getJob(jobIds.batch(BATCH_JOBS.finalize, id));
}

const storeOf = (kind: Kind) => {
  const { jobs, files, batches } = ferry.services;
  return { job: jobs, response: jobs, embedding: jobs, file: files, batch: batches }[kind];
};

async function entry(tenant: string, key: string): Promise<{ id: string | null; lease?: number }> {
  return JSON.parse((await ferry.services.redis.get(ferry.services.keys.idempotency(tenant, key)))!);
}

/** The resend, as a client does it: again after `Retry-After` while the key is in progress. */
async function resend(kind: Kind, tenant: string, key: string) {
  const started = Date.now();
  let conflicts = 0;
  for (;;) {
    try {
      const out = await acceptRequest(ferry.services, { kind, tenant, key, batchInput });
      return { ...out, conflicts, waitedMs: Date.now() - started };
    } catch (err) {
      if (!(err instanceof FerryError) || err.code !== 'idempotency_in_progress') throw err;
      assert.ok(
        err.retryAfterSeconds! >= 1 && err.retryAfterSeconds! <= Math.ceil(LEASE_MS / 1000),
        `Retry-After ${err.retryAfterSeconds}`,
      );
      conflicts++;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function killedAt(kind: Kind, step: string) {
  const tenant = `crash-${kind}-${step.replace('.', '-')}`;
  const key = `key-${step}`;
  assert.equal(await acceptAndDie(kind, tenant, key, step), 'SIGKILL', `the child died at ${step}`);
  const claimed = await entry(tenant, key);
  assert.ok(claimed.id, 'the claim names the record id from the start');

  const again = await resend(kind, tenant, key);
  assert.equal(again.record.id, claimed.id, `${kind} after ${step}: the resend answers the first attempt's id`);
  assert.ok(again.waitedMs < LEASE_MS + 1000, `waited ${again.waitedMs} ms, at most the lease`);
  // Before the key was completed, a resend at once meets the dead holder's lease; afterwards, the record.
  const beforeComplete = step === 'accept.claimed' || step === 'accept.created';
  assert.equal(again.conflicts > 0, beforeComplete, `${kind} after ${step}: ${again.conflicts} answers of 409 first`);

  const listed = await storeOf(kind).list(tenant, { limit: 10, order: 'asc' });
  assert.deepEqual(
    listed.data.map((r) => r.id),
    [claimed.id],
    'exactly one record',
  );
  assert.ok(await queuedWork(kind, claimed.id!), 'its work is queued');
  assert.equal(await isPending(ferry.services, claimed.id!), false, 'and no longer pending');
  const done = await entry(tenant, key);
  assert.equal(done.id, claimed.id);
  assert.equal(done.lease, undefined, 'the key is complete, not in progress');

  const third = await acceptRequest(ferry.services, { kind, tenant, key, batchInput });
  assert.equal(third.record.id, claimed.id);
  assert.equal(third.created, false);
  if (kind === 'file') {
    const rec = (await ferry.services.files.get(claimed.id!))!;
    assert.equal(await ferry.services.staging.size(rec.staging_key), FILE_BYTES.length, 'the record names staged bytes that exist');
  }
}

for (const kind of ['job', 'response', 'embedding', 'file', 'batch'] as const) {
  test(`a ${kind}: killed after each step of acceptance, the resend reaches the one record`, { timeout: 60_000 }, async () => {
    await Promise.all(ACCEPT_STEPS.map((step) => killedAt(kind, step)));
  });
}

test('two resends racing for a lapsed claim make one record between them', { timeout: 30_000 }, async () => {
  const tenant = 'crash-race';
  assert.equal(await acceptAndDie('job', tenant, 'race', 'accept.claimed'), 'SIGKILL');
  await new Promise((r) => setTimeout(r, LEASE_MS + 50));
  const answers = await Promise.all(Array.from({ length: 8 }, () => resend('job', tenant, 'race')));
  assert.equal(new Set(answers.map((a) => a.record.id)).size, 1, 'every resend answers the same job');
  assert.equal(answers.filter((a) => a.created).length, 1, 'one of them made it');
  const listed = await ferry.services.jobs.list(tenant, { limit: 10, order: 'asc' });
  assert.equal(listed.data.length, 1);
});

test('a key left in progress by an earlier version (no lease, no id) is taken over', async () => {
  const tenant = 'crash-legacy';
  const { fingerprint } = await import('../src/core/idempotency.js');
  const body = { model: 'gemini-2.0-flash', messages: [{ role: 'user', content: 'Summarise the report.' }] };
  await ferry.services.redis.set(
    ferry.services.keys.idempotency(tenant, 'old'),
    JSON.stringify({ fp: fingerprint(body), id: null }),
    'EX',
    86400,
  );
  const out = await acceptRequest(ferry.services, { kind: 'job', tenant, key: 'old', batchInput });
  assert.equal(out.created, true);
  assert.equal((await entry(tenant, 'old')).id, out.record.id);
});

test('the same key with another body is still 422, and a live holder still 409 with Retry-After', async () => {
  const tenant = 'crash-live';
  const { fingerprint } = await import('../src/core/idempotency.js');
  const k = ferry.services.keys.idempotency(tenant, 'live');
  await ferry.services.redis.set(k, JSON.stringify({ fp: 'another body', id: 'job-x' }), 'EX', 60);
  await assert.rejects(acceptRequest(ferry.services, { kind: 'job', tenant, key: 'live', batchInput }), { code: 'idempotency_key_reused' });
  const body = { model: 'gemini-2.0-flash', messages: [{ role: 'user', content: 'Summarise the report.' }] };
  const held = ferry.services.idempotency;
  const claim = await held.claim(tenant, 'live2', fingerprint(body), newId('job'));
  assert.equal(claim.state, 'first');
  const stop = held.hold(tenant, 'live2', (claim as { owner: string }).owner);
  try {
    // Renewed, the claim outlives its lease.
    await new Promise((r) => setTimeout(r, LEASE_MS * 2));
    await assert.rejects(acceptRequest(ferry.services, { kind: 'job', tenant, key: 'live2', batchInput }), (err: FerryError) => {
      assert.equal(err.status, 409);
      assert.equal(err.code, 'idempotency_in_progress');
      assert.ok(err.retryAfterSeconds! >= 1);
      return true;
    });
  } finally {
    stop();
  }
  await eventually(
    () =>
      acceptRequest(ferry.services, { kind: 'job', tenant, key: 'live2', batchInput }).then(
        (a) => a.created,
        () => false,
      ),
    LEASE_MS + 2000,
    'the claim to lapse once no longer renewed',
  );
});

test('a create or a claim that a reconnecting client sends again answers as the first time; another one does not', async () => {
  const { withScripts } = await import('../src/core/scripts/index.js');
  const redis = withScripts(ferry.services.redis);
  const key = ferry.services.keys.record('job', newId('job'));
  const fields = ['status', '"queued"', 'tenant', '"crash-replay"'];
  assert.equal(await redis.ferryCreate(key, 60, '"token-1"', ...fields), 1);
  assert.equal(await redis.ferryCreate(key, 60, '"token-1"', ...fields), 1, 'the same create, replayed');
  assert.equal(await redis.ferryCreate(key, 60, '"token-2"', ...fields), 0, 'another create of the same id');
  const rec = await ferry.services.jobs.get(key.slice(key.lastIndexOf(':') + 1));
  assert.deepEqual(rec, { status: 'queued', tenant: 'crash-replay' }, 'the token is not part of the record');

  const idem = ferry.services.keys.idempotency('crash-replay', 'k');
  const first = await redis.ferryIdemClaim(idem, 'fp', 'job-1', 'owner-1', 60_000, 60);
  assert.deepEqual(first.slice(0, 2), ['claimed', 'job-1']);
  assert.deepEqual((await redis.ferryIdemClaim(idem, 'fp', 'job-1', 'owner-1', 60_000, 60)).slice(0, 2), ['claimed', 'job-1']);
  assert.deepEqual((await redis.ferryIdemClaim(idem, 'fp', 'job-2', 'owner-2', 60_000, 60)).slice(0, 2), ['busy', 'job-1']);
});

test('a request that fails after a record may exist under its key leaves the key to lapse, never freed for a second record', async () => {
  const { acceptOnce } = await import('../src/domain/accept.js');
  const { newJobRecord } = await import('../src/domain/jobs.js');
  const { validateChatRequest } = await import('../src/openai/chat.js');
  const { enqueueGenerate } = await import('../src/core/enqueue.js');
  const body = { model: 'gemini-2.0-flash', messages: [{ role: 'user', content: 'Summarise the report.' }] };
  const tenant = 'crash-no-release';
  const attempt = (enqueue: (rec: any) => Promise<void>) =>
    acceptOnce(ferry.services, {
      store: ferry.services.jobs,
      record: newJobRecord({ id: newId('job'), tenant, chat: validateChatRequest(body) }),
      idempotencyKey: 'k',
      fingerprintOf: [body],
      enqueue,
    });
  const queueDown = async () => {
    throw new Error('the queue is out of reach');
  };
  // The first attempt dies with its record made; a resend takes the lapsed claim over and cannot queue the work.
  assert.equal(await acceptAndDie('job', tenant, 'k', 'accept.created'), 'SIGKILL');
  await new Promise((r) => setTimeout(r, LEASE_MS + 50));
  await assert.rejects(attempt(queueDown), /out of reach/);
  const held = await entry(tenant, 'k');
  assert.ok(held.lease, 'the key is still held (its lease lapses), not freed');
  // A resend after the lease: the one record under the first id, queued now.
  await new Promise((r) => setTimeout(r, LEASE_MS + 50));
  const again = await attempt((rec) => enqueueGenerate(ferry.services, rec));
  assert.equal(again.record.id, held.id);
  assert.equal((await ferry.services.jobs.list(tenant, { limit: 10, order: 'asc' })).data.length, 1);
  assert.ok(await ferry.services.queues.generate.of(held.id!).getJob(held.id!));
});
