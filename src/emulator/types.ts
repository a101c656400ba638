/** Public types of the local Gemini emulator. */
import type { TierSetting } from './tiers.js';

export const ROUTES = [
  'upload.start',
  'upload.chunk',
  'upload.query',
  'upload.cancel',
  'files.get',
  'files.list',
  'files.delete',
  'files.register',
  'token',
  'generate',
  'stream',
  'countTokens',
  'embed',
  'embed.batch',
  'batches.create',
  'batches.createEmbeddings',
  'batches.get',
  'batches.list',
  'batches.cancel',
  'batches.delete',
  'files.download',
  'models.list',
  'models.get',
  'caches.create',
  'caches.get',
  'caches.list',
  'caches.update',
  'caches.delete',
] as const;

/** A named API route; faults, request counts and fault counts are keyed by it. */
export type RouteName = (typeof ROUTES)[number];

export const FAULT_KINDS = ['latency', '429', '500', '503', '400', 'reset'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRule {
  route: RouteName | '*';
  kind: FaultKind;
  /** 0..1, default 1. Drawn from the seeded generator (option `seed`). */
  probability?: number;
  /** Apply at most this many times, then the rule is spent. */
  count?: number;
  /** For 'latency' (default 1000 ms there); with any other kind it is waited before the fault. */
  latencyMs?: number;
  /**
   * For 'latency': wait after the request has taken effect, before its answer goes out (a batch
   * created whose answer comes late, or never if the caller dies meanwhile). Default: before.
   */
  afterHandler?: boolean;
  /** For '429': sets a Retry-After header and a google.rpc.RetryInfo detail. */
  retryAfterSeconds?: number;
  /** For 'reset' on upload.chunk: cut the connection after this many body bytes (default: half the chunk). */
  resetAfterBytes?: number;
}

/** Per-minute limits of one model; 0 or absent = unlimited. */
export interface QuotaLimits {
  /** Model calls (generate, stream, embed, batch embed) per minute. */
  rpm?: number;
  /**
   * Input tokens per minute, counted as usageMetadata.promptTokenCount reports them (embed calls:
   * the words of the texts embedded).
   */
  tpm?: number;
}

/** A change of the quota during a run: from `atMs` on, every model's limits are these. */
export interface QuotaStep extends QuotaLimits {
  /**
   * Milliseconds after the setting was applied (or the usage last reset); steps in increasing
   * order. A field the step leaves out keeps the value in force; 0 means unlimited.
   */
  atMs: number;
}

/**
 * Quota of the model calls (generateContent, streamGenerateContent, embedContent,
 * batchEmbedContents), enforced per model like Gemini's. `rpm`/`tpm`
 * apply to every model; a `perModel` entry overrides them for that model field by field (a field
 * it leaves out is inherited, 0 there means unlimited). Model names as in the path, without "models/".
 * The other fields reproduce conditions of the real service; left out, they change nothing.
 */
export interface QuotaSetting extends QuotaLimits {
  perModel?: Record<string, QuotaLimits>;
  /**
   * Default true. false: the 429's QuotaFailure names the metrics but not their limit (no
   * quotaValue, no "limit: N" in the message), as the Gemini API's answers did through 2025;
   * Help and RetryInfo are kept.
   */
  statesLimit?: boolean;
  /**
   * 'full' (default): QuotaFailure, Help and RetryInfo. 'none': the bare answer of Vertex AI and its
   * dynamic shared quota, no details at all (no QuotaFailure, no RetryInfo): "Resource exhausted.
   * Please try again later. ..."
   */
  detail?: 'full' | 'none';
  /**
   * 0 ≤ share < 1, default 0: another client of the same project spends this share of every
   * limit, continuously, so our calls get (1 − share) of it. The 429s still state the full limit.
   */
  sharedShare?: number;
  /**
   * Changes of the top-level rpm/tpm over time (perModel entries keep overriding the fields they
   * set). At each step a model's allowance keeps its level, capped at the new capacity.
   */
  schedule?: QuotaStep[];
}

/** The quota limits over time, for a benchmark to compute what a moving quota allowed. */
export interface QuotaTimeline {
  /** When atMs 0 was, in ms since the epoch: the setting applied or the usage last reset. */
  startEpochMs: number;
  /** Milliseconds from then to this snapshot: the steps with a larger atMs are still to come. */
  elapsedMs: number;
  /** The top-level limits from each atMs on (0 = unlimited): the start, then every step of the schedule. */
  steps: { atMs: number; rpm: number; tpm: number }[];
  /** The share of every limit another client spends: our calls get (1 − sharedShare) of it. */
  sharedShare: number;
}

/**
 * Service time of model calls (generate and embed), waited after the quota check and before answering (streams: before
 * the first chunk). `lognormal` draws from the seeded generator: mu = ln(medianMs),
 * sigma = ln(p99Ms / medianMs) / 2.326. `{ kind: 'fixed', ms: 0 }` (the default) is no delay.
 */
export type LatencySetting = { kind: 'fixed'; ms: number } | { kind: 'lognormal'; medianMs: number; p99Ms: number };

/** The states a batch ends in. */
export type BatchEndState = 'SUCCEEDED' | 'FAILED' | 'EXPIRED';

/**
 * How batches (Batch Mode) progress. A batch takes the setting in force when it is created; its
 * state is computed from its timestamps, so no timer runs.
 */
export interface BatchSetting {
  /** How long a new batch stays BATCH_STATE_PENDING; default 200 ms. */
  pendingMs: number;
  /** How long it then stays BATCH_STATE_RUNNING, its lines answered evenly over the period; default 500 ms. */
  runningMs: number;
  /** Lines with these keys are answered with an error line (400 INVALID_ARGUMENT) instead of a response; default none. */
  failKeys: string[];
  /**
   * Where the schedule ends: SUCCEEDED (default); FAILED (runs, then fails with an error and no
   * output); EXPIRED (stays pending for both periods, then expires with no output).
   */
  endState: BatchEndState;
}

export interface EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** When set, API requests must carry it (x-goog-api-key header or ?key=). */
  apiKey?: string;
  /** PROCESSING → ACTIVE (or FAILED) after this delay after finalize; default 0. */
  processingDelayMs?: number;
  /** expirationTime = createTime + this; default 48 h. */
  fileTtlMs?: number;
  /** When set, upload bytes are also written there, one file per upload. */
  storeDir?: string;
  faults?: FaultRule[];
  /** Seed of the generator that decides probabilistic faults. */
  seed?: number;
  /** No request log on stderr. */
  quiet?: boolean;
  /** Largest accepted declared upload size; default 2 GiB like the real API. */
  maxFileBytes?: number;
  /** Largest accepted generateContent request body; default 20 MiB like the real API. */
  maxRequestBytes?: number;
  /** Per-model rpm/tpm of model calls (generate and embed); default unlimited. Kept across reset(). */
  quota?: QuotaSetting;
  /** Service time of model calls (generate and embed); default none. Kept across reset(). */
  latency?: LatencySetting;
  /** The Flex tier: its shedding rate and shape, and its extra wait. */
  tiers?: TierSetting;
  /** Batch Mode schedule and line faults; fields left out take their defaults. */
  batches?: Partial<BatchSetting>;
  /**
   * Without storeDir, uploads up to this size are kept in memory, so that a batch can read its
   * input file; larger ones keep only their metadata. Default 64 MiB.
   */
  maxKeptFileBytes?: number;
  /**
   * TLS of the fetches of fileData https URLs: `ca` (PEM) is trusted besides Node's bundled roots,
   * e.g. a test server's self-signed certificate. Default: Node's roots only.
   */
  fileUriTls?: FileUriTls;
  /** Largest body fetched from a fileData https URL; default 100 MiB. */
  maxFileUriBytes?: number;
  /** A directory standing in for Cloud Storage: gs://bucket/object is `<gcsDir>/bucket/object` (register.ts). */
  gcsDir?: string;
}

