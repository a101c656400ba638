/**
 * The model catalogue (model-routes.ts answers `models.list` and `models.get` from it), and the
 * check that a call names a model Gemini has and that the model offers the method called. Gemini answers both an
 * unknown model and a method the model lacks (embedContent on a generate model, generateContent on
 * an embedding model) with the same 404 NOT_FOUND, "… is not found for API version v1beta, or is not
 * supported for <method>". Token limits, thinking budgets and embedding sizes are those Google
 * publishes for each model.
 */
import { notFound } from './errors.js';

/**
 * How a model thinks (Gemini 2.5): the budgets it accepts and what it does without one. Models
 * without this (Gemini 2.0) refuse a thinking budget.
 */
export interface ThinkingSpec {
  /** Smallest budget; a smaller positive one is raised to it. */
  minBudget: number;
  /** Largest budget; a larger one is refused. */
  maxBudget: number;
  /** Whether budget 0 turns thinking off (2.5 Pro only works thinking). */
  canDisable: boolean;
  /** Without a budget: dynamic thinking (Flash, Pro) or none (Flash-Lite). */
  thinksByDefault: boolean;
}

export interface ModelEntry {
  id: string;
  displayName: string;
  inputTokenLimit: number;
  outputTokenLimit: number;
  methods: string[];
  thinking?: ThinkingSpec;
  /** Embedding models: the size of a full vector (outputDimensionality may ask for fewer). */
  embeddingDimensions?: number;
}

const GENERATE = ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'];
const EMBED = ['embedContent', 'countTextTokens', 'countTokens', 'asyncBatchEmbedContent'];

/** The budgets of Google's thinking guide (ai.google.dev/gemini-api/docs/thinking). */
const FLASH_THINKING: ThinkingSpec = { minBudget: 1, maxBudget: 24_576, canDisable: true, thinksByDefault: true };
const FLASH_LITE_THINKING: ThinkingSpec = { minBudget: 512, maxBudget: 24_576, canDisable: true, thinksByDefault: false };
const PRO_THINKING: ThinkingSpec = { minBudget: 128, maxBudget: 32_768, canDisable: false, thinksByDefault: true };

export const MODELS: readonly ModelEntry[] = [
  { id: 'gemini-2.0-flash', displayName: 'Gemini 2.0 Flash', inputTokenLimit: 1_048_576, outputTokenLimit: 8_192, methods: GENERATE },
  {
    id: 'gemini-2.0-flash-lite',
    displayName: 'Gemini 2.0 Flash-Lite',
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 8_192,
    methods: GENERATE,
  },
  {
    id: 'gemini-2.5-flash',
    displayName: 'Gemini 2.5 Flash',
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    methods: GENERATE,
    thinking: FLASH_THINKING,
  },
  {
    id: 'gemini-2.5-flash-lite',
    displayName: 'Gemini 2.5 Flash-Lite',
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    methods: GENERATE,
    thinking: FLASH_LITE_THINKING,
  },
  {
    id: 'gemini-2.5-pro',
    displayName: 'Gemini 2.5 Pro',
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    methods: GENERATE,
    thinking: PRO_THINKING,
  },
  {
    id: 'gemini-embedding-001',
    displayName: 'Gemini Embedding 001',
    inputTokenLimit: 2_048,
    outputTokenLimit: 1,
    methods: EMBED,
    embeddingDimensions: 3072,
  },
];

/** A model as Gemini's Model resource shows it. */
export const modelResource = (m: ModelEntry) => ({
  name: `models/${m.id}`,
  version: '001',
  displayName: m.displayName,
  inputTokenLimit: m.inputTokenLimit,
  outputTokenLimit: m.outputTokenLimit,
  supportedGenerationMethods: m.methods,
});

/** The catalogue entry of `models/<id>`; undefined for an unknown model or a tuned one. */
export function modelEntry(name: string): ModelEntry | undefined {
  const id = name.replace(/^models\//, '');
  return MODELS.find((m) => m.id === id);
}

/**
 * Checks that `name` is a model of the catalogue that offers `method` (a tuned model, which the
 * emulator takes as it is, offers the generate methods); 404 as Gemini answers otherwise.
 */
export function requireMethod(name: string, method: string): ModelEntry | undefined {
  if (name.startsWith('tunedModels/') && GENERATE.includes(method)) return undefined;
  const entry = modelEntry(name);
  if (!entry?.methods.includes(method)) {
    const resource = name.startsWith('tunedModels/') ? name : `models/${name.replace(/^models\//, '')}`;
    throw notFound(
      `${resource} is not found for API version v1beta, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
    );
  }
  return entry;
}
