/**
 * Files named by URL (`url` on POST /v1/files) rather than sent. Gemini reads public and signed
 * https URLs itself, up to GEMINI_EXTERNAL_URL_MAX_BYTES: such a file is registered as it is (its
 * URL is its Gemini uri; no byte passes through Ferry) once a token count of it shows that Gemini
 * fetches it. Whether it does varies (hosts it cannot reach, sizes it will not take). A Cloud
 * Storage object (gs://) is registered with Gemini's files:register when Google credentials are
 * configured (GOOGLE_APPLICATION_CREDENTIALS) and its bucket lets Gemini read it. Anything else
 * (http, larger files, a refusal, an Azure target, gs:// without access) is fetched here through
 * the SSRF guard (a gs:// object from its public address) into staging, and travels on as an
 * upload does.
 *
 * Safe to repeat: bytes staged and recorded by an earlier attempt are not fetched again.
 */
import { Readable } from 'node:stream';
import { UnrecoverableError } from 'bullmq';
import { PayloadTooLargeError } from '../core/errors.js';
import type { FileRecord } from '../core/records/files.js';
import { markProcessed } from '../domain/files.js';
import { isGeminiMimeType } from '../providers/gemini/mime.js';
import { GEMINI_EXTERNAL_URL_MAX_BYTES } from '../providers/gemini/files.js';
import { openUrl, type Wanted } from './images.js';
import { activeCopyFields, stagedBytesRetained, type UploadDeps } from './transfer.js';

/** The model whose token count tells whether Gemini fetches a URL, when the file names none. */
const PROBE_MODEL = 'gemini-2.5-flash';
/** A fetch of a whole file (up to 2 GB) may take this long. */
const FETCH_TIMEOUT_MS = 30 * 60_000;
const UNTYPED = 'application/octet-stream';

export type FromUrl = { registered: { uri: string } | { skipped: 'deleted' } } | { staged: FileRecord };

export async function takeFromUrl(deps: UploadDeps, rec: FileRecord, url: string): Promise<FromUrl> {
  if (rec.bytes > 0 && (await stagedBytesRetained(deps.services, rec))) return { staged: rec };
  if (url.startsWith('https://') && rec.storage === 'gemini') {
    const registered = await registerWithGemini(deps, rec, url);
    if (registered) return { registered };
  }
  if (url.startsWith('gs://') && rec.storage === 'gemini') {
    const copy = await registerCloudObject(deps, rec);
    if (copy) return { registered: { uri: copy.fileUri } };
  }
  return { staged: await stageFromUrl(deps, rec, fetchableUrlOf(url)) };
}

/** A type the client named (mime_type, or the URL's name) wins over what the server says. */
const namedType = (rec: FileRecord) => (rec.mime_type !== UNTYPED ? rec.mime_type : null);

const wanted = (rec: FileRecord, timeoutMs?: number): Wanted => ({
  label: 'File URL',
  param: 'url',
  accepts: (type) => namedType(rec) !== null || rec.storage !== 'gemini' || isGeminiMimeType(type),
  timeoutMs,
});

/** Registered as the URL itself when Gemini fetches it and it is within Gemini's size for URLs; else null. */
async function registerWithGemini(deps: UploadDeps, rec: FileRecord, url: string) {
  const { config } = deps.services;
  // Only the headers are read (a GET let go, not a HEAD, which a URL signed for GET refuses): the size and type Gemini will see.
  const head = await openUrl(url, config.allowPrivateNetworks, wanted(rec));
  await head.close();
  if (head.length === null || head.length === 0 || head.length > GEMINI_EXTERNAL_URL_MAX_BYTES) return null;
  const mimeType = namedType(rec) ?? head.mimeType;
  const model = rec.target_model_names[0] ?? PROBE_MODEL;
  if (!(await deps.gemini.files.fetchesUrl(model, url, mimeType))) return null;
  const processed = await markProcessed(deps.services, rec.id, {
    bytes: head.length,
    mime_type: mimeType,
    gemini_uri: url,
    provider_state: 'active',
  });
  return processed ? { uri: url } : ({ skipped: 'deleted' } as const);
}

/**
 * A gs:// file registered with Gemini (again, when its registration has expired): the record says
 * processed with the registered copy. Null when it cannot be (no credentials, no access).
 */
export async function registerCloudObject(deps: UploadDeps, rec: FileRecord): Promise<{ fileUri: string; mimeType: string } | null> {
  const url = rec.source_url;
  if (!url?.startsWith('gs://') || !deps.gemini.files.registers) return null;
  let file = await deps.gemini.files.register(url);
  if (!file) return null;
  if (file.state === 'PROCESSING')
    file = await deps.gemini.files.waitUntilProcessed(file.name, deps.services.config.activeWaitSeconds * 1000);
  if (file.state !== 'ACTIVE' || !file.uri) return null;
  const mimeType = namedType(rec) ?? file.mimeType ?? UNTYPED;
  const fields = {
    ...activeCopyFields(file),
    gemini_name: file.name,
    provider_state: 'active' as const,
    bytes: Number(file.sizeBytes ?? 0),
    mime_type: mimeType,
  };
  // A file deleted meanwhile keeps no record; its registration holds no bytes and expires upstream.
  if (rec.status === 'processed') await deps.services.files.update(rec.id, fields);
  else await markProcessed(deps.services, rec.id, fields);
  return { fileUri: file.uri, mimeType };
}

/** A Cloud Storage object is fetched from its public address (a private one needs it shared, or a signed URL). */
function fetchableUrlOf(url: string): string {
  if (!url.startsWith('gs://')) return url;
  const [bucket, ...object] = url.slice(5).split('/');
  return `https://storage.googleapis.com/${bucket}/${object.map(encodeURIComponent).join('/')}`;
}

/** Fetches the file into staging (bounded by FERRY_MAX_FILE_BYTES) and records its size, hash and type. */
async function stageFromUrl(deps: UploadDeps, rec: FileRecord, url: string): Promise<FileRecord> {
  const { config, staging, files } = deps.services;
  const got = await openUrl(url, config.allowPrivateNetworks, wanted(rec, FETCH_TIMEOUT_MS));
  const max = config.maxFileBytes;
  if (got.length !== null && got.length > max) {
    await got.close();
    throw tooLarge(url, max);
  }
  const staged = await staging.write(rec.staging_key, Readable.from(limited(got.body ?? [], max, url)));
  if (staged.bytes === 0) throw new UnrecoverableError(`File URL ${url} served no bytes.`);
  const fields = { bytes: staged.bytes, sha256: staged.sha256, mime_type: namedType(rec) ?? got.mimeType };
  await files.update(rec.id, fields);
  return { ...rec, ...fields };
}

const tooLarge = (url: string, max: number) =>
  new PayloadTooLargeError(`File URL ${url} is larger than the maximum of ${max} bytes (FERRY_MAX_FILE_BYTES).`, { param: 'url' });

async function* limited(body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, max: number, url: string): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of body) {
    seen += chunk.length;
    if (seen > max) throw tooLarge(url, max);
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
  }
}
