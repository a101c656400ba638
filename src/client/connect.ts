/**
 * `ferry submit` talks to a running Ferry over HTTP like any other client, through the unmodified
 * openai SDK, at the Ferry and with the key that target.ts finds (`ferry status`, one read, is a
 * plain GET: see status.ts).
 */
import OpenAI from 'openai';
import { target } from './target.js';

export interface Connection {
  baseUrl: string;
  client: OpenAI;
}

export function connect(opts: { baseUrl?: string; apiKey?: string }): Connection {
  const { baseUrl, apiKey } = target(opts);
  return { baseUrl, client: new OpenAI({ apiKey, baseURL: `${baseUrl}/v1`, maxRetries: 5, timeout: 10 * 60_000 }) };
}
