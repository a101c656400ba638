/** The Models API's wire contract: a Gemini model in OpenAI's model object, with its token limits beside. */
import type { CatalogModel } from '../core/models.js';

/** `created` is when Ferry read the model from Gemini's catalogue: Gemini does not say when a model was made. */
export function modelObject(m: CatalogModel, created: number) {
  return {
    id: m.id,
    object: 'model' as const,
    created,
    owned_by: 'google',
    display_name: m.display_name,
    input_token_limit: m.input_token_limit,
    output_token_limit: m.output_token_limit,
  };
}
