/** Batch Mode jobs as the emulator holds them, and the setting new batches are made under. */

import { randomBytes } from 'node:crypto';
import type { EmbedInput } from './types.js';
import { RpcError } from './errors.js';
import type { BatchEndState, BatchSetting } from './types.js';

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** Batch ids are this long, so that the responses file id "batch-<id>" stays within the 40 characters of a file id. */
const ID_LENGTH = 32;
/** Bounds each period of the schedule: a real batch expires after 48 h pending or running. */
export const MAX_BATCH_PERIOD_MS = 48 * 3600_000;

const DEFAULT_BATCH_SETTING: Readonly<BatchSetting> = { pendingMs: 200, runningMs: 500, failKeys: [], endState: 'SUCCEEDED' };
const END_STATES: readonly string[] = ['SUCCEEDED', 'FAILED', 'EXPIRED'];

/** What a batch's lines ask: generateContent (batchGenerateContent) or embedContent (asyncBatchEmbedContent). */
export type BatchKind = 'generate' | 'embed';

/** The end states a call can impose on a pending or running batch. */
export type ForcedState = 'CANCELLED' | 'EXPIRED' | 'FAILED';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface BatchLine {
  key?: string;
  /** Inline input: the request's metadata, echoed with its answer. */
  metadata?: Json;
  request: unknown;
}

export interface LineAnswer {
  key?: string;
  metadata?: Json;
  response?: Json;
  /** An embeddings line: its vector is computed when the output is written (its inputs are small, the vector is not). */
  embedding?: EmbedInput;
  error?: { code: number; message: string; status: string };
}

export interface Batch {
  id: string;
  seq: number;
  kind: BatchKind;
  /** The model as the fake model names it (from the path, without "models/"). */
  model: string;
  /** The model's resource name, e.g. "models/gemini-2.0-flash". */
  modelName: string;
  displayName?: string;
  /** "files/x" for file input; undefined for inline input. */
  inputFile?: string;
  /** The requests; released once the output is built. */
  lines: BatchLine[];
  requestCount: number;
  /** Answers so far, in input order; released once written to a responses file. */
  answers: LineAnswer[];
  answered: number;
  failedLines: number;
  createdAt: number;
  runningAt: number;
  endsAt: number;
  failKeys: Set<string>;
  endState: BatchEndState;
  /** Set by cancel, expire or fail: the state and when it was imposed. */
  forced?: { state: ForcedState; at: number };
  /** The output is built (or there is none). */
  finished: boolean;
  responsesFile?: string;
  /** Looks at the batch run one after another, so that each line is answered once. */
  work: Promise<void>;
  /** Deleted or reset: work still under way must not add a responses file. */
  gone: boolean;
}

type NewBatch = Pick<Batch, 'kind' | 'model' | 'modelName' | 'displayName' | 'inputFile' | 'lines'>;

export class EmulatedBatches {
  private batches = new Map<string, Batch>();
  private seq = 0;
  private setting: BatchSetting;

  constructor(setting: Partial<BatchSetting> | undefined) {
    this.setting = validateBatchSetting(setting ?? {}, DEFAULT_BATCH_SETTING);
  }

  getSetting(): BatchSetting {
    return { ...this.setting, failKeys: [...this.setting.failKeys] };
  }

  /** Changes the given fields; checked first, so a 400 leaves the setting as it was. */
  update(patch: unknown): void {
    this.setting = validateBatchSetting(patch, this.setting);
  }

  /** A new batch under the setting in force now. */
  create(init: NewBatch): Batch {
    const now = Date.now();
    const { pendingMs, runningMs, failKeys, endState } = this.setting;
    const batch: Batch = {
      ...init,
      id: this.newId(),
      seq: ++this.seq,
      requestCount: init.lines.length,
      answers: [],
      answered: 0,
      failedLines: 0,
      createdAt: now,
      runningAt: now + pendingMs,
      endsAt: now + pendingMs + runningMs,
      failKeys: new Set(failKeys),
      endState,
      finished: false,
      work: Promise.resolve(),
      gone: false,
    };
    this.batches.set(batch.id, batch);
    return batch;
  }

  /** Accepts "batches/x" or "x". */
  get(nameOrId: string): Batch | undefined {
    return this.batches.get(nameOrId.replace(/^batches\//, ''));
  }

  /** The batch's responses file, if any, stays in the file store (it expires like any file). */
  delete(nameOrId: string): boolean {
    const batch = this.get(nameOrId);
    if (!batch) return false;
    batch.gone = true;
    this.batches.delete(batch.id);
    return true;
  }

  /** Newest first, starting after the batch with sequence number `beforeSeq` (exclusive). */
  page(pageSize: number, beforeSeq = Infinity): { batches: Batch[]; more: boolean } {
    const older = [...this.batches.values()].filter((b) => b.seq < beforeSeq).sort((a, b) => b.seq - a.seq);
    return { batches: older.slice(0, pageSize), more: older.length > pageSize };
  }

  /** Forgets every batch. The schedule stays; failKeys and endState, which are faults, go back to their defaults. */
  clear(): void {
    for (const batch of this.batches.values()) batch.gone = true;
    this.batches.clear();
    this.seq = 0;
    this.setting = { ...this.setting, failKeys: [], endState: DEFAULT_BATCH_SETTING.endState };
  }

  private newId(): string {
    for (;;) {
      const id = Array.from(randomBytes(ID_LENGTH), (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('');
      if (!this.batches.has(id)) return id;
    }
  }
}

/** Checks a (partial) setting given by a caller, possibly over HTTP, on top of `base`; throws a 400 naming the field. */
function validateBatchSetting(input: unknown, base: Readonly<BatchSetting>): BatchSetting {
  if (!isObject(input)) {
    throw new RpcError(
      400,
      'The batch setting must be a JSON object like {"pendingMs":200,"runningMs":500,"failKeys":[],"endState":"SUCCEEDED"}.',
    );
  }
  const given = Object.entries(input).filter(([, v]) => v !== undefined);
  for (const [key] of given) {
    if (!Object.hasOwn(DEFAULT_BATCH_SETTING, key)) {
      throw new RpcError(400, `batches.${key} is not a field of the batch setting (pendingMs, runningMs, failKeys, endState).`);
    }
  }
  const merged: Json = { ...base, ...Object.fromEntries(given) };
  for (const key of ['pendingMs', 'runningMs']) {
    const value = merged[key];
    if (typeof value !== 'number' || !(value >= 0) || value > MAX_BATCH_PERIOD_MS) {
      throw new RpcError(400, `batches.${key} must be a number of milliseconds in [0, ${MAX_BATCH_PERIOD_MS}].`);
    }
  }
  const { failKeys, endState } = merged;
  if (!Array.isArray(failKeys) || !failKeys.every((k) => typeof k === 'string')) {
    throw new RpcError(400, 'batches.failKeys must be an array of line keys (strings).');
  }
  if (typeof endState !== 'string' || !END_STATES.includes(endState)) {
    throw new RpcError(400, `batches.endState must be one of ${END_STATES.join(', ')}.`);
  }
  return {
    pendingMs: merged.pendingMs as number,
    runningMs: merged.runningMs as number,
    failKeys: [...failKeys],
    endState: endState as BatchEndState,
  };
}
