/**
 * Batch records (OpenAI's Batch API) on the generic record store, plus two
 * keys beside each record that many workers update at once without a
 * read-modify-write of the record:
 * - `<batch>:lines`, a hash of counters: `fed` (lines handed to the generate
 *   queue so far), `completed`, `failed` (HINCRBY);
 * - `<batch>:done`, a bitmap of the lines already counted, so that a line
 *   seen final twice (a retried job, a crash after its result) counts once.
 */
import type { Redis } from 'ioredis';
import { base62, derivedId } from '../ids.js';
import type { BatchExecution } from '../config.js';
import type { Keys } from '../keys.js';
import { withScripts, type Scripted } from '../scripts/index.js';
import { RecordStore, type Lifecycle, type ScoredEntry } from './store.js';

export type BatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';
export const FINAL_BATCH_STATUSES: readonly BatchStatus[] = ['failed', 'completed', 'expired', 'cancelled'];
export const isFinalBatch = (b: BatchRecord) => FINAL_BATCH_STATUSES.includes(b.status);

/**
 * A batch's life: validating → in_progress → finalizing (its files being written) → completed or
 * expired; cancelling → cancelled. It fails when its input is refused or its files cannot be written.
 */
export const BATCH_LIFECYCLE: Lifecycle<BatchStatus> = {
  validating: [],
  in_progress: ['validating'],
  finalizing: ['validating', 'in_progress'],
  cancelling: ['validating', 'in_progress'],
  failed: ['validating', 'in_progress', 'finalizing', 'cancelling'],
  completed: ['finalizing'],
  expired: ['finalizing'],
  cancelled: ['cancelling'],
};

export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface RequestCounts {
  total: number;
  completed: number;
  failed: number;
}

export interface BatchUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens_details: { reasoning_tokens: number };
}

export interface BatchRecord {
  id: string;
  tenant: string;
  status: BatchStatus;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  metadata: Record<string, string> | null;
  /** How long the output and error files are kept (`output_expires_after.seconds`); absent: the default. */
  output_expires_after_seconds?: number | null;
  errors: { object: 'list'; data: BatchError[] } | null;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  /** Request lines in the input, known once validation has passed. */
  total: number | null;
  /** How a `finalizing` batch ends: every line done, or the completion window passed. */
  ending: 'completed' | 'expired' | null;
  /** Set when the batch ends: exactly what its output and error files hold. */
  request_counts: RequestCounts | null;
  usage: BatchUsage | null;
  /** How its lines run (absent on batches made before the choice existed: direct). */
  execution?: BatchExecution;
  /** Gemini Batch Mode: one Gemini batch per model of its lines. */
  gemini_batches?: GeminiBatchRef[] | null;
}

/** One Gemini batch of a Ferry batch run on Gemini Batch Mode: the lines of one model. */
export interface GeminiBatchRef {
  model: string;
  /** How many of the batch's lines ask this model. */
  lines: number;
  /** The uploaded input file (`files/…`) and the Gemini batch (`batches/…`), once made. */
  input_file: string | null;
  name: string | null;
  /** Gemini's state as last read (PENDING, RUNNING, SUCCEEDED, …), or PREPARING before it exists. */
  state: string;
  succeeded: number;
  failed: number;
  responses_file: string | null;
  /** Its lines' records hold their answers (or errors): nothing more to read from Gemini. */
  collected: boolean;
}

export interface LineState {
  fed: number;
  completed: number;
  failed: number;
}

const lineState = ([fed, completed, failed]: Array<string | null>): LineState => ({
  fed: Number(fed ?? 0),
  completed: Number(completed ?? 0),
  failed: Number(failed ?? 0),
});

/** The generate job (and job record) id of request line `index` (0-based) of a batch: lines sort in order. */
export function lineJobId(batchId: string, index: number): string {
  return `job-${batchId.slice(-25, -4)}${base62(index, 4)}`;
}

/** Deterministic ids of a batch's output and error files: a finalize run again writes the same files. */
export function batchFileId(batchId: string, kind: 'output' | 'error'): string {
  return derivedId('file', batchId, kind);
}

export class BatchStore extends RecordStore<BatchRecord> {
  private readonly scripts: Scripted;

  constructor(
    redis: Redis,
    keys: Keys,
    private readonly retention: number,
  ) {
    super(redis, keys, { kind: 'batch', retentionSeconds: retention, lifecycle: BATCH_LIFECYCLE });
    this.scripts = withScripts(redis);
  }

  linesKey(id: string) {
    return this.keys.batchLines(id);
  }
  doneKey(id: string) {
    return this.keys.batchDone(id);
  }

  /** Its line counters start at zero, unless a batch under this id counts already (a create repeated after a crash). */
  override async create(rec: BatchRecord, scored: ScoredEntry[] = []): Promise<boolean> {
    const lines = this.linesKey(rec.id);
    await this.redis
      .multi()
      .hsetnx(lines, 'fed', 0)
      .hsetnx(lines, 'completed', 0)
      .hsetnx(lines, 'failed', 0)
      .expire(lines, this.retention)
      .set(this.doneKey(rec.id), '\0', 'EX', this.retention, 'NX')
      .exec();
    return super.create(rec, scored);
  }

  protected override partsOf(rec: BatchRecord): string[] {
    return [this.linesKey(rec.id), this.doneKey(rec.id)];
  }

  /** Counts line `index` as completed or failed, once (a repeated call changes nothing); answers the counters. */
  /** Counts line `index` once; `counted` says whether this call did (a line seen final again counts no more). */
  async markLine(id: string, index: number, outcome: 'completed' | 'failed'): Promise<LineState & { counted: boolean }> {
    const reply = await this.scripts.ferryMarkLine(this.doneKey(id), this.linesKey(id), index, outcome);
    return { ...lineState(reply.slice(0, 3) as Array<string | null>), counted: reply[3] === 1 };
  }

  async lineState(id: string): Promise<LineState> {
    return lineState(await this.redis.hmget(this.linesKey(id), 'fed', 'completed', 'failed'));
  }

  raiseFed(id: string, to: number): Promise<number> {
    return this.scripts.ferryRaiseFed(this.linesKey(id), to);
  }

  /** The batch's status, line total and execution, read without the rest of the record. */
  async progress(id: string): Promise<{ status: BatchStatus | null; total: number; execution: BatchExecution }> {
    const [status, total, execution] = await this.redis.hmget(this.key(id), 'status', 'total', 'execution');
    return {
      status: status ? (JSON.parse(status) as BatchStatus) : null,
      total: total ? Number(JSON.parse(total) ?? 0) : 0,
      execution: execution ? (JSON.parse(execution) as BatchExecution) : 'direct',
    };
  }

  /**
   * `request_counts`: frozen once the batch has ended, live from the counters before; on Gemini
   * Batch Mode, also from the progress Gemini reports before the answers are read.
   */
  async counts(rec: BatchRecord): Promise<RequestCounts> {
    if (rec.request_counts) return rec.request_counts;
    const s = await this.lineState(rec.id);
    const gemini = rec.gemini_batches ?? [];
    const reported = (pick: (g: GeminiBatchRef) => number) => gemini.reduce((n, g) => n + pick(g), 0);
    return {
      total: rec.total ?? 0,
      completed: Math.max(
        s.completed,
        reported((g) => g.succeeded),
      ),
      failed: Math.max(
        s.failed,
        reported((g) => g.failed),
      ),
    };
  }
}
