/** The state shared by all handlers of one emulator instance. */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EmulatedBatches } from './batch-store.js';
import type { Billing } from './billing.js';
import type { FaultDecision, FaultInjector } from './faults.js';
import type { EmulatedFiles } from './file-store.js';
import type { LatencyModel } from './latency.js';
import type { QuotaEnforcer } from './quota.js';
import type { RemoteFiles } from './remote-files.js';
import type { StatsCollector } from './stats.js';
import type { TierModel } from './tiers.js';
import type { CacheStore } from './cache-store.js';
import type { EmulatedUploads } from './upload-store.js';

export interface ResolvedOptions {
  host: string;
  port: number;
  apiKey?: string;
  processingDelayMs: number;
  fileTtlMs: number;
  storeDir?: string;
  seed: number;
  quiet: boolean;
  maxFileBytes: number;
  maxRequestBytes: number;
  maxKeptFileBytes: number;
  gcsDir?: string;
}

export interface EmulatorContext {
  opts: ResolvedOptions;
  /** Listening address as a base URL (no trailing slash); known once the server listens. */
  baseUrl: string;
  stats: StatsCollector;
  /** What the model calls were billed (GET /_emulator/billing). */
  billing: Billing;
  faults: FaultInjector;
  files: EmulatedFiles;
  uploads: EmulatedUploads;
  /** Per-model rpm/tpm of model calls (generate and embed). */
  quota: QuotaEnforcer;
  /** Service time of model calls. */
  latency: LatencyModel;
  /** The Flex tier's shedding and extra wait. */
  tiers: TierModel;
  /** Explicit context caches (cachedContents). */
  caches: CacheStore;
  /** Batch Mode jobs and their setting. */
  batches: EmulatedBatches;
  /** Fetches the https URLs of fileData parts. */
  remoteFiles: RemoteFiles;
}

export interface RequestInfo {
  url: URL;
  /** Base URL for links in answers: from the request's Host header, else the listening address. */
  baseUrl: string;
  /** Path parameters of the matched route (file id, model, ...). */
  params: Record<string, string>;
  /** The fault chosen for this request when the handler applies it itself (upload chunks). */
  fault?: FaultDecision['rule'];
}

export type Handler = (ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, info: RequestInfo) => Promise<void>;
