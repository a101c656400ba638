/**
 * The Gemini models Ferry knows of, as a worker last read them from Gemini (the API never calls
 * Gemini): kept in Redis, so that every API process checks a request's model against the same list.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** A Gemini model's id as Ferry names it: `models/gemini-2.5-flash` and `gemini-2.5-flash` are one model. */
export const modelIdOf = (name: string): string => name.replace(/^models\//, '');

export interface CatalogModel {
  id: string;
  display_name: string | null;
  input_token_limit: number | null;
  output_token_limit: number | null;
  /** Gemini's supported methods: generateContent, embedContent, … */
  methods: string[];
}

export interface Catalog {
  /** When a worker read it from Gemini (seconds). */
  fetched_at: number;
  models: CatalogModel[];
}

export class ModelCatalog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async read(): Promise<Catalog | null> {
    const raw = await this.redis.get(this.keys.modelCatalog());
    return raw ? (JSON.parse(raw) as Catalog) : null;
  }

  async save(catalog: Catalog): Promise<void> {
    await this.redis.set(this.keys.modelCatalog(), JSON.stringify(catalog));
  }
}
