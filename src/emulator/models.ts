/**
 * The model catalogue: `models.list` and `models.get` as Gemini answers them, and the check that a
 * call names a model Gemini has (an unknown one is 404 NOT_FOUND, as Gemini answers a typo).
 * Token limits are those Google publishes for each model.
 */
import type { Handler } from './context.js';
import { notFound } from './errors.js';
import { sendJson } from './http.js';
import { decodePageToken, encodePageToken, parsePageSize } from './paging.js';

interface ModelEntry {
  id: string;
  displayName: string;
  inputTokenLimit: number;
  outputTokenLimit: number;
  methods: string[];
}

const GENERATE = ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'];
const EMBED = ['embedContent', 'countTextTokens', 'countTokens', 'asyncBatchEmbedContent'];

export const MODELS: readonly ModelEntry[] = [
  { id: 'gemini-2.0-flash', displayName: 'Gemini 2.0 Flash', inputTokenLimit: 1_048_576, outputTokenLimit: 8_192, methods: GENERATE },
  {
    id: 'gemini-2.0-flash-lite',
    displayName: 'Gemini 2.0 Flash-Lite',
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 8_192,
    methods: GENERATE,
  },
  { id: 'gemini-2.5-flash', displayName: 'Gemini 2.5 Flash', inputTokenLimit: 1_048_576, outputTokenLimit: 65_536, methods: GENERATE },
  {
    id: 'gemini-2.5-flash-lite',
    displayName: 'Gemini 2.5 Flash-Lite',
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    methods: GENERATE,
  },
  { id: 'gemini-2.5-pro', displayName: 'Gemini 2.5 Pro', inputTokenLimit: 1_048_576, outputTokenLimit: 65_536, methods: GENERATE },
  { id: 'gemini-embedding-001', displayName: 'Gemini Embedding 001', inputTokenLimit: 2_048, outputTokenLimit: 1, methods: EMBED },
];

const resource = (m: ModelEntry) => ({
  name: `models/${m.id}`,
  version: '001',
  displayName: m.displayName,
  inputTokenLimit: m.inputTokenLimit,
  outputTokenLimit: m.outputTokenLimit,
  supportedGenerationMethods: m.methods,
});

/** The catalogue entry of `models/<id>` (or a tuned model, which the emulator takes as it is); 404 as Gemini answers otherwise. */
export function requireModel(name: string): void {
  if (name.startsWith('tunedModels/')) return;
  const id = name.replace(/^models\//, '');
  if (!MODELS.some((m) => m.id === id)) {
    throw notFound(
      `models/${id} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.`,
    );
  }
}

export const handleListModels: Handler = async (_ctx, _req, res, { url }) => {
  const size = parsePageSize(url.searchParams.get('pageSize'));
  const token = url.searchParams.get('pageToken');
  const from = token ? decodePageToken(token) : 0;
  const page = MODELS.slice(from, from + size);
  const next = from + size < MODELS.length ? { nextPageToken: encodePageToken(from + size) } : {};
  sendJson(res, 200, { models: page.map(resource), ...next });
};

export const handleGetModel: Handler = async (_ctx, _req, res, { params }) => {
  const entry = MODELS.find((m) => m.id === params.id);
  if (!entry) throw notFound(`models/${params.id} is not found for API version v1beta.`);
  sendJson(res, 200, resource(entry));
};
