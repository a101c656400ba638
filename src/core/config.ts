/**
 * The one place configuration is read. Every variable is validated at start-up;
 * a bad value stops the process with a message naming the variable.
 * Names of the documented variables are a contract with clients and deployments.
 */
import { modelIdOf } from './models.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadPriceTable, PriceError, type PriceTable } from './prices.js';
import path from 'node:path';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

const KIB = 1024;
const MIB = 1024 * KIB;
export const GEMINI_CHUNK_GRANULARITY = 256 * KIB;
export const GEMINI_MAX_FILE_BYTES = 2 * 1024 * MIB;

export type AzureHandoff = 'transfer' | 'signed_url';

export interface Config {
  production: boolean;
  host: string;
  port: number;
  redisUrl: string;
  /** True when REDIS_URL was not given: development may start a local redis-server. */
  redisUrlDefaulted: boolean;
  /** REDIS_CLUSTER_NODES: the seed nodes of a Redis Cluster, used instead of REDIS_URL; null for one Redis. */
  redisClusterNodes: string[] | null;
  prefix: string;
  /**
   * FERRY_QUEUE_SHARDS: how many queues the generate and delivery work is spread over. On a
   * cluster each shard has a hash tag of its own, placed on its own part of the slot space.
   */
  queueShards: number;
  apiKeys: Map<string, string>;
  adminKey: string | undefined;
  /**
   * `credentialsFile`: Google credentials (GOOGLE_APPLICATION_CREDENTIALS, as every Google client
   * reads it) for the one Gemini call an API key cannot make: registering Cloud Storage objects.
   */
  gemini: { apiKey: string | undefined; baseUrl: string | undefined; credentialsFile: string | undefined };
  stagingDir: string;
  /** FERRY_STAGING_CONTAINER: staged bytes live in this Azure Blob container (the AZURE_STORAGE_* account) instead of `stagingDir`. */
  stagingContainer: string | undefined;
  dataDir: string;
  maxFileBytes: number;
  uploadChunkBytes: number;
  /**
   * FERRY_UPLOAD_OVERLAP: a file whose size is known as it starts arriving (its fields before it,
   * and a Content-Length) goes on to Gemini while the API still receives it. `stallSeconds`
   * (FERRY_UPLOAD_STALL_SECONDS): such an early upload with no new byte and no answer for that
   * long is given up, its Gemini session cancelled (the API that received it is gone).
   */
  uploadOverlap: { enabled: boolean; stallSeconds: number };
  syncWaitSeconds: number;
  upstreamAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  geminiRpm: number;
  geminiTpm: number;
  /** FERRY_MODELS: the Gemini models offered (`/v1/models` and requests); null offers every model the key can use. */
  models: string[] | null;
  /** The prices calls are costed at: built in, with FERRY_PRICES_FILE laid over them. */
  prices: PriceTable;
  /** Flex calls Gemini sheds wait and try again for `deadlineSeconds`, then run at the standard tier or fail. */
  flex: { deadlineSeconds: number; fallback: 'standard' | 'fail' };
  /**
   * FERRY_STAGING_HANDBACK_SECONDS: how long a worker that cannot see a file's staged bytes (staged
   * by an API process elsewhere) hands its upload back for a worker that can, before failing it.
   */
  stagingHandbackSeconds: number;
  /** FERRY_CONTEXT_CACHING: `auto` caches prefixes that requests share where it saves money; `off` never. */
  contextCaching: 'auto' | 'off';
  /** FERRY_TENANT_BUDGETS: a tenant's spend limit per calendar month (UTC), in USD; a tenant not named has none. */
  tenantBudgets: Map<string, number>;
  webhookRetrySchedule: number[];
  webhookTimeoutSeconds: number;
  webhookMaxPayloadBytes: number;
  webhookDisableAfterSeconds: number;
  deliverConcurrency: number;
  allowPrivateNetworks: boolean;
  fileRetentionSeconds: number;
  contentRetentionSeconds: number;
  activeWaitSeconds: number;
  uploadConcurrency: number;
  generateConcurrency: number;
  tenantMaxRunning: number;
  jobRetentionSeconds: number;
  /** How long a stored response (and the conversation `previous_response_id` continues) is kept. */
  responseRetentionSeconds: number;
  /** A worker's lock on a running job; a dead worker's jobs run again within about this plus two stall checks (a quarter of it each). */
  jobLockMs: number;
  /** How long an Idempotency-Key claim outlives its holder's last renewal (core/idempotency.ts). */
  idempotencyLeaseMs: number;
  batch: {
    /** Lines of one batch queued or running at once, across all workers. */
    concurrency: number;
    /** Batch lines one worker process runs at once; its other completion slots stay free for interactive requests. */
    workerSlots: number;
    maxLines: number;
    maxBytes: number;
    /** A batch's `execution` when its request names none. */
    execution: BatchExecution;
  };
  /**
   * FERRY_METRICS_KEY: the bearer key /metrics asks for; `none` serves it to anyone. Unset, it is
   * served only to a process listening on loopback.
   */
  metricsKey: string | undefined;
  /** FERRY_LOG_FORMAT: `json`, `pretty` (readable lines), or null: pretty on a terminal in development, JSON otherwise. */
  logFormat: 'json' | 'pretty' | null;
  logLevel: string;
  metricsPort: number;
  emulator: { port: number; processingDelayMs: number };
  azure: {
    accountName: string | undefined;
    fileSystem: string | undefined;
    accountKey: string | undefined;
    connectionString: string | undefined;
    endpoint: string | undefined;
    createContainer: boolean;
    handoff: AzureHandoff;
  };
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = str(env, name);
  if (raw === undefined) return dflt;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const raw = str(env, name);
  if (raw === undefined) return dflt;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `expected 1/0, true/false, yes/no or on/off, got "${raw}"`);
}

