/** Gemini's model catalogue: every model the key can use, with its token limits and methods. */
import type { GoogleGenAI } from '@google/genai';
import { withRetry, type RetryPolicy } from '../../core/retry.js';
import { modelIdOf, type CatalogModel } from '../../core/models.js';
import { measured } from './errors.js';

/** Every page of `models.list`. */
export async function listGeminiModels(ai: GoogleGenAI, policy: RetryPolicy): Promise<CatalogModel[]> {
  return withRetry({ provider: 'gemini', operation: 'models.list' }, policy, () =>
    measured('models.list', async () => {
      const out: CatalogModel[] = [];
      for await (const m of await ai.models.list({ config: { pageSize: 100 } })) {
        if (!m.name) continue;
        out.push({
          id: modelIdOf(m.name),
          display_name: m.displayName ?? null,
          input_token_limit: m.inputTokenLimit ?? null,
          output_token_limit: m.outputTokenLimit ?? null,
          methods: m.supportedActions ?? [],
        });
      }
      return out;
    }),
  );
}
