/**
 * Which Gemini models Ferry offers, and the check every request's model meets before it is queued:
 * a model Gemini does not have (a typo) is a 404 naming `model`, an output limit above the model's a
 * 400 naming the field. The catalogue is Gemini's own (a worker reads it: core/models.ts), narrowed
 * by FERRY_MODELS; until a worker has read it, only FERRY_MODELS is checked.
 */
import { BadRequestError, NotFoundError } from '../core/errors.js';
import { modelIdOf, type CatalogModel } from '../core/models.js';
import type { Services } from '../core/services.js';

/** What a request asks of its model: to generate content (chat, responses) or to embed. */
export type ModelUse = 'generateContent' | 'embedContent';
const USES: ModelUse[] = ['generateContent', 'embedContent'];

/** The models Ferry serves: Gemini's `gemini-` models that generate content or embed. */
const served = (m: CatalogModel) => m.id.startsWith('gemini-') && USES.some((u) => m.methods.includes(u));

export interface Offered {
  /** When a worker read the catalogue (seconds), or null when none has yet. */
  fetchedAt: number | null;
  models: CatalogModel[];
}

/** The models offered: those of Gemini's catalogue that Ferry serves, narrowed by FERRY_MODELS. */
export async function offeredModels(services: Services): Promise<Offered> {
  const allowed = services.config.models;
  const catalog = await services.models.read();
  if (!catalog) return { fetchedAt: null, models: (allowed ?? []).map(unlistedModel) };
  const offered = catalog.models.filter(served);
  return { fetchedAt: catalog.fetched_at, models: allowed ? offered.filter((m) => allowed.includes(m.id)) : offered };
}

/** A model FERRY_MODELS names before a worker has read Gemini's catalogue: its limits unknown. */
const unlistedModel = (id: string): CatalogModel => ({
  id,
  display_name: null,
  input_token_limit: null,
  output_token_limit: null,
  methods: [],
});

/** One offered model and when the catalogue was read, or 404 naming `param`. */
export async function offeredModel(
  services: Services,
  name: string,
  param = 'model',
): Promise<{ model: CatalogModel; fetchedAt: number | null }> {
  const offered = await offeredModels(services);
  return { model: findOffered(offered, services.config.models !== null, name, param), fetchedAt: offered.fetchedAt };
}

/** The offered model `name`; any model while the catalogue is unread and nothing narrows it. */
function findOffered(offered: Offered, narrowed: boolean, name: string, param: string): CatalogModel {
  const id = modelIdOf(name);
  const found = offered.models.find((m) => m.id === id);
  if (found) return found;
  if (offered.fetchedAt === null && !narrowed) return unlistedModel(id);
  throw new NotFoundError(`The model '${id}' does not exist or is not offered here; GET /v1/models lists the models you can use.`, {
    param,
    code: 'model_not_found',
  });
}

export interface OutputLimit {
  /** `max_tokens`, `max_completion_tokens`, … */
  field: string;
  value: number | null | undefined;
}

/** A request's model is offered for its use, and its output limit within the model's. */
export async function checkRequestModel(
  services: Services,
  name: string,
  output?: OutputLimit,
  use: ModelUse = 'generateContent',
): Promise<void> {
  return modelChecker(await offeredModels(services), services.config.models !== null)(name, output, use);
}

/** The same check, against a catalogue read once (every line of a batch). */
export function modelChecker(offered: Offered, narrowed: boolean): (name: string, output?: OutputLimit, use?: ModelUse) => void {
  return (name, output, use = 'generateContent') => {
    const model = findOffered(offered, narrowed, name, 'model');
    checkUse(model, use);
    const limit = model.output_token_limit;
    if (output && typeof output.value === 'number' && limit !== null && output.value > limit) {
      throw new BadRequestError(`"${output.field}" is ${output.value}, above ${model.id}'s limit of ${limit} output tokens.`, {
        param: output.field,
      });
    }
  };
}

/** A model that cannot do what the request asks (an embedding model asked to chat, say): 400 naming `model`. */
function checkUse(model: CatalogModel, use: ModelUse) {
  // Methods unknown (FERRY_MODELS before the catalogue is read): Gemini answers for itself.
  if (model.methods.length === 0 || model.methods.includes(use)) return;
  const what =
    use === 'embedContent'
      ? 'embed text (use it with /v1/chat/completions or /v1/responses)'
      : 'generate content (use it with /v1/embeddings)';
  throw new BadRequestError(`The model '${model.id}' does not ${what}.`, { param: 'model', code: 'model_not_supported' });
}