function url(env: Env, name: string): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  try {
    const u = new URL(raw);
    if (!/^(https?|rediss?):$/.test(u.protocol)) throw new Error('protocol');
  } catch {
    throw new ConfigError(name, `expected a URL, got "${raw}"`);
  }
  return raw.replace(/\/+$/, '');
}

const isRedisUrl = (s: string) => {
  try {
    return /^rediss?:$/.test(new URL(s).protocol);
  } catch {
    return false;
  }
};

/** REDIS_CLUSTER_NODES: comma-separated redis:// or rediss:// URLs of some of the cluster's nodes. */
function clusterNodes(env: Env): string[] | null {
  const raw = str(env, 'REDIS_CLUSTER_NODES');
  if (raw === undefined) return null;
  const nodes = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of nodes) {
    if (!isRedisUrl(n)) throw new ConfigError('REDIS_CLUSTER_NODES', `expected comma-separated redis:// or rediss:// URLs, got "${n}"`);
  }
  if (nodes.length === 0) throw new ConfigError('REDIS_CLUSTER_NODES', 'names no node');
  return nodes;
}

/** FERRY_STAGING_CONTAINER: a valid container name, in an Azure account the AZURE_STORAGE_* settings name. */
function stagingContainer(env: Env): string | undefined {
  const name = str(env, 'FERRY_STAGING_CONTAINER');
  if (name === undefined) return undefined;
  if (!AZURE_CONTAINER.test(name)) {
    throw new ConfigError(
      'FERRY_STAGING_CONTAINER',
      `"${name}" is not a valid container name (3-63 lowercase letters, digits and single hyphens)`,
    );
  }
  const account =
    str(env, 'AZURE_STORAGE_CONNECTION_STRING') ?? str(env, 'AZURE_STORAGE_ACCOUNT_NAME') ?? str(env, 'AZURE_STORAGE_ENDPOINT');
  if (!account) {
    throw new ConfigError(
      'FERRY_STAGING_CONTAINER',
      'needs an Azure account: set AZURE_STORAGE_ACCOUNT_NAME (with AZURE_STORAGE_ACCOUNT_KEY) or AZURE_STORAGE_CONNECTION_STRING',
    );
  }
  return name;
}

