/** The `@google/genai` client, configured once from Ferry's settings, calling through Ferry's fetch (fetch.ts). */
import { GoogleGenAI } from '@google/genai';
import { createGeminiFetch } from './fetch.js';

export interface GeminiSettings {
  apiKey: string;
  baseUrl?: string;
}

export function createGenAI(s: GeminiSettings): { ai: GoogleGenAI; close(): Promise<void> } {
  const http = createGeminiFetch();
  const ai = new GoogleGenAI({ apiKey: s.apiKey, httpOptions: { fetch: http.fetch, ...(s.baseUrl ? { baseUrl: s.baseUrl } : {}) } });
  return { ai, close: () => http.close() };
}
