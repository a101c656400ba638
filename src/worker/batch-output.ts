/**
 * The end of a batch: its output and error files, written from the line
 * records in Redis (never from a worker's memory), in line order, each
 * `custom_id` exactly once in exactly one of the two files. Lines still open
 * when a batch is cancelled or expires are closed first, with a status
 * transition, so a result arriving at the same moment either makes it into
 * the output or is discarded, never both.
 *
 * Both files are streamed into the staging store under ids derived from the
 * batch id: a finalize run again after a crash rewrites the same files.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { answerOf } from '../openai/jobs.js';
import type { JobRecord } from '../core/records/jobs.js';
import { isFinalJob } from '../core/records/jobs.js';
import { batchFileId, lineJobId, type BatchRecord, type BatchUsage, type RequestCounts } from '../core/records/batches.js';
import { newFileRecord, type FileRecord } from '../core/records/files.js';
import type { Services } from '../core/services.js';
import type { StagedObject, StagingStore } from '../core/staging.js';
import { nowSeconds } from '../core/time.js';

export type Ending = 'completed' | 'expired' | 'cancelled';

const READ_CHUNK = 200;

/** Thrown when a batch that should be complete still has an open line: the finalize job is retried. */
export class LinesStillOpen extends Error {}

const CLOSED: Record<Exclude<Ending, 'completed'>, { code: string; message: string }> = {
  expired: { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' },
  cancelled: { code: 'batch_cancelled', message: 'This request was not executed because the batch was cancelled.' },
};

export interface BatchResults {
  output_file_id: string | null;
  error_file_id: string | null;
  request_counts: RequestCounts;
  usage: BatchUsage | null;
}

/** A line's job record, final: open lines of an ending batch are closed first. */
async function finalLine(
  services: Services,
  batch: BatchRecord,
  index: number,
  rec: JobRecord | null,
  ending: Ending,
): Promise<JobRecord | null> {
  if (!rec || isFinalJob(rec)) return rec;
  if (ending === 'completed') throw new LinesStillOpen(`line ${index} of ${batch.id} is still ${rec.status}`);
  const { code, message } = CLOSED[ending];
  const error = { message, type: 'invalid_request_error', param: null, code, status: 409 };
  await services.jobs.transition(rec.id, { status: 'cancelled', error, finished_at: nowSeconds() });
  return services.jobs.get(rec.id);
}

/** Closes the open line records of a batch that ended before it started (they never ran). */
export async function closeLines(
  services: Services,
  batch: BatchRecord,
  count: number,
  ending: Exclude<Ending, 'completed'>,
): Promise<void> {
  for (let start = 0; start < count; start += READ_CHUNK) {
    const ids = Array.from({ length: Math.min(READ_CHUNK, count - start) }, (_, k) => lineJobId(batch.id, start + k));
    const recs = await Promise.all(ids.map((id) => services.jobs.get(id)));
    await Promise.all(recs.map((rec, k) => finalLine(services, batch, start + k, rec, ending)));
  }
}

function outputLine(rec: JobRecord): string {
  return JSON.stringify({
    id: `batch_req_${rec.id.slice('job-'.length)}`,
    custom_id: rec.custom_id,
    response: { status_code: 200, request_id: rec.id, body: answerOf(rec) },
    error: null,
  });
}

function errorLine(rec: JobRecord | null, id: string): string {
  const error = rec?.error
    ? { code: rec.error.code ?? rec.error.type, message: rec.error.message }
    : rec
      ? { code: 'job_cancelled', message: `Job '${rec.id}' was cancelled.` }
      : { code: 'line_missing', message: `The record of '${id}' is no longer kept.` };
  return JSON.stringify({ id: `batch_req_${id.slice('job-'.length)}`, custom_id: rec?.custom_id ?? null, response: null, error });
}

/** A JSONL file being streamed into the staging store. */
export class JsonlSink {
  private readonly stream = new PassThrough({ highWaterMark: 1 << 20 });
  readonly done: Promise<StagedObject>;
  lines = 0;
  constructor(
    staging: StagingStore,
    readonly id: string,
  ) {
    this.done = staging.write(id, this.stream);
    this.done.catch(() => {});
  }
  async write(line: string) {
    this.lines++;
    if (!this.stream.write(`${line}\n`)) await Promise.race([once(this.stream, 'drain'), this.done]);
  }
  async end(): Promise<StagedObject> {
    this.stream.end();
    return this.done;
  }
  abort(err: Error) {
    this.stream.destroy(err);
  }
}

/** A line's usage added in: a chat completion's (prompt/completion tokens) or a response's (input/output tokens). */
function addUsage(total: BatchUsage, usage: unknown) {
  const u = usage as
    | {
        prompt_tokens?: number;
        completion_tokens?: number;
        input_tokens?: number;
        output_tokens?: number;
        total_tokens?: number;
        input_tokens_details?: { cached_tokens?: number };
        prompt_tokens_details?: { cached_tokens?: number };
        output_tokens_details?: { reasoning_tokens?: number };
      }
    | null
    | undefined;
  total.input_tokens += u?.prompt_tokens ?? u?.input_tokens ?? 0;
  total.output_tokens += u?.completion_tokens ?? u?.output_tokens ?? 0;
  total.total_tokens += u?.total_tokens ?? 0;
  total.input_tokens_details.cached_tokens += u?.input_tokens_details?.cached_tokens ?? u?.prompt_tokens_details?.cached_tokens ?? 0;
  total.output_tokens_details.reasoning_tokens += u?.output_tokens_details?.reasoning_tokens ?? 0;
}

/**
 * Reads every line of the batch in order and writes the output and error
 * files; answers their ids (null for an empty one), the counts and the usage.
 */
export async function writeResults(services: Services, batch: BatchRecord, ending: Ending): Promise<BatchResults> {
  const total = batch.total ?? 0;
  const out = new JsonlSink(services.staging, batchFileId(batch.id, 'output'));
  const err = new JsonlSink(services.staging, batchFileId(batch.id, 'error'));
  const usage: BatchUsage = {
    input_tokens: 0,
    output_tokens: 0,
    total_tokens: 0,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens_details: { reasoning_tokens: 0 },
  };
  try {
    for (let start = 0; start < total; start += READ_CHUNK) {
      const ids = Array.from({ length: Math.min(READ_CHUNK, total - start) }, (_, k) => lineJobId(batch.id, start + k));
      const fetched = await Promise.all(ids.map((id) => services.jobs.get(id)));
      const recs = await Promise.all(fetched.map((rec, k) => finalLine(services, batch, start + k, rec, ending)));
      for (const [k, rec] of recs.entries()) {
        if (rec?.status === 'succeeded') {
          addUsage(usage, rec.result?.usage);
          await out.write(outputLine(rec));
        } else await err.write(errorLine(rec, ids[k]));
      }
    }
  } catch (e) {
    out.abort(e as Error);
    err.abort(e as Error);
    await Promise.allSettled([out.done, err.done]);
    throw e;
  }
  const [outFile, errFile] = await Promise.all([out.end(), err.end()]);
  const keep = async (sink: JsonlSink, staged: StagedObject, kind: 'output' | 'error') => {
    if (sink.lines === 0) {
      await services.staging.delete(sink.id);
      return null;
    }
    await services.files.create(outputFileRecord(services, batch, sink.id, kind, staged));
    return sink.id;
  };
  return {
    output_file_id: await keep(out, outFile, 'output'),
    error_file_id: await keep(err, errFile, 'error'),
    request_counts: { total, completed: out.lines, failed: err.lines },
    usage: out.lines > 0 ? usage : null,
  };
}

function outputFileRecord(services: Services, batch: BatchRecord, id: string, kind: 'output' | 'error', staged: StagedObject): FileRecord {
  return newFileRecord({
    id,
    tenant: batch.tenant,
    filename: `${batch.id}_${kind}.jsonl`,
    purpose: 'batch_output',
    bytes: staged.bytes,
    sha256: staged.sha256,
    mime_type: 'application/jsonl',
    storage: 'local',
    contentRetentionSeconds: services.config.contentRetentionSeconds,
    expiresAfterSeconds: batch.output_expires_after_seconds ?? null,
  });
}
