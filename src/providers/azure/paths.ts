/** Where a file's blob lives, and the metadata written with it. */

export interface BlobIdentity {
  id: string;
  tenant: string;
  filename: string;
  sha256: string;
}

/**
 * The file name as a blob name segment: ASCII letters, digits, ".", "_" and
 * "-" only (so the URL needs no escaping), at most 200 characters, never
 * empty or dot-only.
 */
export function sanitizeFilename(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const ascii = base.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
  const clean = ascii
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^[._]+|[._]+$/g, '')
    .slice(0, 200);
  return clean || 'file';
}

/** `{tenant}/{file id}/{sanitised filename}`. */
export function blobPathOf(f: BlobIdentity): string {
  return `${f.tenant}/${f.id}/${sanitizeFilename(f.filename)}`;
}

/** Metadata values must be ASCII: the original name is percent-encoded (decode with decodeURIComponent). */
export function blobMetadataOf(f: BlobIdentity): Record<string, string> {
  return {
    ferry_file_id: f.id,
    ferry_tenant: f.tenant,
    sha256: f.sha256,
    original_name: encodeURIComponent(f.filename),
  };
}
