/**
 * Field checks every request check uses (chat.ts, responses.ts, embeddings.ts): each refusal is a
 * 400 naming the field and saying what to send.
 */
import { BadRequestError } from '../core/errors.js';

export type Json = Record<string, unknown>;

export const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
export const given = (v: unknown) => v !== undefined && v !== null;

export function bad(message: string, param: string): never {
  throw new BadRequestError(message, { param });
}

/** A number (a whole one if `integer`) from `min` to `max`, when given. */
export function checkNumber(body: Json, name: string, min: number, max: number, integer = false) {
  const v = body[name];
  if (!given(v)) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    bad(`"${name}" must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}.`, name);
  }
}

/** OpenAI's metadata: up to 16 string values, when given. */
export function checkMetadata(metadata: unknown) {
  if (!given(metadata)) return;
  if (!isObj(metadata) || Object.values(metadata).some((v) => typeof v !== 'string') || Object.keys(metadata).length > 16) {
    bad('"metadata" must be an object of up to 16 string values.', 'metadata');
  }
}
