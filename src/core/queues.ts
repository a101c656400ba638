/** Queue names, job names and ids, job data and job options, defined once. Every queue shares the configured key prefix. */
import type { JobsOptions } from 'bullmq';
import calculateSlot from 'cluster-key-slot';
import type { Config } from './config.js';
export const QUEUES = {
  upload: 'upload',
  generate: 'generate',
  deliver: 'deliver',
  batch: 'batch',
  maintenance: 'maintenance',
  /** Uploads begun while the API still receives the file: a queue of their own, so that one waiting on a slow client never holds up an accepted file's upload. */
  early: 'early',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** The queues whose work is spread over FERRY_QUEUE_SHARDS shards: the bulk of the queue commands. */
export const SHARDED: readonly QueueName[] = [QUEUES.generate, QUEUES.deliver];

type QueueConfig = Pick<Config, 'prefix' | 'redisClusterNodes' | 'queueShards'>;

/**
 * The BullMQ prefix of a queue (of its shard 0). On one Redis, the configured prefix. On a
 * Redis Cluster, the prefix and a hash tag per queue (BullMQ's scripts need all keys of a queue
 * in one slot). The batch queue shares the generate queue's tag: batches queued by versions
 * whose lines were children of the batch's flow still finish.
 */
export function queuePrefix(config: Pick<Config, 'prefix' | 'redisClusterNodes'>, queue: QueueName): string {
  if (!config.redisClusterNodes) return config.prefix;
  return `${config.prefix}:{${queue === QUEUES.batch ? QUEUES.generate : queue}}`;
}

/** Where one shard of a queue lives: the BullMQ queue name and prefix. */
export interface QueueAddress {
  name: string;
  prefix: string;
}

/**
 * Shard `shard` of a queue. Shard 0 is the queue as it was before shards (work queued by an
 * earlier version is still taken); shard k is `<queue>-k`, on a cluster under a tag placed by
 * `placedTag`.
 */
export function queueAddress(config: QueueConfig, queue: QueueName, shard = 0): QueueAddress {
  if (shard === 0) return { name: queue, prefix: queuePrefix(config, queue) };
  const name = `${queue}-${shard}`;
  if (!config.redisClusterNodes) return { name, prefix: config.prefix };
  return { name, prefix: `${config.prefix}:{${placedTag(queue, shard, config.queueShards)}}` };
}

/** Every shard of a queue (one for a queue that is not sharded). */
export function queueAddresses(config: QueueConfig, queue: QueueName): QueueAddress[] {
  const n = SHARDED.includes(queue) ? config.queueShards : 1;
  return Array.from({ length: n }, (_, k) => queueAddress(config, queue, k));
}

/** The shard of `n` that the work named `id` goes to: a stable hash, so every process agrees. */
export function shardOf(id: string, n: number): number {
  if (n === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

const SLOTS = 16384;
const placed = new Map<string, string>();

/**
 * The hash tag of shard `shard` (of `n`, k ≥ 1): the slot space is cut into n equal ranges,
 * shard 0 keeps the range its old tag falls in, and shard k takes the k-th of the others, its
 * tag's slot in the middle half of the range. A cluster whose masters hold equal ranges (as
 * `redis-cli --cluster create` makes them) then gets n / masters shards each. Deterministic:
 * every process finds the same tags.
 */
export function placedTag(queue: QueueName, shard: number, n: number): string {
  const memo = `${queue}/${shard}/${n}`;
  const known = placed.get(memo);
  if (known) return known;
  const range = (slot: number) => Math.floor((slot * n) / SLOTS);
  const others = Array.from({ length: n }, (_, i) => i).filter((i) => i !== range(calculateSlot(queue)));
  const target = others[shard - 1];
  const [lo, hi] = [(target * SLOTS) / n, ((target + 1) * SLOTS) / n];
  const quarter = (hi - lo) / 4;
  for (let j = 0; ; j++) {
    const tag = j === 0 ? `${queue}-${shard}` : `${queue}-${shard}.${j}`;
    const slot = calculateSlot(tag);
    if (slot >= lo + quarter && slot < hi - quarter) {
      placed.set(memo, tag);
      return tag;
    }
  }
}

/** Job names on the upload queue. */
export const UPLOAD_JOBS = { upload: 'upload', remove: 'remove' } as const;
/** The one job name of the generate, deliver and maintenance queues. */
export const GENERATE_JOB = 'chat';
export const DELIVER_JOB = 'deliver';
export const MAINTENANCE_JOB = 'sweep';
export const EARLY_UPLOAD_JOB = 'early';

/**
 * Job names on the batch queue. `finalize` is the parent of a batch's flow:
 * its children are `expand` and `gate`, which stays pending until every line
 * is counted done (on Gemini Batch Mode, until the `gemini` job has recorded
 * every line's answer).
 */
export const BATCH_JOBS = {
  expand: 'expand',
  gate: 'gate',
  finalize: 'finalize',
  cancel: 'cancel',
  expire: 'expire',
  gemini: 'gemini',
} as const;
export type BatchJobName = (typeof BATCH_JOBS)[keyof typeof BATCH_JOBS];

/** Deterministic job ids: an enqueue repeated for the same file or batch never duplicates. */
export const jobIds = {
  upload: (fileId: string) => `upload-${fileId}`,
  remove: (fileId: string) => `remove-${fileId}`,
  early: (fileId: string) => `early-${fileId}`,
  batch: (name: BatchJobName, batchId: string) => `${name}-${batchId}`,
};

/**
 * A generate job's data. `direct` (with `tenant` and `model`) marks a job that needs nothing but
 * its request (no files, fetched images or batch): the worker takes its slot first and then starts
 * and reads the record in one step. Without it (batch lines, older jobs) the record is read first.
 */
export interface GenerateJobData {
  jobId: string;
  direct?: { tenant: string; model: string; tokens?: number };
  /** Tries Gemini answered 429 (or shed at the Flex tier): they wait, and spend none of the job's attempts. */
  quotaRetries?: number;
  /** When Gemini first shed this job's Flex call (ms): it tries again until FERRY_FLEX_DEADLINE_SECONDS after. */
  flexShedSince?: number;
  /** Set once the Flex deadline passed with FERRY_FLEX_FALLBACK=standard: the call runs at the standard tier. */
  tierFallback?: 'standard';
}

/** What a removal needs (upload queue, job `remove`), captured when the file's record is deleted. */
export interface RemoveJobData {
  fileId: string;
  staging_key: string;
  storage: 'gemini' | 'azure_storage' | 'local';
  gemini_name: string | null;
  upload_url: string | null;
  azure_blob_path: string | null;
}

/** An upload to Gemini or Azure of a staged file (upload queue, job `upload`). */
export interface UploadJobData {
  fileId: string;
}

/**
 * A file's upload to Gemini begun while the API still receives it (early-upload queue):
 * what the file will be, as far as the API knows when its bytes start (see worker/early-upload.ts).
 */
export interface EarlyUploadJobData {
  fileId: string;
  /** Whose file it is (absent in jobs queued before it was added): the activity counts its bytes. */
  tenant?: string;
  staging_key: string;
  /** The file's size, from the request's Content-Length; checked against what arrives. */
  bytes: number;
  display_name: string;
  /** What the type is detected from, with the head of the bytes (core/mime.ts). */
  filename: string;
  part_type: string;
  mime_override?: string;
}

/** A signed webhook delivery (deliver queue). */
export interface DeliverJobData {
  deliveryId: string;
}

/** A batch's expand, gate, finalize, cancel, expire or gemini job (batch queue). */
export interface BatchJobData {
  batchId: string;
  /** The `gemini` job: how often it has asked Gemini for its batches' state (its polling backs off). */
  polls?: number;
  /** The `gemini` job: Gemini's transient failures in a row (as many as the job's attempts give up). */
  failures?: number;
}

/** The data each queue's jobs carry: the queue handles and the processors are typed by it. */
export interface QueueData {
  upload: UploadJobData | RemoveJobData;
  generate: GenerateJobData;
  deliver: DeliverJobData;
  maintenance: Record<string, never>;
  batch: BatchJobData;
  early: EarlyUploadJobData;
}

/** Job defaults for work that talks to an upstream: retried with Ferry's backoff, kept a while for inspection. */
export function upstreamJobOptions(config: Config): JobsOptions {
  return {
    attempts: config.upstreamAttempts,
    backoff: { type: 'upstream' },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}
