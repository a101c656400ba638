/**
 * Thinking (generationConfig.thinkingConfig), checked as Gemini checks it and answered with a
 * deterministic thought count, so a client's accounting of thought tokens can be tested.
 *
 * What Gemini answers, per Google's thinking guide and its observed errors: a Gemini 2.5 model takes
 * a budget within its range (0 turns thinking off, except on 2.5 Pro which "only works in thinking
 * mode"; -1 is dynamic) and refuses a thinkingLevel, which only Gemini 3 models take ("Thinking level
 * is not supported for this model."). A model that does not think (Gemini 2.0) refuses any request
 * to think. The thoughts are counted in usageMetadata.thoughtsTokenCount and in totalTokenCount, and
 * shown as a part `{text, thought: true}` only with includeThoughts.
 */

import { invalidArgument } from './errors.js';
import { modelEntry, type ThinkingSpec } from './models.js';

/** The thoughts of a prompt: this many tokens plus so many per prompt token, within the budget. */
const THOUGHT_BASE_TOKENS = 16;
const THOUGHT_TOKENS_PER_PROMPT_TOKEN = 2;
/** Dynamic thinking (budget -1, or a thinking model's default) thinks up to this much, as Google documents. */
const DYNAMIC_BUDGET = 8_192;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** How much a request lets the model think; absent when it does not think. */
export interface ThinkingPlan {
  /** The most thought tokens. */
  budget: number;
  includeThoughts: boolean;
}

/**
 * Checks `generationConfig.thinkingConfig` against the model and gives the plan. Without a
 * thinkingConfig the answer stays as it always was: no thoughts.
 */
export function planThinking(model: string, generationConfig: unknown): ThinkingPlan | undefined {
  const config = isObject(generationConfig) ? generationConfig.thinkingConfig : undefined;
  if (config === undefined || config === null) return undefined;
  if (!isObject(config)) throw invalidArgument(`Invalid value at 'generation_config.thinking_config': expected an object.`);
  const { thinkingBudget: budget, thinkingLevel: level, includeThoughts } = config;
  if (includeThoughts !== undefined && typeof includeThoughts !== 'boolean') {
    throw invalidArgument(
      `Invalid value at 'generation_config.thinking_config.include_thoughts' (TYPE_BOOL), ${JSON.stringify(includeThoughts)}`,
    );
  }
  if (budget !== undefined && (typeof budget !== 'number' || !Number.isInteger(budget))) {
    throw invalidArgument(`Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), ${JSON.stringify(budget)}`);
  }
  const spec = modelEntry(model)?.thinking;
  if (!spec) {
    if ((budget !== undefined && budget !== 0) || level !== undefined || includeThoughts === true) {
      throw invalidArgument(`Thinking is not enabled for models/${model.replace(/^models\//, '')}`);
    }
    return undefined;
  }
  if (level !== undefined) throw invalidArgument('Thinking level is not supported for this model.');
  const cap = budgetCap(spec, budget);
  return cap > 0 ? { budget: cap, includeThoughts: includeThoughts === true } : undefined;
}

/** The effective budget: 0 = no thinking. */
function budgetCap(spec: ThinkingSpec, budget: number | undefined): number {
  if (budget === undefined) return spec.thinksByDefault ? DYNAMIC_BUDGET : 0;
  if (budget === -1) return DYNAMIC_BUDGET;
  if (budget === 0) {
    if (!spec.canDisable) throw invalidArgument('Budget 0 is invalid. This model only works in thinking mode.');
    return 0;
  }
  if (budget < -1 || budget > spec.maxBudget) throw invalidArgument(`The thinking budget (${budget}) is invalid.`);
  return Math.max(budget, spec.minBudget);
}

/** The thought tokens of a prompt of `promptTokens` under `plan`: grows with the prompt, never above the budget. */
export function thoughtTokens(plan: ThinkingPlan, promptTokens: number): number {
  return Math.min(plan.budget, THOUGHT_BASE_TOKENS + THOUGHT_TOKENS_PER_PROMPT_TOKEN * promptTokens);
}

/** The thought summary shown with includeThoughts. */
export function thoughtSummary(thoughts: number, lastUserText: string): string {
  return `Thought for ${thoughts} tokens about: ${lastUserText}`;
}
