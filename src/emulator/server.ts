/** The HTTP server: routing, API key, fault injection, error answers and lifecycle. */

import { handleGetModel, handleListModels } from './model-routes.js';
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkApiKey } from './auth.js';
import { EmulatedBatches } from './batch-store.js';
import { Billing } from './billing.js';
import {
  endBatch,
  handleCancelBatch,
  handleCreateBatch,
  handleCreateEmbeddingsBatch,
  handleDeleteBatch,
  handleGetBatch,
  handleListBatches,
} from './batches.js';
import type { EmulatorContext, Handler, RequestInfo, ResolvedOptions } from './context.js';
import {
  handleExpireBatch,
  handleExpireFile,
  handleFailBatch,
  handleGetBatchSetting,
  handleGetFaults,
  handleGetLatency,
  handleGetTiers,
  handlePutTiers,
  handleGetQuota,
  handleGetStats,
  handleGetBilling,
  handlePutBatchSetting,
  handlePutFaults,
  handlePutLatency,
  handlePutQuota,
  handleReset,
  resetState,
  statsSnapshot,
} from './control.js';
import { handleBatchEmbedContents, handleEmbedContent } from './embeddings.js';
import { invalidArgument, notFound, RpcError, toRpcError } from './errors.js';
import { FaultInjector, faultError } from './faults.js';
import { EmulatedFiles } from './file-store.js';
import { handleDeleteFile, handleDownloadFile, handleGetFile, handleListFiles } from './files.js';
import { handleRegisterFiles, handleTokenExchange } from './register.js';
import { handleCountTokens, handleGenerate, handleStreamGenerate } from './generate.js';
import { header, sendError, sleep } from './http.js';
import { LatencyModel } from './latency.js';
import { QuotaEnforcer } from './quota.js';
import { RemoteFiles } from './remote-files.js';
import { StatsCollector } from './stats.js';
import { TierModel } from './tiers.js';
import { CacheStore } from './cache-store.js';
import { handleCreateCache, handleDeleteCache, handleGetCache, handleListCaches, handleUpdateCache } from './caches.js';
import type { Emulator, EmulatorOptions, RouteName } from './types.js';
import { EmulatedUploads } from './upload-store.js';
import {
  handleUnknownUploadCommand,
  handleUploadCancel,
  handleUploadChunk,
  handleUploadQuery,
  handleUploadStart,
  parseUploadCommand,
} from './uploads.js';

const HOURS = 3600_000;
/** Default seed, so that probabilistic faults repeat from run to run unless a seed is given. */
const DEFAULT_SEED = 0x5eed;
/** Largest body fetched from a fileData URL unless set: Gemini's inline limit per request since January 2026. */
const DEFAULT_MAX_FILE_URI_BYTES = 100 * 1024 ** 2;
/** The routes that call a model: counted in flight per model, as their quota is. */
const MODEL_ROUTES: ReadonlySet<RouteName> = new Set(['generate', 'stream', 'embed', 'embed.batch']);

interface RouteSpec {
  methods: string[];
  pattern: RegExp;
  /** Named API route; control routes have none (not counted, no key, no faults). */
  route?: RouteName;
  handler: Handler;
}

interface Match {
  route?: RouteName;
  handler: Handler;
  params: Record<string, string>;
}

const VERSION = '(?:v1beta|v1alpha|v1)';

