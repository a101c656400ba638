/**
 * Reads Gemini's model catalogue into Redis (core/models.ts), where the API checks requests against
 * it: as a worker process starts, then every CATALOG_REFRESH_MS. A failed read keeps the last one.
 */
import { retryPolicy } from '../core/attempts.js';
import type { Services } from '../core/services.js';
import { nowSeconds } from '../core/time.js';
import type { GeminiProvider } from '../providers/gemini/index.js';
import { listGeminiModels } from '../providers/gemini/models.js';

/** Gemini's catalogue changes when Google ships a model: ten minutes is soon enough. */
export const CATALOG_REFRESH_MS = 10 * 60_000;

export async function refreshModelCatalog(services: Services, gemini: GeminiProvider): Promise<void> {
  try {
    const models = await listGeminiModels(gemini.ai, { ...retryPolicy(services.config), attempts: 3 });
    // An empty answer would refuse every request for ten minutes: the last catalogue stays.
    if (models.length === 0) throw new Error('Gemini listed no models');
    await services.models.save({ fetched_at: nowSeconds(), models });
  } catch (err) {
    services.logger.warn({ err: (err as Error).message }, 'could not read the Gemini model catalogue; keeping the last one');
  }
}

/** Reads it now and every CATALOG_REFRESH_MS; answers the stop, and the first read to wait for. */
export function keepModelCatalog(services: Services, gemini: GeminiProvider): { first: Promise<void>; stop: () => void } {
  const timer = setInterval(() => void refreshModelCatalog(services, gemini), CATALOG_REFRESH_MS);
  timer.unref();
  return { first: refreshModelCatalog(services, gemini), stop: () => clearInterval(timer) };
}