export interface FileUriTls {
  /** PEM certificate(s) trusted besides Node's bundled roots, for these fetches only. */
  ca?: string | Buffer;
  /** Default true; false accepts any certificate. */
  rejectUnauthorized?: boolean;
}

export interface GenerateRequestRecord {
  model: string;
  stream: boolean;
  body: unknown;
}

/** Calls to one model: generate calls (generateContent, streamGenerateContent) and embed calls (embedContent, batchEmbedContents). */
export interface GenerateModelStats {
  /** Calls answered with a 2xx status (a stream counts once its 200 headers went out). */
  answered2xx: number;
  /** Calls refused with 429 because of the quota (injected '429' faults are not counted here). */
  refusedForQuota: number;
  /** Calls received and not yet answered, whatever their answer will be. */
  inFlight: number;
  /** The most calls in flight at once since start or the last reset. */
  peakInFlight: number;
}

export interface EmulatorStats {
  /** Every body byte received for an upload session, including refused chunks and chunks cut by a reset. */
  bytesBySession: Record<string, number>;
  /** The same, keyed by file name once the session is finalized. */
  bytesByFile: Record<string, number>;
  /** Each upload session's status: active (unfinished), final or cancelled. */
  sessionStatus: Record<string, 'active' | 'final' | 'cancelled'>;
  requests: Record<string, number>;
  faultsInjected: Record<string, number>;
  /** The last 100 generateContent/streamGenerateContent request bodies. */
  generateRequests: GenerateRequestRecord[];
  /** Generate and embed calls per model (the model as in the path, without "models/"). */
  generateByModel: Record<string, GenerateModelStats>;
  /** Batch Mode; batch lines are not model calls and are counted only here. */
  batches: BatchCounters;
  /** The quota's limits over time (the schedule, if any) and the share another client takes. */
  quota: QuotaTimeline;
}