const ROUTE_TABLE: RouteSpec[] = [
  { methods: ['POST'], pattern: /^\/upload\/v1beta\/files$/, route: 'upload.start', handler: handleUploadStart },
  { methods: ['GET'], pattern: new RegExp(`^/${VERSION}/files$`), route: 'files.list', handler: handleListFiles },
  { methods: ['POST'], pattern: new RegExp(`^/${VERSION}/files:register$`), route: 'files.register', handler: handleRegisterFiles },
  { methods: ['POST'], pattern: /^\/token$/, route: 'token', handler: handleTokenExchange },
  { methods: ['GET'], pattern: new RegExp(`^/${VERSION}/models$`), route: 'models.list', handler: handleListModels },
  { methods: ['GET'], pattern: new RegExp(`^/${VERSION}/models/(?<id>[^/:]+)$`), route: 'models.get', handler: handleGetModel },
  { methods: ['GET'], pattern: new RegExp(`^/${VERSION}/files/(?<id>[^/:]+)$`), route: 'files.get', handler: handleGetFile },
  { methods: ['DELETE'], pattern: new RegExp(`^/${VERSION}/files/(?<id>[^/:]+)$`), route: 'files.delete', handler: handleDeleteFile },
  {
    // The SDK downloads from /v1beta/files/x:download, the REST reference names /download/v1beta/files/x:download.
    methods: ['GET'],
    pattern: new RegExp(`^(?:/download)?/${VERSION}/files/(?<id>[^/:]+):download$`),
    route: 'files.download',
    handler: handleDownloadFile,
  },
  { methods: ['POST'], pattern: new RegExp(`^/${VERSION}/cachedContents$`), route: 'caches.create', handler: handleCreateCache },
  { methods: ['GET'], pattern: new RegExp(`^/${VERSION}/cachedContents$`), route: 'caches.list', handler: handleListCaches },
  { methods: ['GET'], pattern: new RegExp(`^/${VERSION}/cachedContents/(?<id>[^/:]+)$`), route: 'caches.get', handler: handleGetCache },
  {
    methods: ['PATCH'],
    pattern: new RegExp(`^/${VERSION}/cachedContents/(?<id>[^/:]+)$`),
    route: 'caches.update',
    handler: handleUpdateCache,
  },
  {
    methods: ['DELETE'],
    pattern: new RegExp(`^/${VERSION}/cachedContents/(?<id>[^/:]+)$`),
    route: 'caches.delete',
    handler: handleDeleteCache,
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/${VERSION}/(?<model>(?:models|tunedModels)/[^/:]+):generateContent$`),
    route: 'generate',
    handler: handleGenerate,
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/${VERSION}/(?<model>(?:models|tunedModels)/[^/:]+):countTokens$`),
    route: 'countTokens',
    handler: handleCountTokens,
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/${VERSION}/(?<model>(?:models|tunedModels)/[^/:]+):streamGenerateContent$`),
    route: 'stream',
    handler: handleStreamGenerate,
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/${VERSION}/(?<model>(?:models|tunedModels)/[^/:]+):batchGenerateContent$`),
    route: 'batches.create',
    handler: handleCreateBatch,
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/${VERSION}/(?<model>(?:models|tunedModels)/[^/:]+):embedContent$`),
    route: 'embed',
    handler: handleEmbedContent,
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/${VERSION}/(?<model>(?:models|tunedModels)/[^/:]+):batchEmbedContents$`),
    route: 'embed.batch',
    handler: handleBatchEmbedContents,
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/${VERSION}/(?<model>(?:models|tunedModels)/[^/:]+):asyncBatchEmbedContent$`),
    route: 'batches.createEmbeddings',
    handler: handleCreateEmbeddingsBatch,
  },
  { methods: ['GET'], pattern: new RegExp(`^/${VERSION}/batches$`), route: 'batches.list', handler: handleListBatches },
  { methods: ['GET'], pattern: new RegExp(`^/${VERSION}/batches/(?<id>[^/:]+)$`), route: 'batches.get', handler: handleGetBatch },
  { methods: ['DELETE'], pattern: new RegExp(`^/${VERSION}/batches/(?<id>[^/:]+)$`), route: 'batches.delete', handler: handleDeleteBatch },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/${VERSION}/batches/(?<id>[^/:]+):cancel$`),
    route: 'batches.cancel',
    handler: handleCancelBatch,
  },
  { methods: ['GET'], pattern: /^\/_emulator\/stats$/, handler: handleGetStats },
  { methods: ['GET'], pattern: /^\/_emulator\/billing$/, handler: handleGetBilling },
  { methods: ['GET'], pattern: /^\/_emulator\/faults$/, handler: handleGetFaults },
  { methods: ['PUT'], pattern: /^\/_emulator\/faults$/, handler: handlePutFaults },
  { methods: ['GET'], pattern: /^\/_emulator\/quota$/, handler: handleGetQuota },
  { methods: ['PUT'], pattern: /^\/_emulator\/quota$/, handler: handlePutQuota },
  { methods: ['GET'], pattern: /^\/_emulator\/latency$/, handler: handleGetLatency },
  { methods: ['GET'], pattern: /^\/_emulator\/tiers$/, handler: handleGetTiers },
  { methods: ['PUT'], pattern: /^\/_emulator\/tiers$/, handler: handlePutTiers },
  { methods: ['PUT'], pattern: /^\/_emulator\/latency$/, handler: handlePutLatency },
  { methods: ['POST'], pattern: /^\/_emulator\/reset$/, handler: handleReset },
  { methods: ['POST'], pattern: /^\/_emulator\/files\/(?<id>[^/]+)\/expire$/, handler: handleExpireFile },
  { methods: ['GET'], pattern: /^\/_emulator\/batches$/, handler: handleGetBatchSetting },
  { methods: ['PUT'], pattern: /^\/_emulator\/batches$/, handler: handlePutBatchSetting },
  { methods: ['POST'], pattern: /^\/_emulator\/batches\/(?<id>[^/]+)\/expire$/, handler: handleExpireBatch },
  { methods: ['POST'], pattern: /^\/_emulator\/batches\/(?<id>[^/]+)\/fail$/, handler: handleFailBatch },
];