/** How a batch's lines run: each a live call on Ferry's workers (at the standard tier, or Flex), or one Gemini Batch Mode job per model. */
export const BATCH_EXECUTIONS = ['direct', 'gemini_batch', 'flex'] as const;
export type BatchExecution = (typeof BATCH_EXECUTIONS)[number];

function batchExecution(env: NodeJS.ProcessEnv): BatchExecution {
  const v = str(env, 'FERRY_BATCH_EXECUTION') ?? 'direct';
  if (!(BATCH_EXECUTIONS as readonly string[]).includes(v)) {
    throw new ConfigError('FERRY_BATCH_EXECUTION', `expected direct, gemini_batch or flex, got "${v}"`);
  }
  return v as BatchExecution;
}

/** `key:tenant` pairs, comma- or newline-separated. */
export function parseApiKeys(text: string, variable: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const entry of text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (entry.startsWith('#')) continue;
    const i = entry.lastIndexOf(':');
    const key = i > 0 ? entry.slice(0, i).trim() : '';
    const tenant = i > 0 ? entry.slice(i + 1).trim() : '';
    if (!key || !tenant) throw new ConfigError(variable, 'expected comma-separated key:tenant pairs');
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(tenant)) {
      throw new ConfigError(variable, `tenant names use letters, digits, "_", "." and "-" (max 64): "${tenant}"`);
    }
    if (keys.has(key)) throw new ConfigError(variable, 'the same key is listed twice');
    if (tenant === 'admin') throw new ConfigError(variable, 'the tenant name "admin" is reserved for FERRY_ADMIN_KEY');
    keys.set(key, tenant);
  }
  return keys;
}

const AZURE_CONTAINER = /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** FERRY_API_KEYS, else the file FERRY_API_KEYS_FILE names; none configured is an empty map. */
function configuredApiKeys(env: Env): Map<string, string> {
  const inline = str(env, 'FERRY_API_KEYS');
  if (inline) return parseApiKeys(inline, 'FERRY_API_KEYS');
  const keysFile = str(env, 'FERRY_API_KEYS_FILE');
  if (!keysFile) return new Map<string, string>();
  let text: string;
  try {
    text = readFileSync(keysFile, 'utf8');
  } catch (e) {
    throw new ConfigError('FERRY_API_KEYS_FILE', `cannot read ${keysFile}: ${(e as Error).message}`);
  }
  return parseApiKeys(text, 'FERRY_API_KEYS_FILE');
}

/** Production never falls back to the emulator or to a generated development key. */
function requireProductionCredentials(production: boolean, geminiKey: string | undefined, apiKeys: Map<string, string>): void {
  if (production && !geminiKey) throw new ConfigError('GEMINI_API_KEY', 'is required when NODE_ENV=production');
  if (production && apiKeys.size === 0) {
    throw new ConfigError('FERRY_API_KEYS', 'is required when NODE_ENV=production (or FERRY_API_KEYS_FILE)');
  }
}

/** Gemini's resumable upload takes chunks in whole multiples of its granularity. */
function uploadChunkBytes(env: Env): number {
  const chunk = int(env, 'FERRY_UPLOAD_CHUNK_BYTES', 8 * MIB, GEMINI_CHUNK_GRANULARITY, 256 * MIB);
  if (chunk % GEMINI_CHUNK_GRANULARITY !== 0) {
    throw new ConfigError('FERRY_UPLOAD_CHUNK_BYTES', `must be a multiple of 262144 (256 KiB), got ${chunk}`);
  }
  return chunk;
}

/**
 * FERRY_REDIS_PREFIX; unset, `ferry` — but in development on the local Redis (no REDIS_URL, no
 * cluster), `ferry-<digest of FERRY_DATA_DIR>`: two checkouts on one machine then never share work,
 * while the processes of one checkout (same data directory) do.
 */
