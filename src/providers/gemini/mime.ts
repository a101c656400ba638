/**
 * The media types the Gemini Files API takes (documents, images, audio, video,
 * text and code). Anything else is refused at upload with 415, before a byte
 * reaches Gemini.
 */
import { lookup } from 'mime-types';

const EXACT = new Set([
  'application/pdf',
  'application/json',
  'application/jsonl',
  'application/x-ndjson',
  'application/xml',
  'application/rtf',
  'application/x-javascript',
  'application/javascript',
  'application/x-python',
  'application/x-typescript',
  'application/x-sh',
  'application/sql',
  'application/yaml',
  'application/x-yaml',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/msword',
  'application/vnd.ms-excel',
  'application/vnd.ms-powerpoint',
  'application/vnd.oasis.opendocument.text',
  'application/vnd.oasis.opendocument.spreadsheet',
  'application/vnd.oasis.opendocument.presentation',
]);

const IMAGES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/heic', 'image/heif', 'image/gif', 'image/bmp', 'image/tiff']);

export function isGeminiMimeType(mime: string): boolean {
  const m = mime.toLowerCase();
  return m.startsWith('text/') || m.startsWith('audio/') || m.startsWith('video/') || IMAGES.has(m) || EXACT.has(m);
}

/** The Gemini media type a file name's extension says (null when it says none Gemini takes). */
export function mimeTypeOfName(name: string): string | null {
  const found = lookup(name);
  return found && isGeminiMimeType(found) ? found : null;
}
