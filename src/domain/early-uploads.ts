/**
 * A file sent on to Gemini while the API still receives it (an "early upload").
 *
 * Gemini's resumable upload must be told the file's size when it starts, so an upload can begin
 * early only when the size is known as the bytes begin: the form's fields come before the file
 * (the Python SDK, curl) and the request states its Content-Length. The API decides that here and
 * says how the request ended; a worker (worker/early-upload.ts) sends whole chunks as they land
 * and records the session; the file's own upload job takes the session over once the file is
 * accepted and finishes it. Nothing is finalized early: a refused or cut-off request leaves an
 * unfinished session, which is cancelled.
 *
 * The state is one small hash per file, so API and workers may be any processes:
 * `outcome` (receiving → accepted | refused), `bytes`, and once a session exists `url`, `offset`
 * and the `mime` it was started with. Whoever ends the early upload (the upload job taking the
 * session over, or whoever cancels it) deletes the state; a sender that finds none stops.
 */
import type { Config } from '../core/config.js';
import { enqueueEarlyUpload } from '../core/enqueue.js';
import { earlyUploads } from '../core/metrics.js';
import type { EarlyUploadJobData } from '../core/queues.js';
import type { Services } from '../core/services.js';
import { withScripts } from '../core/scripts/index.js';
import { checkUploadParams, type FieldValue } from '../openai/files.js';

export type EarlyOutcome = 'receiving' | 'accepted' | 'refused';

export interface EarlyUpload {
  outcome: EarlyOutcome;
  bytes: number;
  /** The Gemini session, once the worker started one. */
  session: { url: string; offset: number; mime: string } | null;
}

/** The state outlives any request and any stall by far; it is gone by itself after that. */
const STATE_TTL_SECONDS = 24 * 3600;

/** What the API knows as the file's bytes begin. */
export interface StartingFile {
  fileId: string;
  tenant: string;
  stagingKey: string;
  fields: Record<string, FieldValue>;
  query: Record<string, unknown>;
  filename: string;
  partType: string;
  /** The file's size as the request's length gives it, or null when that cannot tell. */
  bytes: number | null;
}

/** Whether this API may ask for early uploads at all: on, and staged where a worker can read a write under way. */
export const earlyUploadsPossible = (config: Config) => config.uploadOverlap.enabled && !config.stagingContainer;

/**
 * The early upload to ask for, or null: the size is known, the fields already ask for a Gemini
 * file within its limit, and the file is larger than one chunk (a smaller one gains nothing).
 * Fields that will be refused start nothing: the request is answered with its 400 as ever.
 */
export function earlyUploadPlan(config: Config, start: StartingFile): EarlyUploadJobData | null {
  const { bytes } = start;
  if (bytes === null || bytes <= config.uploadChunkBytes || bytes > config.maxFileBytes) return null;
  let params: ReturnType<typeof checkUploadParams>;
  try {
    params = checkUploadParams(start.fields, start.query);
  } catch {
    return null;
  }
  if (params.purpose === 'batch' || params.targetStorage !== 'gemini' || params.sourceUrl) return null;
  return {
    fileId: start.fileId,
    tenant: start.tenant,
    staging_key: start.stagingKey,
    bytes,
    display_name: params.displayName || start.filename,
    filename: start.filename,
    part_type: start.partType,
    ...(params.mimeType ? { mime_override: params.mimeType } : {}),
  };
}

/** Marks the file's early upload as under way and queues its worker. */
export async function beginEarlyUpload(services: Services, plan: EarlyUploadJobData): Promise<void> {
  const key = services.keys.earlyUpload(plan.fileId);
  await services.redis.multi().hset(key, { outcome: 'receiving', bytes: plan.bytes }).expire(key, STATE_TTL_SECONDS).exec();
  try {
    await enqueueEarlyUpload(services, plan);
  } catch (err) {
    await services.redis.del(key).catch(() => {});
    throw err;
  }
  earlyUploads.inc({ outcome: 'started' });
}

/** How the request ended: the file accepted (its record written), or not (refused, cut off, a repeat). */
export async function endEarlyUpload(services: Services, fileId: string, outcome: 'accepted' | 'refused'): Promise<void> {
  const key = services.keys.earlyUpload(fileId);
  await services.redis.multi().hset(key, 'outcome', outcome).expire(key, STATE_TTL_SECONDS).exec();
}

export async function earlyUploadOf(services: Services, fileId: string): Promise<EarlyUpload | null> {
  const h = await services.redis.hgetall(services.keys.earlyUpload(fileId));
  if (!h.outcome) return null;
  return {
    outcome: h.outcome as EarlyOutcome,
    bytes: Number(h.bytes ?? 0),
    session: h.url ? { url: h.url, offset: Number(h.offset ?? 0), mime: h.mime ?? '' } : null,
  };
}

/**
 * The sender's session and how far it got, written only while the request is on. Answers the
 * state's outcome: `receiving` or `accepted` to go on; `refused` to cancel the session; '' (the
 * state deleted) when the upload job holds it now.
 */
export async function recordEarlySession(
  services: Services,
  fileId: string,
  session: { url: string; offset: number; mime: string },
): Promise<EarlyOutcome | ''> {
  const key = services.keys.earlyUpload(fileId);
  return (await withScripts(services.redis).ferryEarlyRecord(key, session.url, session.offset, session.mime, STATE_TTL_SECONDS)) as
    EarlyOutcome | '';
}

/** Ends the early upload: true for the one caller that deleted its state. */
export async function dropEarlyUpload(services: Services, fileId: string): Promise<boolean> {
  return (await services.redis.del(services.keys.earlyUpload(fileId))) === 1;
}