function redisPrefix(env: Env, production: boolean): string {
  const local = !production && !str(env, 'REDIS_URL') && !str(env, 'REDIS_CLUSTER_NODES');
  const byDataDir = `ferry-${createHash('sha256').update(dataDirOf(env)).digest('hex').slice(0, 8)}`;
  const prefix = str(env, 'FERRY_REDIS_PREFIX') ?? (local ? byDataDir : 'ferry');
  if (!/^[A-Za-z0-9_{}.:-]{1,64}$/.test(prefix)) {
    throw new ConfigError('FERRY_REDIS_PREFIX', 'use letters, digits, "_", "-", ".", ":" and {hash tags}');
  }
  // On a cluster Ferry tags its keys itself; a tag in the prefix would put every key in one slot.
  if (/[{}]/.test(prefix) && str(env, 'REDIS_CLUSTER_NODES')) {
    throw new ConfigError(
      'FERRY_REDIS_PREFIX',
      'takes no {hash tag} with REDIS_CLUSTER_NODES: Ferry tags each key so that they spread over the masters',
    );
  }
  return prefix;
}

function webhookRetrySchedule(env: Env): number[] {
  const scheduleRaw = str(env, 'FERRY_WEBHOOK_RETRY_SCHEDULE') ?? '0,5,300,1800,7200,18000,36000,36000';
  const schedule = scheduleRaw.split(',').map((s) => s.trim());
  if (schedule.some((s) => !/^\d+(\.\d+)?$/.test(s))) {
    throw new ConfigError('FERRY_WEBHOOK_RETRY_SCHEDULE', 'expected comma-separated seconds, e.g. 0,5,300');
  }
  return schedule.map(Number);
}

function azureFileSystem(env: Env): string | undefined {
  const fileSystem = str(env, 'AZURE_STORAGE_FILE_SYSTEM');
  if (fileSystem && !AZURE_CONTAINER.test(fileSystem)) {
    throw new ConfigError(
      'AZURE_STORAGE_FILE_SYSTEM',
      `"${fileSystem}" is not a valid container name (3-63 lowercase letters, digits and single hyphens)`,
    );
  }
  return fileSystem;
}

function azureHandoff(env: Env): AzureHandoff {
  const handoff = str(env, 'FERRY_AZURE_HANDOFF') ?? 'transfer';
  if (handoff !== 'transfer' && handoff !== 'signed_url') {
    throw new ConfigError('FERRY_AZURE_HANDOFF', `expected transfer or signed_url, got "${handoff}"`);
  }
  return handoff as AzureHandoff;
}

/** A worker's completion slots, and how many of them batch lines may take. */
function completionSlots(env: Env): { generateConcurrency: number; batchWorkerSlots: number } {
  // Completions are network waits of seconds: a process runs hundreds at once so that model latency
  // never limits throughput; the Gemini quota does, through admission.
  const generateConcurrency = int(env, 'FERRY_GENERATE_CONCURRENCY', 256, 1, 1024);
  const batchWorkerSlots = int(env, 'FERRY_BATCH_WORKER_SLOTS', Math.max(1, Math.floor(generateConcurrency / 2)), 1, 1024);
  if (batchWorkerSlots > generateConcurrency) {
    throw new ConfigError('FERRY_BATCH_WORKER_SLOTS', `cannot be more than FERRY_GENERATE_CONCURRENCY (${generateConcurrency})`);
  }
  return { generateConcurrency, batchWorkerSlots };
}

/** A file record must outlive its content: the record is what says the bytes are gone. */
function retentionSeconds(env: Env): Pick<Config, 'fileRetentionSeconds' | 'contentRetentionSeconds'> {
  const contentRetentionSeconds = int(env, 'FERRY_CONTENT_RETENTION_SECONDS', 7 * 86400, 60);
  const fileRetentionSeconds = int(env, 'FERRY_FILE_RETENTION_SECONDS', 30 * 86400, 60);
  if (contentRetentionSeconds > fileRetentionSeconds) {
    throw new ConfigError('FERRY_CONTENT_RETENTION_SECONDS', 'cannot be longer than FERRY_FILE_RETENTION_SECONDS');
  }
  return { fileRetentionSeconds, contentRetentionSeconds };
}

function readListener(env: Env, production: boolean): Pick<Config, 'host' | 'port'> {
  return {
    // Development listens on loopback only: its key is printed and the emulator answers for Gemini.
    host: str(env, 'HOST') ?? (production ? '0.0.0.0' : '127.0.0.1'),
    port: int(env, 'PORT', 8080, 0, 65535),
  };
}

