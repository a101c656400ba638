/**
 * The latency model of generate calls: how long the model "thinks" before it answers. Only a
 * number is drawn per call; the wait itself is one timer (see generate.ts), so thousands of
 * delayed calls cost no more than thousands of pending timers.
 */

import { RpcError } from './errors.js';
import { seededRandom } from './random.js';
import type { LatencySetting } from './types.js';

/** z of the 99th percentile of the standard normal distribution. */
const Z_P99 = 2.326;
/** Bounds a setting and every drawn delay: keeps timers far below setTimeout's 2^31-1 ms limit. */
export const MAX_LATENCY_MS = 600_000;
/** Its own stream of the emulator's seed, so enabling latency does not change which faults fire. */
const LATENCY_SEED_SALT = 0x1a7e9c3;

const NO_LATENCY: LatencySetting = { kind: 'fixed', ms: 0 };

export class LatencyModel {
  private setting: LatencySetting;
  private random: () => number;

  constructor(
    setting: LatencySetting | undefined,
    private readonly seed: number,
  ) {
    this.setting = validateLatency(setting ?? NO_LATENCY);
    this.random = seededRandom(this.seed ^ LATENCY_SEED_SALT);
  }

  set(setting: LatencySetting): void {
    this.setting = validateLatency(setting);
  }

  get(): LatencySetting {
    return { ...this.setting };
  }

  /** Restarts the generator from the seed, so a reset run draws the same delays again. */
  restart(): void {
    this.random = seededRandom(this.seed ^ LATENCY_SEED_SALT);
  }

  /** The delay of the next generate call, in milliseconds. */
  next(): number {
    const s = this.setting;
    if (s.kind === 'fixed') return s.ms;
    const sigma = Math.log(s.p99Ms / s.medianMs) / Z_P99;
    return Math.min(MAX_LATENCY_MS, s.medianMs * Math.exp(sigma * this.standardNormal()));
  }

  /** Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
  private standardNormal(): number {
    const u = 1 - this.random();
    const v = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const FIELDS = { fixed: ['kind', 'ms'], lognormal: ['kind', 'medianMs', 'p99Ms'] } as const;

/** Checks a latency setting given by a caller (possibly over HTTP); throws a 400 RpcError naming the field. */
export function validateLatency(input: unknown): LatencySetting {
  if (!isObject(input)) {
    throw new RpcError(400, 'latency must be a JSON object: {"kind":"fixed","ms":N} or {"kind":"lognormal","medianMs":N,"p99Ms":N}.');
  }
  const kind = input.kind;
  if (kind !== 'fixed' && kind !== 'lognormal') throw new RpcError(400, 'latency.kind must be "fixed" or "lognormal".');
  for (const key of Object.keys(input)) {
    if (!(FIELDS[kind] as readonly string[]).includes(key)) {
      throw new RpcError(400, `latency.${key} is not a field of a ${kind} latency (${FIELDS[kind].join(', ')}).`);
    }
  }
  if (kind === 'fixed') return { kind, ms: checkMs(input, 'ms', 0) };
  const medianMs = checkMs(input, 'medianMs', Number.MIN_VALUE);
  const p99Ms = checkMs(input, 'p99Ms', medianMs);
  return { kind, medianMs, p99Ms };
}

function checkMs(input: Record<string, unknown>, key: string, min: number): number {
  const value = input[key];
  if (typeof value !== 'number' || !(value >= min) || value > MAX_LATENCY_MS) {
    const lower = min === 0 ? 'in [0' : key === 'p99Ms' ? `in [medianMs (${min})` : 'in (0';
    throw new RpcError(400, `latency.${key} must be a number of milliseconds ${lower}, ${MAX_LATENCY_MS}].`);
  }
  return value;
}