const SESSION_ROUTES: Record<string, { route: RouteName; handler: Handler }> = {
  chunk: { route: 'upload.chunk', handler: handleUploadChunk },
  query: { route: 'upload.query', handler: handleUploadQuery },
  cancel: { route: 'upload.cancel', handler: handleUploadCancel },
};

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw invalidArgument(`Malformed percent-encoding in "${part}".`);
  }
}

function matchRoute(req: IncomingMessage, url: URL): Match | undefined {
  const method = req.method ?? 'GET';
  // Requests to an upload session URL (?upload_id=...) are told apart by their command header.
  if (url.pathname === '/upload/v1beta/files' && url.searchParams.has('upload_id') && (method === 'POST' || method === 'PUT')) {
    const { command } = parseUploadCommand(header(req, 'x-goog-upload-command'));
    return { ...(SESSION_ROUTES[command] ?? { route: 'upload.chunk', handler: handleUnknownUploadCommand }), params: {} };
  }
  for (const spec of ROUTE_TABLE) {
    const m = spec.pattern.exec(url.pathname);
    if (!m || !spec.methods.includes(method)) continue;
    const params = Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, decodePathPart(v)]));
    if (params.model) params.model = params.model.replace(/^models\//, '');
    return { route: spec.route, handler: spec.handler, params };
  }
  return undefined;
}

/** Upload session URLs carry their own credential (the upload id), as on the real API. */
/** Session URLs carry their own authority, and the token exchange is not Gemini's (no API key there). */
const needsApiKey = (match: Match) =>
  match.route !== undefined &&
  match.route !== 'upload.chunk' &&
  match.route !== 'upload.query' &&
  match.route !== 'upload.cancel' &&
  match.route !== 'token';

function requestBaseUrl(ctx: EmulatorContext, req: IncomingMessage): string {
  const host = req.headers.host;
  return host && /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? `http://${host}` : ctx.baseUrl;
}

function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? '/';
  try {
    return new URL(target.startsWith('/') ? `http://emulator.invalid${target}` : target);
  } catch {
    throw invalidArgument(`Malformed request target ${JSON.stringify(target)}.`);
  }
}

async function handleRequest(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = requestUrl(req);
    const match = matchRoute(req, url);
    if (!match) throw notFound(`The requested URL ${url.pathname} was not found on this server.`);
    const info: RequestInfo = { url, params: match.params, baseUrl: requestBaseUrl(ctx, req) };
    if (match.route) {
      ctx.stats.countRequest(match.route);
      if (MODEL_ROUTES.has(match.route)) trackModelCall(ctx, match.params.model, res);
      if (needsApiKey(match)) checkApiKey(ctx.opts.apiKey, req, url);
      const decision = ctx.faults.decide(match.route);
      if (decision.latencyMs > 0) await sleep(decision.latencyMs);
      if (decision.answerDelayMs > 0) holdAnswer(res, decision.answerDelayMs);
      if (decision.rule?.kind === 'reset' && match.route !== 'upload.chunk') return void req.socket.destroy();
      if (decision.rule && match.route !== 'upload.chunk') throw faultError(decision.rule);
      // Chunk faults are applied by the chunk handler, which counts the bytes it receives.
      info.fault = decision.rule;
    }
    await match.handler(ctx, req, res, info);
  } catch (err) {
    const error = toRpcError(err);
    if (!(err instanceof RpcError) && !ctx.opts.quiet) {
      process.stderr.write(`[gemini-emulator] ${req.method} ${req.url}: ${(err as Error)?.stack ?? err}\n`);
    }
    if (res.headersSent || res.destroyed) res.destroy();
    else sendError(res, error);
  }
}

