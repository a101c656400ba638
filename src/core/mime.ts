/**
 * Decides a file's media type from, in order: an explicit override, magic
 * bytes, a specific part Content-Type, the filename's extension, and finally
 * whether the first bytes read as UTF-8 text.
 */
import { fileTypeFromBuffer } from 'file-type';
import { lookup } from 'mime-types';

/** How many leading bytes detection looks at. */
export const SNIFF_BYTES = 4100;

const GENERIC = new Set(['application/octet-stream', 'binary/octet-stream', 'application/x-www-form-urlencoded', '']);

/** Extensions mime-types does not know or gets wrong for documents (".ts" is TypeScript here, not MPEG-TS). */
const EXTRA: Record<string, string> = {
  jsonl: 'application/jsonl',
  ndjson: 'application/x-ndjson',
  py: 'text/x-python',
  ts: 'text/x-typescript',
  tsx: 'text/x-typescript',
  go: 'text/x-go',
  rs: 'text/x-rust',
  java: 'text/x-java',
  kt: 'text/x-kotlin',
  c: 'text/x-c',
  h: 'text/x-c',
  cpp: 'text/x-c++',
  sql: 'application/sql',
  yaml: 'application/yaml',
  yml: 'application/yaml',
};

export function looksLikeText(head: Buffer): boolean {
  if (head.length === 0) return false;
  if (head.includes(0)) return false;
  try {
    // A multi-byte character cut at the end of the sample is fine.
    new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, Math.max(0, head.length - 4)));
    return true;
  } catch {
    return false;
  }
}

export function normalizeMime(m: string): string {
  return m.split(';')[0].trim().toLowerCase();
}

export async function detectMimeType(input: { override?: string; partType?: string; filename: string; head: Buffer }): Promise<string> {
  if (input.override) return normalizeMime(input.override);
  const magic = await fileTypeFromBuffer(input.head).catch(() => undefined);
  // Containers such as zip also hold docx/xlsx; let a specific extension refine them.
  const ext = input.filename.includes('.') ? input.filename.split('.').pop()!.toLowerCase() : '';
  const byExt = EXTRA[ext] ?? (lookup(input.filename) || '');
  if (magic && !(magic.mime === 'application/zip' && byExt.startsWith('application/vnd.'))) return magic.mime;
  const part = normalizeMime(input.partType ?? '');
  if (!GENERIC.has(part)) return part;
  if (byExt && !GENERIC.has(byExt)) return byExt;
  return looksLikeText(input.head) ? 'text/plain' : 'application/octet-stream';
}
