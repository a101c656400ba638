/**
 * A file's early upload (see domain/early-uploads.ts): its whole chunks sent to Gemini as they land
 * in staging while the API still receives the file, so that the upload to Gemini ends about when
 * the client's send does. The file's upload job takes the session over (`takeEarlySession`) and
 * sends the rest; whoever finds the request ended without the file cancels the session (`reap`).
 *
 * One worker sends at a time (a lease); one crashed mid-way is run again by BullMQ and asks the
 * session how much Gemini holds, or the upload job takes the session over once the lease lapses.
 */
import type { Job } from 'bullmq';
import { crashPoint } from '../core/crash-points.js';
import { Lease } from '../core/lease.js';
import { earlyUploads } from '../core/metrics.js';
import { detectMimeType } from '../core/mime.js';
import type { EarlyUploadJobData } from '../core/queues.js';
import type { FileRecord } from '../core/records/files.js';
import { sleep } from '../core/retry.js';
import { HEAD_BYTES, type FollowedObject } from '../core/staging.js';
import type { Services } from '../core/services.js';
import { dropEarlyUpload, earlyUploadOf, recordEarlySession, type EarlyUpload } from '../domain/early-uploads.js';
import { isGeminiMimeType } from '../providers/gemini/mime.js';
import { UploadAbortedError } from '../providers/gemini/uploader.js';
import { uploadedBytesCounter, type UploadDeps } from './transfer.js';

/** Short: the upload job waits this long at most for a crashed sender's lease. */
const LEASE_TTL_MS = 5_000;
/** How often the staged file's length is looked at while waiting for bytes. */
const POLL_MS = 20;
/** How often Redis is asked how the request is going. */
const CHECK_MS = 250;
const READ_BUFFER_BYTES = 1 << 20;

/**
 * This sender stops, leaving the session as it is: the request ended without a file to send, or
 * the session is no longer this sender's (taken over, its lease lost). An UploadAbortedError, so
 * that the uploader passes it on untouched.
 */
class EarlyUploadEnded extends UploadAbortedError {}

export function earlyUploadProcessor(deps: UploadDeps) {
  return (job: Job<EarlyUploadJobData>) => earlyUpload(deps, job.data);
}

async function earlyUpload(deps: UploadDeps, data: EarlyUploadJobData): Promise<unknown> {
  const { services } = deps;
  const lease = earlyLease(services, data.fileId);
  if (!(await lease.acquire())) return { skipped: 'sent by another worker' };
  const arrival = new Arrival(services, data, lease);
  let sent: unknown;
  try {
    sent = await sendWhatArrives(deps, data, arrival);
  } catch (err) {
    if (!(err instanceof UploadAbortedError)) {
      services.logger.warn({ file_id: data.fileId, err: (err as Error).message }, 'early upload stopped');
    }
  } finally {
    await lease.release();
  }
  // The upload job may take the session from here on; until the request has ended, someone must
  // be there to cancel it should the file not be accepted.
  const end = await arrival.ending().catch(() => 'ended' as const);
  await arrival.close();
  if (end === 'ended') await reap(deps, data.fileId);
  return { ...(typeof sent === 'object' ? sent : {}), request: end };
}

const earlyLease = (services: Services, fileId: string) => new Lease(services.redis, services.keys.earlyUploadLease(fileId), LEASE_TTL_MS);

/** Sends the whole chunks of the file as they land; the last part is left for the upload job, which finalizes. */
async function sendWhatArrives(deps: UploadDeps, data: EarlyUploadJobData, arrival: Arrival): Promise<unknown> {
  const { services } = deps;
  const state = await arrival.check();
  const followed = await arrival.staged();
  await arrival.landed(Math.min(HEAD_BYTES, data.bytes));
  const head = await readHead(followed, Math.min(HEAD_BYTES, data.bytes));
  const mime = await detectMimeType({ override: data.mime_override, partType: data.part_type, filename: data.filename, head });
  // A type Gemini refuses is the API's to answer (415); nothing to send.
  if (!isGeminiMimeType(mime)) throw new EarlyUploadEnded();
  // Whole chunks, and never the last byte: the upload job's finalizing chunk always carries bytes.
  const chunk = services.config.uploadChunkBytes;
  const until = Math.floor((data.bytes - 1) / chunk) * chunk;
  const resumed = state.session && state.session.mime === mime ? state.session : null;
  const uploaded = uploadedBytesCounter(services, data.tenant, resumed?.offset ?? 0);
  const session = await deps.gemini.uploader.sendAhead(
    {
      size: data.bytes,
      mimeType: mime,
      displayName: data.display_name,
      source: (start, end) => followed.read({ start, end }),
      session: resumed,
      onProgress: async (s) => {
        uploaded(s.offset);
        const outcome = await recordEarlySession(services, data.fileId, { ...s, mime });
        crashPoint('early.recorded');
        // Refused: the uploader cancels the session. No state: the upload job has it, not this sender's to cancel.
        if (outcome === 'refused') return false;
        if (outcome !== 'receiving' && outcome !== 'accepted') throw new EarlyUploadEnded();
        return true;
      },
      ready: (end) => arrival.landed(end),
    },
    until,
  );
  return 'offset' in session ? { sent: session.offset } : {};
}

async function readHead(followed: FollowedObject, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const slice of followed.read({ start: 0, end: bytes - 1 })) parts.push(Buffer.from(slice));
  return Buffer.concat(parts);
}

/**
 * The request as the early upload sees it: the staged file growing, and the API's word on it.
 * Every wait ends with EarlyUploadEnded once no more bytes will come: the API refused the file,
 * the upload job has taken over, or nothing has arrived for FERRY_UPLOAD_STALL_SECONDS.
 */
