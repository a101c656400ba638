/**
 * Quota, latency, batch schedule and fileData URL trust of the standalone emulator from its
 * environment, so a benchmark can run it under production conditions without code:
 *
 *   FERRY_EMULATOR_RPM, FERRY_EMULATOR_TPM             per-model limits of every model (0 = unlimited)
 *   FERRY_EMULATOR_QUOTA_STATES_LIMIT=0                the quota 429s do not state their limit (no
 *                                                      quotaValue); 1 (default) they do
 *   FERRY_EMULATOR_QUOTA_DETAIL=none                   the quota 429s are Vertex AI's bare body, no
 *                                                      details at all (default full)
 *   FERRY_EMULATOR_QUOTA_SHARED_SHARE                  0 ≤ x < 1: another client spends that share of
 *                                                      every limit (default 0)
 *   FERRY_EMULATOR_QUOTA_SCHEDULE                      the quota moves: ms:rpm[:tpm] steps after start,
 *                                                      comma-separated, e.g. 30000:600,60000:2400
 *   FERRY_EMULATOR_LATENCY_MS                          fixed service time of model calls, or
 *   FERRY_EMULATOR_LATENCY_MEDIAN_MS + _P99_MS         a lognormal one
 *   FERRY_EMULATOR_BATCH_PENDING_MS                    how long a new batch stays PENDING (default 200)
 *   FERRY_EMULATOR_BATCH_RUNNING_MS                    then how long it stays RUNNING (default 500)
 *   FERRY_EMULATOR_FILE_URI_CA                         a PEM file whose certificates the emulator trusts
 *                                                      when it fetches a fileData https URL (a local
 *                                                      server's self-signed certificate)
 *
 * Unset or empty variables leave the emulator's default (unlimited, no delay, the batch defaults,
 * Node's roots only).
 */

import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/config.js';
import { MAX_BATCH_PERIOD_MS } from './batch-store.js';
import { MAX_LATENCY_MS } from './latency.js';
import { MAX_SCHEDULE_STEPS } from './quota-setting.js';
import type { BatchSetting, EmulatorOptions, FileUriTls, LatencySetting, QuotaSetting, QuotaStep } from './types.js';

type Env = Record<string, string | undefined>;

const given = (env: Env, name: string) => {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
};

function readNumber(env: Env, name: string, what: string, ok: (n: number) => boolean): number | undefined {
  const raw = given(env, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!ok(n)) throw new ConfigError(name, `must be ${what}, not ${JSON.stringify(env[name])}.`);
  return n;
}

const limit = (env: Env, name: string) =>
  readNumber(env, name, 'a non-negative integer (0 = unlimited)', (n) => Number.isSafeInteger(n) && n >= 0);

const millis = (env: Env, name: string, positive: boolean, max = MAX_LATENCY_MS) =>
  readNumber(
    env,
    name,
    `a number of milliseconds in ${positive ? '(0' : '[0'}, ${max}]`,
    (n) => Number.isFinite(n) && (positive ? n > 0 : n >= 0) && n <= max,
  );

function batchSchedule(env: Env): Partial<BatchSetting> | undefined {
  const pendingMs = millis(env, 'FERRY_EMULATOR_BATCH_PENDING_MS', false, MAX_BATCH_PERIOD_MS);
  const runningMs = millis(env, 'FERRY_EMULATOR_BATCH_RUNNING_MS', false, MAX_BATCH_PERIOD_MS);
  if (pendingMs === undefined && runningMs === undefined) return undefined;
  return { ...(pendingMs !== undefined ? { pendingMs } : {}), ...(runningMs !== undefined ? { runningMs } : {}) };
}

function oneOf<V>(env: Env, name: string, values: Record<string, V>): V | undefined {
  const raw = given(env, name);
  if (raw === undefined) return undefined;
  if (!Object.hasOwn(values, raw)) {
    throw new ConfigError(name, `must be ${Object.keys(values).join(' or ')}, not ${JSON.stringify(env[name])}.`);
  }
  return values[raw];
}

const SCHEDULE = 'FERRY_EMULATOR_QUOTA_SCHEDULE';
const STEP = /^(\d+):(\d+)(?::(\d+))?$/;

/** "30000:600,60000:2400" (ms:rpm, or ms:rpm:tpm), times increasing. */
function quotaSchedule(env: Env): QuotaStep[] | undefined {
  const raw = given(env, SCHEDULE);
  if (raw === undefined) return undefined;
  const steps = raw.split(',').map((part) => {
    const m = STEP.exec(part.trim());
    const step = m && { atMs: Number(m[1]), rpm: Number(m[2]), ...(m[3] !== undefined ? { tpm: Number(m[3]) } : {}) };
    if (!step || !Object.values(step).every(Number.isSafeInteger)) {
      throw new ConfigError(
        SCHEDULE,
        `must be ms:rpm steps (or ms:rpm:tpm) separated by commas, e.g. 30000:600,60000:2400, not ${JSON.stringify(part)}.`,
      );
    }
    return step;
  });
  if (steps.length > MAX_SCHEDULE_STEPS) throw new ConfigError(SCHEDULE, `has ${steps.length} steps, at most ${MAX_SCHEDULE_STEPS}.`);
  steps.forEach((step, i) => {
    if (i > 0 && step.atMs <= steps[i - 1].atMs) {
      throw new ConfigError(SCHEDULE, `times must increase: ${step.atMs} comes after ${steps[i - 1].atMs}.`);
    }
  });
  return steps;
}

