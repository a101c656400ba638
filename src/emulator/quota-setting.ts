/**
 * Checks a quota setting given by a caller (start options or PUT /_emulator/quota) and resolves
 * its defaults, so that the enforcer never meets a malformed value mid-run: a bad field is a 400
 * naming it, and a refused PUT leaves the setting in force as it was.
 */

import { RpcError } from './errors.js';
import type { QuotaLimits, QuotaStep } from './types.js';

export const METRIC_NAMES = ['rpm', 'tpm'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Enough for any benchmark's curve, few enough that GET /_emulator/stats stays small. */
export const MAX_SCHEDULE_STEPS = 100;

export interface ResolvedQuota {
  rpm: number;
  tpm: number;
  /** A Map: model names come from callers and must not reach an object's prototype. */
  perModel: Map<string, QuotaLimits>;
  statesLimit: boolean;
  detail: 'full' | 'none';
  sharedShare: number;
  schedule: QuotaStep[];
}

export const modelKey = (model: string) => model.replace(/^models\//, '');

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const TOP_LEVEL_KEYS = ['perModel', 'statesLimit', 'detail', 'sharedShare', 'schedule'];

/** Throws a 400 RpcError naming the field. */
export function validateQuota(input: unknown): ResolvedQuota {
  if (!isObject(input)) throw new RpcError(400, 'quota must be a JSON object like {"rpm":1000,"tpm":1000000,"perModel":{}}.');
  const top = checkLimits(input, 'quota', TOP_LEVEL_KEYS);
  return {
    rpm: top.rpm ?? 0,
    tpm: top.tpm ?? 0,
    perModel: checkPerModel(input.perModel),
    statesLimit: checkStatesLimit(input.statesLimit),
    detail: checkDetail(input.detail),
    sharedShare: checkShare(input.sharedShare),
    schedule: checkSchedule(input.schedule),
  };
}

function checkPerModel(raw: unknown): Map<string, QuotaLimits> {
  const perModel = new Map<string, QuotaLimits>();
  if (raw === undefined) return perModel;
  if (!isObject(raw)) throw new RpcError(400, 'quota.perModel must be an object keyed by model name.');
  for (const [model, limits] of Object.entries(raw)) {
    const where = `quota.perModel[${JSON.stringify(model)}]`;
    if (!isObject(limits)) throw new RpcError(400, `${where} must be an object like {"rpm":1000,"tpm":1000000}.`);
    perModel.set(modelKey(model), checkLimits(limits, where, []));
  }
  return perModel;
}

function checkStatesLimit(raw: unknown): boolean {
  if (raw === undefined) return true;
  if (typeof raw !== 'boolean') throw new RpcError(400, 'quota.statesLimit must be true or false.');
  return raw;
}

function checkDetail(raw: unknown): 'full' | 'none' {
  if (raw === undefined) return 'full';
  if (raw !== 'full' && raw !== 'none') throw new RpcError(400, 'quota.detail must be "full" or "none".');
  return raw;
}

function checkShare(raw: unknown): number {
  if (raw === undefined) return 0;
  if (typeof raw !== 'number' || !Number.isFinite(raw) || raw < 0 || raw >= 1) {
    throw new RpcError(400, 'quota.sharedShare must be a number in [0, 1).');
  }
  return raw;
}

function checkSchedule(raw: unknown): QuotaStep[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.length > MAX_SCHEDULE_STEPS) {
    throw new RpcError(400, `quota.schedule must be an array of at most ${MAX_SCHEDULE_STEPS} steps like {"atMs":30000,"rpm":600}.`);
  }
  return raw.map((step: unknown, i) => {
    const where = `quota.schedule[${i}]`;
    if (!isObject(step)) throw new RpcError(400, `${where} must be an object like {"atMs":30000,"rpm":600}.`);
    const limits = checkLimits(step, where, ['atMs']);
    const atMs = step.atMs;
    if (typeof atMs !== 'number' || !Number.isSafeInteger(atMs) || atMs < 0) {
      throw new RpcError(400, `${where}.atMs must be a non-negative integer (milliseconds after the setting is applied).`);
    }
    const previous = i > 0 ? (raw[i - 1] as { atMs: number }).atMs : -1;
    if (atMs <= previous) throw new RpcError(400, `${where}.atMs must be later than the step before it (${previous}).`);
    if (limits.rpm === undefined && limits.tpm === undefined) throw new RpcError(400, `${where} must set rpm, tpm or both.`);
    return { atMs, ...limits };
  });
}

function checkLimits(raw: Record<string, unknown>, where: string, otherKeys: string[]): QuotaLimits {
  const known = [...METRIC_NAMES, ...otherKeys];
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) throw new RpcError(400, `${where}.${key} is not a quota field (${known.join(', ')}).`);
  }
  const out: QuotaLimits = {};
  for (const name of METRIC_NAMES) {
    const value = raw[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new RpcError(400, `${where}.${name} must be a non-negative integer (0 = unlimited).`);
    }
    out[name] = value;
  }
  return out;
}
