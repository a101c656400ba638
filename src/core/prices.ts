/**
 * What Gemini charges, per model and tier, and the cost of one call's usage. Built-in prices are
 * Google's published list prices (USD per million tokens, late 2026); FERRY_PRICES_FILE overrides
 * them model by model, and the tier multipliers, without a release. A cost is fixed when its call
 * is recorded: a later price change does not rewrite the ledger, as a bill is not rewritten.
 */
import { readFileSync } from 'node:fs';

export interface ModelPrice {
  /** USD per million prompt tokens not served from a cache. */
  input: number;
  /** USD per million output tokens (thoughts included, as Gemini bills them). */
  output: number;
  /** USD per million prompt tokens served from a context cache; a tenth of `input` unless given. */
  cachedInput: number;
  /** USD per million cached tokens stored for an hour. */
  cacheStoragePerHour: number;
  /** Prompts longer than this bill every token at the long prices (Pro models: 200,000). */
  longContextTokens: number | null;
  inputLong: number;
  outputLong: number;
  cachedInputLong: number;
}

/** The tiers a call is billed at: Gemini's standard, Flex and Priority, and Batch Mode. */
export type BilledTier = 'standard' | 'flex' | 'priority' | 'batch';
export const BILLED_TIERS: readonly BilledTier[] = ['standard', 'flex', 'priority', 'batch'];

export interface PriceTable {
  models: Map<string, ModelPrice>;
  /** Each tier's price as a multiple of standard. */
  multipliers: Record<BilledTier, number>;
}

type PriceInput = Partial<
  Record<
    | 'input'
    | 'output'
    | 'cached_input'
    | 'cache_storage_per_hour'
    | 'long_context_tokens'
    | 'input_long'
    | 'output_long'
    | 'cached_input_long',
    number | null
  >
>;

/** Google's list prices (ai.google.dev/gemini-api/docs/pricing); Flex and Batch half, Priority 75–100% more (1.8 here). */
const BUILT_IN: Record<string, PriceInput> = {
  'gemini-3-pro-preview': {
    input: 2,
    output: 12,
    cached_input: 0.2,
    cache_storage_per_hour: 4.5,
    long_context_tokens: 200_000,
    input_long: 4,
    output_long: 18,
    cached_input_long: 0.4,
  },
  'gemini-3-flash-preview': { input: 0.5, output: 3, cached_input: 0.05, cache_storage_per_hour: 1 },
  'gemini-2.5-pro': {
    input: 1.25,
    output: 10,
    cached_input: 0.125,
    cache_storage_per_hour: 4.5,
    long_context_tokens: 200_000,
    input_long: 2.5,
    output_long: 15,
    cached_input_long: 0.25,
  },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cached_input: 0.03, cache_storage_per_hour: 1 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4, cached_input: 0.01, cache_storage_per_hour: 1 },
  'gemini-2.0-flash': { input: 0.1, output: 0.4, cached_input: 0.025, cache_storage_per_hour: 1 },
  'gemini-2.0-flash-lite': { input: 0.075, output: 0.3 },
  'gemini-embedding-001': { input: 0.15, output: 0 },
};

const BUILT_IN_MULTIPLIERS: Record<BilledTier, number> = { standard: 1, flex: 0.5, priority: 1.8, batch: 0.5 };

export class PriceError extends Error {}

function priceOf(model: string, p: PriceInput, base?: ModelPrice): ModelPrice {
  const num = (name: keyof PriceInput, fallback: number | null): number | null => {
    const v = p[name];
    if (v === undefined) return fallback;
    if (v === null && name === 'long_context_tokens') return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new PriceError(`models["${model}"].${name} must be a number of 0 or more`);
    return v;
  };
  const input = num('input', base?.input ?? null);
  const output = num('output', base?.output ?? null);
  if (input === null || output === null) throw new PriceError(`models["${model}"] needs "input" and "output" (USD per million tokens)`);
  const cachedInput = num('cached_input', p.input !== undefined ? input / 10 : (base?.cachedInput ?? input / 10))!;
  const longContextTokens = num('long_context_tokens', base?.longContextTokens ?? null);
  return {
    input,
    output,
    cachedInput,
    cacheStoragePerHour: num('cache_storage_per_hour', base?.cacheStoragePerHour ?? 1)!,
    longContextTokens,
    inputLong: num('input_long', base?.inputLong ?? input)!,
    outputLong: num('output_long', base?.outputLong ?? output)!,
    cachedInputLong: num('cached_input_long', base?.cachedInputLong ?? cachedInput)!,
  };
}

