/** Configurable fault injection: latency, error answers and connection resets per route. */

import { RpcError } from './errors.js';
import { seededRandom } from './random.js';
import type { StatsCollector } from './stats.js';
import { FAULT_KINDS, ROUTES, type FaultRule, type RouteName } from './types.js';

const DEFAULT_LATENCY_MS = 1000;

/** What to do with one request: wait `latencyMs`, then apply `rule` (a non-latency fault) if any; hold its answer `answerDelayMs`. */
export interface FaultDecision {
  latencyMs: number;
  answerDelayMs: number;
  rule?: FaultRule;
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
}

export class FaultInjector {
  private rules: ActiveRule[] = [];
  private random: () => number;

  constructor(
    private readonly seed: number,
    private readonly stats: StatsCollector,
  ) {
    this.random = seededRandom(seed);
  }

  set(rules: FaultRule[]): void {
    this.rules = validateFaultRules(rules).map((rule) => ({ rule, remaining: rule.count ?? Infinity }));
  }

  list(): FaultRule[] {
    return this.rules.filter((r) => r.remaining > 0).map((r) => ({ ...r.rule }));
  }

  /** Drops all rules and restarts the generator from the seed. */
  reset(): void {
    this.rules = [];
    this.random = seededRandom(this.seed);
  }

  /**
   * Every matching latency rule that fires adds its delay; the first other rule that fires is the
   * fault applied. Rules that do not fire keep their count.
   */
  decide(route: RouteName): FaultDecision {
    const decision: FaultDecision = { latencyMs: 0, answerDelayMs: 0 };
    for (const active of this.rules) {
      const { rule } = active;
      if (active.remaining <= 0 || (rule.route !== '*' && rule.route !== route)) continue;
      const isLatency = rule.kind === 'latency';
      if (!isLatency && decision.rule) continue;
      const p = rule.probability ?? 1;
      if (p < 1 && this.random() >= p) continue;
      active.remaining -= 1;
      this.stats.countFault(route);
      if (isLatency && rule.afterHandler) {
        decision.answerDelayMs += rule.latencyMs ?? DEFAULT_LATENCY_MS;
      } else if (isLatency) {
        decision.latencyMs += rule.latencyMs ?? DEFAULT_LATENCY_MS;
      } else {
        decision.latencyMs += rule.latencyMs ?? 0;
        decision.rule = rule;
      }
    }
    return decision;
  }
}

/** The answer an error fault produces, as the real API words it. */
export function faultError(rule: FaultRule): RpcError {
  switch (rule.kind) {
    case '429': {
      const seconds = rule.retryAfterSeconds;
      if (seconds === undefined) return new RpcError(429, 'Resource has been exhausted (e.g. check quota).');
      return new RpcError(429, 'Resource has been exhausted (e.g. check quota).', {
        headers: { 'Retry-After': String(Math.ceil(seconds)) },
        details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${seconds}s` }],
      });
    }
    case '500':
      return new RpcError(
        500,
        'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
      );
    case '503':
      return new RpcError(503, 'The model is overloaded. Please try again later.');
    default:
      return new RpcError(400, 'Request contains an invalid argument.');
  }
}

const ROUTE_NAMES: readonly string[] = [...ROUTES, '*'];
const KINDS: readonly string[] = FAULT_KINDS;

/** Checks rules given by a caller (possibly over HTTP); throws a 400 RpcError naming the problem. */
export function validateFaultRules(input: unknown): FaultRule[] {
  if (!Array.isArray(input)) throw new RpcError(400, 'Fault rules must be a JSON array.');
  return input.map((raw, i) => {
    const where = `faults[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw new RpcError(400, `${where} must be an object.`);
    const rule = raw as Record<string, unknown>;
    if (!ROUTE_NAMES.includes(rule.route as string)) {
      throw new RpcError(400, `${where}.route must be one of ${ROUTE_NAMES.join(', ')}.`);
    }
    if (!KINDS.includes(rule.kind as string)) {
      throw new RpcError(400, `${where}.kind must be one of ${KINDS.join(', ')}.`);
    }
    checkNumber(rule, 'probability', where, 0, 1);
    checkNumber(rule, 'count', where, 0, Infinity, true);
    checkNumber(rule, 'latencyMs', where, 0, Infinity);
    checkNumber(rule, 'retryAfterSeconds', where, 0, Infinity);
    checkNumber(rule, 'resetAfterBytes', where, 0, Infinity, true);
    if (rule.afterHandler !== undefined && typeof rule.afterHandler !== 'boolean') {
      throw new RpcError(400, `${where}.afterHandler must be true or false.`);
    }
    return { ...rule } as unknown as FaultRule;
  });
}

function checkNumber(rule: Record<string, unknown>, key: string, where: string, min: number, max: number, integer = false): void {
  const value = rule[key];
  if (value === undefined) return;
  const ok = typeof value === 'number' && value >= min && value <= max && (!integer || Number.isInteger(value));
  if (!ok) throw new RpcError(400, `${where}.${key} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}].`);
}