function readRedis(
  env: Env,
  redisUrl: string | undefined,
  prefix: string,
): Pick<Config, 'redisUrl' | 'redisUrlDefaulted' | 'redisClusterNodes' | 'prefix' | 'queueShards'> {
  const nodes = clusterNodes(env);
  return {
    redisUrl: redisUrl ?? 'redis://127.0.0.1:6379',
    redisUrlDefaulted: redisUrl === undefined && nodes === null,
    redisClusterNodes: nodes,
    prefix,
    // One Redis runs every command on one thread: shards there only add blocking connections.
    // On a cluster, three: one per master of the smallest cluster (see bench/machines.ts).
    queueShards: int(env, 'FERRY_QUEUE_SHARDS', nodes ? DEFAULT_CLUSTER_SHARDS : 1, 1, MAX_QUEUE_SHARDS),
  };
}

/** Whether HOST listens on this machine only (what /metrics without a key and the banner go by). */
export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

function logFormat(env: Env): Config['logFormat'] {
  const format = str(env, 'FERRY_LOG_FORMAT');
  if (format === undefined) return null;
  if (format !== 'json' && format !== 'pretty') throw new ConfigError('FERRY_LOG_FORMAT', `expected json or pretty, got "${format}"`);
  return format;
}

const DEFAULT_CLUSTER_SHARDS = 3;
const MAX_QUEUE_SHARDS = 16;

const dataDirOf = (env: Env) => path.resolve(str(env, 'FERRY_DATA_DIR') ?? './data');

function readFiles(
  env: Env,
  chunk: number,
): Pick<Config, 'stagingDir' | 'stagingContainer' | 'dataDir' | 'maxFileBytes' | 'uploadChunkBytes' | 'uploadOverlap'> {
  const dataDir = dataDirOf(env);
  return {
    stagingDir: path.resolve(str(env, 'FERRY_STAGING_DIR') ?? path.join(dataDir, 'staging')),
    stagingContainer: stagingContainer(env),
    dataDir,
    maxFileBytes: int(env, 'FERRY_MAX_FILE_BYTES', GEMINI_MAX_FILE_BYTES, 1),
    uploadChunkBytes: chunk,
    uploadOverlap: {
      enabled: bool(env, 'FERRY_UPLOAD_OVERLAP', true),
      stallSeconds: int(env, 'FERRY_UPLOAD_STALL_SECONDS', 120, 1, 24 * 3600),
    },
  };
}

function readRetries(env: Env): Pick<Config, 'upstreamAttempts' | 'retryBaseMs' | 'retryMaxMs'> {
  return {
    upstreamAttempts: int(env, 'FERRY_UPSTREAM_ATTEMPTS', 10, 1, 100),
    retryBaseMs: int(env, 'FERRY_RETRY_BASE_MS', 1000, 1),
    retryMaxMs: int(env, 'FERRY_RETRY_MAX_MS', 60_000, 1),
  };
}

function readGeminiQuota(
  env: Env,
): Pick<Config, 'geminiRpm' | 'geminiTpm' | 'models' | 'prices' | 'tenantBudgets' | 'flex' | 'contextCaching' | 'stagingHandbackSeconds'> {
  return {
    geminiRpm: int(env, 'FERRY_GEMINI_RPM', 0),
    geminiTpm: int(env, 'FERRY_GEMINI_TPM', 0),
    models: modelList(env),
    prices: prices(env),
    tenantBudgets: budgets(env),
    flex: flexSettings(env),
    contextCaching: contextCaching(env),
    stagingHandbackSeconds: int(env, 'FERRY_STAGING_HANDBACK_SECONDS', 120, 0, 86_400),
  };
}

function contextCaching(env: Env): 'auto' | 'off' {
  const v = str(env, 'FERRY_CONTEXT_CACHING') ?? 'auto';
  if (v !== 'auto' && v !== 'off') throw new ConfigError('FERRY_CONTEXT_CACHING', `expected auto or off, got "${v}"`);
  return v;
}