/**
 * The built-in table with `override` laid over it: `{"models": {"<id>": {input, output, cached_input?,
 * cache_storage_per_hour?, long_context_tokens?, input_long?, output_long?, cached_input_long?}},
 * "multipliers": {"flex"?, "priority"?, "batch"?}}`. PriceError names what is wrong.
 */
export function priceTable(override?: unknown): PriceTable {
  const models = new Map<string, ModelPrice>();
  for (const [id, p] of Object.entries(BUILT_IN)) models.set(id, priceOf(id, p));
  const multipliers = { ...BUILT_IN_MULTIPLIERS };
  if (override === undefined) return { models, multipliers };
  if (!isObject(override)) throw new PriceError('must be a JSON object with "models" and/or "multipliers"');
  const unknown = Object.keys(override).find((k) => k !== 'models' && k !== 'multipliers');
  if (unknown) throw new PriceError(`unknown key "${unknown}" (expected "models" and/or "multipliers")`);
  if (override.models !== undefined) {
    if (!isObject(override.models)) throw new PriceError('"models" must be an object of model id → prices');
    for (const [id, p] of Object.entries(override.models)) {
      if (!isObject(p)) throw new PriceError(`models["${id}"] must be an object of prices`);
      models.set(id.replace(/^models\//, ''), priceOf(id, p as PriceInput, models.get(id.replace(/^models\//, ''))));
    }
  }
  if (override.multipliers !== undefined) {
    if (!isObject(override.multipliers)) throw new PriceError('"multipliers" must be an object of tier → multiple of the standard price');
    for (const [tier, m] of Object.entries(override.multipliers)) {
      if (!(BILLED_TIERS as readonly string[]).includes(tier))
        throw new PriceError(`multipliers: unknown tier "${tier}" (${BILLED_TIERS.join(', ')})`);
      if (typeof m !== 'number' || !Number.isFinite(m) || m < 0) throw new PriceError(`multipliers.${tier} must be a number of 0 or more`);
      multipliers[tier as BilledTier] = m;
    }
  }
  return { models, multipliers };
}

/** FERRY_PRICES_FILE's table (unset: the built-in one). */
export function loadPriceTable(file: string | undefined): PriceTable {
  if (!file) return priceTable();
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new PriceError(`cannot read ${file} as JSON: ${(err as Error).message}`);
  }
  return priceTable(parsed);
}

/** A model's prices: its own, else the longest built-in id it begins with (a dated or preview variant), else null. */
export function pricesFor(table: PriceTable, model: string): ModelPrice | null {
  const exact = table.models.get(model);
  if (exact) return exact;
  let best: string | null = null;
  for (const id of table.models.keys()) if (model.startsWith(`${id}-`) && (!best || id.length > best.length)) best = id;
  return best ? table.models.get(best)! : null;
}

/** One call's tokens as the ledger counts them. */
export interface CallTokens {
  /** Prompt tokens, cached ones included. */
  input: number;
  cached: number;
  /** Output tokens, thoughts included. */
  output: number;
}

/** A call's cost in USD, by line item; null when the model has no price. */
export function costOf(
  table: PriceTable,
  model: string,
  tier: BilledTier,
  t: CallTokens,
): { input: number; cached: number; output: number } | null {
  const p = pricesFor(table, model);
  if (!p) return null;
  const long = p.longContextTokens !== null && t.input > p.longContextTokens;
  const m = table.multipliers[tier] / 1e6;
  return {
    input: Math.max(0, t.input - t.cached) * (long ? p.inputLong : p.input) * m,
    cached: t.cached * (long ? p.cachedInputLong : p.cachedInput) * m,
    output: t.output * (long ? p.outputLong : p.output) * m,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