/** The answer goes out `ms` after the handler ends it: the request has taken effect, its answer is late. */
function holdAnswer(res: ServerResponse, ms: number): void {
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.end = ((...args: unknown[]) => {
    setTimeout(() => {
      if (!res.destroyed) end(...args);
    }, ms);
    return res;
  }) as ServerResponse['end'];
}

/** Counts a model call in flight until its response closes (answered, cut or abandoned). */
function trackModelCall(ctx: EmulatorContext, model: string, res: ServerResponse): void {
  ctx.stats.generateStarted(model);
  res.once('close', () => ctx.stats.generateEnded(model, res.headersSent && res.statusCode >= 200 && res.statusCode < 300));
}

function logRequests(req: IncomingMessage, res: ServerResponse): void {
  const started = process.hrtime.bigint();
  res.once('close', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const status = res.writableFinished ? String(res.statusCode) : 'cut';
    process.stderr.write(`[gemini-emulator] ${req.method} ${req.url} ${status} ${ms.toFixed(1)} ms\n`);
  });
}

function resolveOptions(o: EmulatorOptions): ResolvedOptions {
  return {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    apiKey: o.apiKey,
    processingDelayMs: o.processingDelayMs ?? 0,
    fileTtlMs: o.fileTtlMs ?? 48 * HOURS,
    storeDir: o.storeDir,
    seed: o.seed ?? DEFAULT_SEED,
    quiet: o.quiet ?? false,
    maxFileBytes: o.maxFileBytes ?? 2 * 1024 ** 3,
    maxRequestBytes: o.maxRequestBytes ?? 20 * 1024 ** 2,
    maxKeptFileBytes: o.maxKeptFileBytes ?? 64 * 1024 ** 2,
    gcsDir: o.gcsDir,
  };
}

/** A host as it appears in a URL: wildcard addresses become loopback, IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** The state of one emulator, as its options set it up. */
function newContext(opts: ResolvedOptions, options: EmulatorOptions): EmulatorContext {
  const stats = new StatsCollector();
  const ctx: EmulatorContext = {
    opts,
    baseUrl: '',
    stats,
    billing: new Billing(),
    faults: new FaultInjector(opts.seed, stats),
    files: new EmulatedFiles(opts),
    uploads: new EmulatedUploads(),
    quota: new QuotaEnforcer(options.quota, stats),
    latency: new LatencyModel(options.latency, opts.seed),
    tiers: new TierModel(options.tiers, opts.seed),
    caches: new CacheStore(),
    batches: new EmulatedBatches(options.batches),
    remoteFiles: new RemoteFiles({ ...options.fileUriTls, maxBytes: options.maxFileUriBytes ?? DEFAULT_MAX_FILE_URI_BYTES }),
  };
  if (options.faults) ctx.faults.set(options.faults);
  return ctx;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const opts = resolveOptions(options);
  if (opts.storeDir) await mkdir(opts.storeDir, { recursive: true });
  const ctx = newContext(opts, options);
  const server = createServer((req, res) => {
    if (!opts.quiet) logRequests(req, res);
    void handleRequest(ctx, req, res);
  });
  // Keep connections open between chunks, and never cut a long single-request upload.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.requestTimeout = 0;
  server.timeout = 0;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  ctx.baseUrl = `http://${urlHost(opts.host)}:${port}`;

  return {
    url: ctx.baseUrl,
    port,
    stats: () => statsSnapshot(ctx),
    setFaults: (rules) => ctx.faults.set(rules),
    setQuota: (quota) => ctx.quota.set(quota),
    setLatency: (latency) => ctx.latency.set(latency),
    setBatchSetting: (setting) => ctx.batches.update(setting),
    setTiers: (setting) => ctx.tiers.set(setting),
    reset: () => resetState(ctx),
    expireFile: (name) => void ctx.files.expire(name),
    expireBatch: (name) => endBatch(ctx, name, 'EXPIRED'),
    failBatch: (name) => endBatch(ctx, name, 'FAILED'),
    close: () =>
      new Promise<void>((resolve, reject) => {
        ctx.remoteFiles.close();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
