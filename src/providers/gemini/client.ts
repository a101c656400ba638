/** The `@google/genai` client, configured once from Ferry's settings. */
import { GoogleGenAI } from '@google/genai';

export interface GeminiSettings {
  apiKey: string;
  baseUrl?: string;
}

export function createGenAI(s: GeminiSettings): GoogleGenAI {
  return new GoogleGenAI({ apiKey: s.apiKey, httpOptions: s.baseUrl ? { baseUrl: s.baseUrl } : undefined });
}