class Arrival {
  private followed: FollowedObject | null = null;
  private seen = 0;
  private lastGrowth = Date.now();
  private lastCheck = 0;
  private readonly stallMs: number;

  constructor(
    private readonly services: Services,
    private readonly data: EarlyUploadJobData,
    private readonly lease: Lease,
  ) {
    this.stallMs = services.config.uploadOverlap.stallSeconds * 1000;
  }

  /** The early upload's state; EarlyUploadEnded unless the request is still on. */
  async check(): Promise<EarlyUpload> {
    const state = await earlyUploadOf(this.services, this.data.fileId);
    if (!state || state.outcome === 'refused') throw new EarlyUploadEnded();
    return state;
  }

  async staged(): Promise<FollowedObject> {
    for (;;) {
      this.followed = (await this.services.staging.follow(this.data.staging_key, Buffer.allocUnsafe(READ_BUFFER_BYTES))) ?? null;
      if (this.followed) return this.followed;
      await this.wait(0, 0);
    }
  }

  /** Resolves once `end` bytes have landed. */
  async landed(end: number): Promise<void> {
    for (;;) {
      const landed = await this.followed!.landed();
      if (landed >= end) return;
      await this.wait(landed, end);
    }
  }

  /** Notes how much has landed; true once nothing has for FERRY_UPLOAD_STALL_SECONDS. */
  private stalled(landed: number): boolean {
    const now = Date.now();
    if (landed > this.seen) {
      this.seen = landed;
      this.lastGrowth = now;
    }
    return now - this.lastGrowth > this.stallMs;
  }

  private async wait(landed: number, end: number): Promise<void> {
    if (this.stalled(landed)) throw new EarlyUploadEnded();
    const now = Date.now();
    if (now - this.lastCheck >= CHECK_MS) {
      this.lastCheck = now;
      if (!(await this.lease.mine())) throw new EarlyUploadEnded();
      const state = await this.check();
      // Accepted: every byte is here, so a shortfall means the file is not the size foreseen.
      if (state.outcome === 'accepted' && this.followed && (await this.followed.landed()) < end) throw new EarlyUploadEnded();
    }
    await sleep(POLL_MS);
  }

  /** How the request ends: `accepted` (the file's record exists; its upload job finishes), or `ended` without it. */
  async ending(): Promise<'accepted' | 'ended'> {
    for (;;) {
      const [state, rec] = await Promise.all([earlyUploadOf(this.services, this.data.fileId), this.services.files.get(this.data.fileId)]);
      if (!state) return 'accepted';
      if (state.outcome === 'refused') return 'ended';
      if (rec) return 'accepted';
      // Accepted and no record: deleted already.
      if (state.outcome === 'accepted') return 'ended';
      if (this.stalled(this.followed ? await this.followed.landed() : 0)) return 'ended';
      await sleep(CHECK_MS);
    }
  }

  async close(): Promise<void> {
    await this.followed?.close().catch(() => {});
    this.followed = null;
  }
}

/**
 * Cancels the early session and forgets the early upload. Cancelled before it is forgotten: a
 * crash in between leaves it named, for a rerun of the early job (or the file's removal) to cancel again.
 */
export async function reap(deps: UploadDeps, fileId: string): Promise<void> {
  const session = (await earlyUploadOf(deps.services, fileId))?.session;
  if (session) await deps.gemini.uploader.cancel(session.url);
  if ((await dropEarlyUpload(deps.services, fileId)) && session) earlyUploads.inc({ outcome: 'cancelled' });
}

/**
 * The file's early session, taken over by its upload job: recorded on the file (from where its
 * upload resumes it, in any process) under the sender's lease, so that no sender is still writing
 * to it. A session started for another size or type than the file turned out to have is
 * cancelled. Answers the record to upload.
 */
export async function takeEarlySession(deps: UploadDeps, rec: FileRecord): Promise<FileRecord> {
  const { services } = deps;
  const first = await earlyUploadOf(services, rec.id);
  if (!first) return rec;
  const lease = earlyLease(services, rec.id);
  const deadline = Date.now() + services.config.activeWaitSeconds * 1000;
  while (!(await lease.acquire())) {
    if (Date.now() > deadline) {
      // A sender that holds on this long is stuck: its session is left to it, and it stops at its next record.
      await dropEarlyUpload(services, rec.id);
      return rec;
    }
    await sleep(POLL_MS);
  }
  try {
    return await takeUnderLease(deps, rec);
  } finally {
    await lease.release();
  }
}

async function takeUnderLease(deps: UploadDeps, rec: FileRecord): Promise<FileRecord> {
  const { services } = deps;
  const state = await earlyUploadOf(services, rec.id);
  const session = state?.session ?? null;
  // Taken already (by an attempt that crashed after recording it on the file), or the file has a session of its own.
  const usable = session && !rec.upload_url && state!.bytes === rec.bytes && session.mime === rec.mime_type;
  if (!usable) {
    if (session && session.url !== rec.upload_url) await deps.gemini.uploader.cancel(session.url);
    await dropEarlyUpload(services, rec.id);
    return rec;
  }
  // On the file first: a crash between these writes leaves the session named in both places, and
  // the next attempt finds it on the file.
  const taken = { upload_url: session.url, upload_offset: session.offset };
  await services.files.update(rec.id, taken);
  crashPoint('early.taken');
  await dropEarlyUpload(services, rec.id);
  earlyUploads.inc({ outcome: 'taken' });
  return { ...rec, ...taken };
}