export interface BatchCounters {
  /** batches.create calls that made a batch. */
  created: number;
  /** Lines given an answer, a response or an error line. */
  linesAnswered: number;
  /** Of those, the error lines. */
  linesFailed: number;
}

export interface Emulator {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:PORT. */
  url: string;
  port: number;
  stats(): EmulatorStats;
  setFaults(rules: FaultRule[]): void;
  /** Replaces the quota setting, starts every model with a full allowance and its schedule from now. */
  setQuota(quota: QuotaSetting): void;
  setLatency(latency: LatencySetting): void;
  /** Changes the given fields of the batch setting (for batches created from now on). */
  setBatchSetting(setting: Partial<BatchSetting>): void;
  setTiers(setting: TierSetting): void;
  /**
   * Forget files, sessions, batches, stats, faults and quota usage (the quota's schedule starts
   * again). The quota and latency settings and the batch schedule stay; the batch setting's
   * failKeys and endState go back to their defaults.
   */
  reset(): void;
  /** Make a file vanish as if its time to live had passed. */
  expireFile(name: string): void;
  /**
   * Ends a pending or running batch (name "batches/x" or "x") as EXPIRED: the lines answered so far
   * are its output, the others stay unanswered. Rejects with a 404 or 400 RpcError when the batch
   * is unknown or has already ended.
   */
  expireBatch(name: string): Promise<void>;
  /** Ends a pending or running batch as FAILED, with an error and no output; rejects like expireBatch. */
  failBatch(name: string): Promise<void>;
  close(): Promise<void>;
}

/** A checked embed request: what its vector is computed from (small, unlike the vector). */
export interface EmbedInput {
  text: string;
  dimensions: number;
  /** Words of the text: the tokens charged. */
  tokens: number;
}