/** The quota variables; undefined when none is set (unlimited, Gemini's full 429s). */
function quotaFromEnv(env: Env): QuotaSetting | undefined {
  const quota: QuotaSetting = {};
  const rpm = limit(env, 'FERRY_EMULATOR_RPM');
  const tpm = limit(env, 'FERRY_EMULATOR_TPM');
  const statesLimit = oneOf(env, 'FERRY_EMULATOR_QUOTA_STATES_LIMIT', { '0': false, '1': true });
  const detail = oneOf<'full' | 'none'>(env, 'FERRY_EMULATOR_QUOTA_DETAIL', { full: 'full', none: 'none' });
  const sharedShare = readNumber(
    env,
    'FERRY_EMULATOR_QUOTA_SHARED_SHARE',
    'a number in [0, 1)',
    (n) => Number.isFinite(n) && n >= 0 && n < 1,
  );
  const schedule = quotaSchedule(env);
  if (rpm !== undefined) quota.rpm = rpm;
  if (tpm !== undefined) quota.tpm = tpm;
  if (statesLimit !== undefined) quota.statesLimit = statesLimit;
  if (detail !== undefined) quota.detail = detail;
  if (sharedShare !== undefined) quota.sharedShare = sharedShare;
  if (schedule !== undefined) quota.schedule = schedule;
  return Object.keys(quota).length ? quota : undefined;
}

/** Read once at start: a file that cannot be read is a configuration error, not a failed fetch later. */
function fileUriTls(env: Env): FileUriTls | undefined {
  const path = given(env, 'FERRY_EMULATOR_FILE_URI_CA');
  if (path === undefined) return undefined;
  try {
    return { ca: readFileSync(path, 'utf8') };
  } catch (err) {
    throw new ConfigError('FERRY_EMULATOR_FILE_URI_CA', `must name a readable PEM file: ${(err as Error).message}`);
  }
}

/** Throws a ConfigError naming the variable when one is malformed or set with a variable it excludes. */
export function emulatorOptionsFromEnv(
  env: Env = process.env,
): Pick<EmulatorOptions, 'quota' | 'latency' | 'batches' | 'fileUriTls' | 'gcsDir'> {
  const out: { quota?: QuotaSetting; latency?: LatencySetting; batches?: Partial<BatchSetting>; fileUriTls?: FileUriTls; gcsDir?: string } =
    {};
  const gcsDir = given(env, 'FERRY_EMULATOR_GCS_DIR');
  if (gcsDir) out.gcsDir = gcsDir;
  const batches = batchSchedule(env);
  if (batches) out.batches = batches;
  const tls = fileUriTls(env);
  if (tls) out.fileUriTls = tls;
  const quota = quotaFromEnv(env);
  if (quota) out.quota = quota;

  const fixed = millis(env, 'FERRY_EMULATOR_LATENCY_MS', false);
  const medianMs = millis(env, 'FERRY_EMULATOR_LATENCY_MEDIAN_MS', true);
  const p99Ms = millis(env, 'FERRY_EMULATOR_LATENCY_P99_MS', true);
  if (fixed !== undefined && (medianMs !== undefined || p99Ms !== undefined)) {
    throw new ConfigError(
      'FERRY_EMULATOR_LATENCY_MS',
      '(fixed) excludes FERRY_EMULATOR_LATENCY_MEDIAN_MS and FERRY_EMULATOR_LATENCY_P99_MS (lognormal): set one or the other.',
    );
  }
  if (fixed !== undefined) out.latency = { kind: 'fixed', ms: fixed };
  if (medianMs !== undefined || p99Ms !== undefined) {
    if (medianMs === undefined)
      throw new ConfigError('FERRY_EMULATOR_LATENCY_MEDIAN_MS', 'must be set with FERRY_EMULATOR_LATENCY_P99_MS.');
    if (p99Ms === undefined) throw new ConfigError('FERRY_EMULATOR_LATENCY_P99_MS', 'must be set with FERRY_EMULATOR_LATENCY_MEDIAN_MS.');
    if (p99Ms < medianMs) {
      throw new ConfigError('FERRY_EMULATOR_LATENCY_P99_MS', `(${p99Ms}) must be at least FERRY_EMULATOR_LATENCY_MEDIAN_MS (${medianMs}).`);
    }
    out.latency = { kind: 'lognormal', medianMs, p99Ms };
  }
  return out;
}