function flexSettings(env: Env): Config['flex'] {
  const fallback = str(env, 'FERRY_FLEX_FALLBACK') ?? 'standard';
  if (fallback !== 'standard' && fallback !== 'fail')
    throw new ConfigError('FERRY_FLEX_FALLBACK', `expected standard or fail, got "${fallback}"`);
  return { deadlineSeconds: int(env, 'FERRY_FLEX_DEADLINE_SECONDS', 900, 0, 86_400), fallback };
}

/** FERRY_TENANT_BUDGETS: `tenant:usd` pairs, comma-separated. */
function budgets(env: Env): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of (str(env, 'FERRY_TENANT_BUDGETS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const at = entry.lastIndexOf(':');
    const usd = Number(entry.slice(at + 1));
    if (at <= 0 || !/^\d+(\.\d+)?$/.test(entry.slice(at + 1)) || !Number.isFinite(usd)) {
      throw new ConfigError(
        'FERRY_TENANT_BUDGETS',
        `expected tenant:usd pairs, comma-separated (e.g. "acme:500,beta:20.5"); "${entry}" is not one.`,
      );
    }
    out.set(entry.slice(0, at), usd);
  }
  return out;
}

/** FERRY_PRICES_FILE, read and checked at start-up: a wrong price is found before any call is costed with it. */
function prices(env: Env): PriceTable {
  try {
    return loadPriceTable(str(env, 'FERRY_PRICES_FILE'));
  } catch (err) {
    if (err instanceof PriceError) throw new ConfigError('FERRY_PRICES_FILE', err.message);
    throw err;
  }
}

/** FERRY_MODELS: model ids, comma-separated (`models/` prefixes dropped). */
function modelList(env: Env): string[] | null {
  const raw = str(env, 'FERRY_MODELS');
  if (!raw) return null;
  const ids = raw
    .split(',')
    .map((s) => modelIdOf(s.trim()))
    .filter(Boolean);
  const bad = ids.find((id) => !/^[\w.-]{1,128}$/.test(id));
  if (bad !== undefined || ids.length === 0)
    throw new ConfigError(
      'FERRY_MODELS',
      `must be Gemini model ids, comma-separated (e.g. "gemini-2.5-flash,gemini-2.5-pro"); "${bad ?? raw}" is not one.`,
    );
  return ids;
}

type WebhookSettings =
  | 'webhookRetrySchedule'
  | 'webhookTimeoutSeconds'
  | 'webhookMaxPayloadBytes'
  | 'webhookDisableAfterSeconds'
  | 'deliverConcurrency'
  | 'allowPrivateNetworks';

function readWebhooks(env: Env, schedule: number[]): Pick<Config, WebhookSettings> {
  return {
    webhookRetrySchedule: schedule,
    webhookTimeoutSeconds: int(env, 'FERRY_WEBHOOK_TIMEOUT_SECONDS', 15, 1, 300),
    webhookMaxPayloadBytes: int(env, 'FERRY_WEBHOOK_MAX_PAYLOAD_BYTES', 256 * 1024, 1024),
    webhookDisableAfterSeconds: int(env, 'FERRY_WEBHOOK_DISABLE_AFTER_SECONDS', 5 * 86400, 1),
    deliverConcurrency: int(env, 'FERRY_DELIVER_CONCURRENCY', 32, 1, 1024),
    allowPrivateNetworks: bool(env, 'WEBHOOK_ALLOW_PRIVATE_NETWORKS', false),
  };
}

type WorkerSettings =
  | 'activeWaitSeconds'
  | 'uploadConcurrency'
  | 'generateConcurrency'
  | 'tenantMaxRunning'
  | 'jobRetentionSeconds'
  | 'responseRetentionSeconds'
  | 'jobLockMs'
  | 'idempotencyLeaseMs';

function readWorkers(env: Env, generateConcurrency: number): Pick<Config, WorkerSettings> {
  return {
    activeWaitSeconds: int(env, 'FERRY_ACTIVE_WAIT_SECONDS', 1800, 1),
    uploadConcurrency: int(env, 'FERRY_UPLOAD_CONCURRENCY', 4, 1, 256),
    generateConcurrency,
    tenantMaxRunning: int(env, 'FERRY_TENANT_MAX_RUNNING', 0, 0, 100_000),
    jobRetentionSeconds: int(env, 'FERRY_JOB_RETENTION_SECONDS', 7 * 86400, 60),
    responseRetentionSeconds: int(env, 'FERRY_RESPONSE_RETENTION_SECONDS', 30 * 86400, 60),
    jobLockMs: int(env, 'FERRY_JOB_LOCK_MS', 8_000, 1000),
    idempotencyLeaseMs: int(env, 'FERRY_IDEMPOTENCY_LEASE_MS', 10_000, 1000, 600_000),
  };
}

function readBatch(env: Env, workerSlots: number): Config['batch'] {
  return {
    concurrency: int(env, 'FERRY_BATCH_CONCURRENCY', 256, 1, 10_000),
    workerSlots,
    maxLines: int(env, 'FERRY_BATCH_MAX_LINES', 50_000, 1, 1_000_000),
    maxBytes: int(env, 'FERRY_BATCH_MAX_BYTES', 200 * MIB, 1),
    execution: batchExecution(env),
  };
}

function readEmulator(env: Env): Config['emulator'] {
  return {
    port: int(env, 'FERRY_EMULATOR_PORT', 0, 0, 65535),
    processingDelayMs: int(env, 'FERRY_EMULATOR_PROCESSING_MS', 500),
  };
}

function readAzure(env: Env, fileSystem: string | undefined, handoff: AzureHandoff): Config['azure'] {
  return {
    accountName: str(env, 'AZURE_STORAGE_ACCOUNT_NAME'),
    fileSystem,
    accountKey: str(env, 'AZURE_STORAGE_ACCOUNT_KEY'),
    connectionString: str(env, 'AZURE_STORAGE_CONNECTION_STRING'),
    endpoint: url(env, 'AZURE_STORAGE_ENDPOINT'),
    createContainer: bool(env, 'FERRY_AZURE_CREATE_CONTAINER', true),
    handoff,
  };
}

export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';
  // The settings checked against each other or against production come first, and in this order,
  // so that an environment with several bad values always reports the same one first.
  const apiKeys = configuredApiKeys(env);
  const geminiKey = str(env, 'GEMINI_API_KEY');
  requireProductionCredentials(production, geminiKey, apiKeys);
  const chunk = uploadChunkBytes(env);
  const prefix = redisPrefix(env, production);
  const schedule = webhookRetrySchedule(env);
  const fileSystem = azureFileSystem(env);
  const handoff = azureHandoff(env);
  const slots = completionSlots(env);
  const redisUrl = url(env, 'REDIS_URL');
  const retention = retentionSeconds(env);

  // Then each section in the order of Config's fields, which is also the order its values are checked in.
  return Object.freeze({
    production,
    ...readListener(env, production),
    ...readRedis(env, redisUrl, prefix),
    apiKeys,
    adminKey: str(env, 'FERRY_ADMIN_KEY'),
    gemini: { apiKey: geminiKey, baseUrl: url(env, 'GEMINI_BASE_URL'), credentialsFile: str(env, 'GOOGLE_APPLICATION_CREDENTIALS') },
    ...readFiles(env, chunk),
    syncWaitSeconds: int(env, 'FERRY_SYNC_WAIT_SECONDS', 60, 0, 3600),
    ...readRetries(env),
    ...readGeminiQuota(env),
    ...readWebhooks(env, schedule),
    ...retention,
    ...readWorkers(env, slots.generateConcurrency),
    batch: readBatch(env, slots.batchWorkerSlots),
    logLevel: str(env, 'FERRY_LOG_LEVEL') ?? 'info',
    logFormat: logFormat(env),
    metricsPort: int(env, 'FERRY_METRICS_PORT', 9464, 0, 65535),
    metricsKey: str(env, 'FERRY_METRICS_KEY'),
    emulator: readEmulator(env),
    azure: readAzure(env, fileSystem, handoff),
  });
}
