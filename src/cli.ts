#!/usr/bin/env node
/**
 * `ferry api | worker | all | emulator`, and the client commands `submit` and `status`.
 * `all` (what `npm start` runs) serves the API and runs the workers in one process.
 */
import http from 'node:http';
import { hostname } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { isLoopback, type Config } from './core/config.js';
import type { Logger } from './core/logger.js';
import type { Services } from './core/services.js';
import type { RunningApi } from './api/app.js';
import type { GeminiTarget, WorkerRuntime } from './worker/runtime.js';
import type { Emulator } from './emulator/index.js';
import type { Instance } from './core/instances.js';
import { CLIENT_COMMANDS, CLIENT_USAGE } from './client/usage.js';

// The server's modules (configuration and development defaults included) load only for server
// commands: the client commands start quickly.
const serverModules = async () => ({
  ...(await import('./core/config.js')),
  ...(await import('./dev.js')),
  ...(await import('./core/logger.js')),
  ...(await import('./core/services.js')),
  ...(await import('./api/app.js')),
  ...(await import('./worker/runtime.js')),
  ...(await import('./emulator/index.js')),
  ...(await import('./providers/azure/staging.js')),
});

const USAGE = `Usage: npx ferry <command>   (from this folder; or ferry, once installed on your PATH)

Commands:
  all        API and workers in one process (what npm start runs)
  api        the HTTP API only
  worker     the workers only
  emulator   the local Gemini emulator only (FERRY_EMULATOR_PORT, default 8090)

Client commands (talk to a running Ferry over HTTP):
${CLIENT_USAGE}

Configuration is read from the environment; see README.md.`;

const SHUTDOWN_GRACE_MS = 25_000;

type Stoppable = { name: string; stop: () => Promise<void> };

async function geminiTarget(config: Config, logger: Logger, stops: Stoppable[]): Promise<GeminiTarget> {
  if (config.gemini.apiKey) return { apiKey: config.gemini.apiKey, baseUrl: config.gemini.baseUrl };
  const { startEmulator, emulatorOptionsFromEnv } = await import('./emulator/index.js');
  const emulator: Emulator = await startEmulator({
    port: config.emulator.port,
    processingDelayMs: config.emulator.processingDelayMs,
    ...emulatorOptionsFromEnv(process.env),
    quiet: true,
  });
  stops.push({ name: 'emulator', stop: () => emulator.close() });
  logger.info({ url: emulator.url }, 'no GEMINI_API_KEY: using the local Gemini emulator');
  return { apiKey: 'emulator', baseUrl: emulator.url };
}

async function withDevKey(config: Config): Promise<{ config: Config; devKey: string | null }> {
  if (config.apiKeys.size > 0 || config.production) return { config, devKey: null };
  const { devApiKey } = await import('./dev.js');
  const key = devApiKey(config);
  return { config: { ...config, apiKeys: new Map([[key, 'dev']]) }, devKey: key };
}

/**
 * A bare /metrics and /healthz for a worker-only process, on HOST. Its port taken (a second worker
 * on this host): the worker runs on without one, and says so; null then.
 */
async function workerMetricsServer(config: Config, logger: Logger, runtime: () => WorkerRuntime | null): Promise<http.Server | null> {
  const { registry, metricsRefusal } = await import('./core/metrics.js');
  const server = http.createServer(async (req, res) => {
    const refusal = req.url === '/metrics' ? metricsRefusal(config, req.headers.authorization) : null;
    if (refusal) {
      res.writeHead(refusal.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(refusal.toBody()));
    } else if (req.url === '/metrics') {
      res.setHeader('Content-Type', registry.contentType);
      res.end(await registry.metrics());
    } else if (req.url === '/healthz' || req.url === '/readyz') {
      const ok = runtime()?.running() ?? false;
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'not_ready' }));
    } else res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      const refusal = listenRefusal(err);
      if (!refusal || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') return reject(err);
      logger.warn(
        { port: config.metricsPort },
        `no /metrics for this worker: ${refusal} (another worker on this host has it; give each its own FERRY_METRICS_PORT, or 0 for none)`,
      );
      resolve(null);
    });
    server.listen(config.metricsPort, config.host, () => resolve(server));
  });
}

/** `ferry emulator`: the local Gemini emulator alone. */
async function runEmulator(config: Config, logger: Logger, stops: Stoppable[]): Promise<void> {
  const { startEmulator, emulatorOptionsFromEnv, banner } = await serverModules();
  const emulator = await startEmulator({
    host: config.host,
    // FERRY_EMULATOR_PORT=0 asks for any free port; unset, the emulator's usual 8090.
    port: process.env.FERRY_EMULATOR_PORT === undefined ? 8090 : config.emulator.port,
    processingDelayMs: config.emulator.processingDelayMs,
    // A quota and a model latency (FERRY_EMULATOR_RPM, …_TPM, …_LATENCY_MS, …_LATENCY_MEDIAN_MS/…_P99_MS).
    ...emulatorOptionsFromEnv(process.env),
    // Its line per request is info: FERRY_LOG_LEVEL=warn or above turns the request log off.
    quiet: !logger.isLevelEnabled('info'),
  });
  banner([`Gemini emulator listening on ${emulator.url}`, `Point Ferry at it: GEMINI_BASE_URL=${emulator.url} GEMINI_API_KEY=any`]);
  stops.push({ name: 'emulator', stop: () => emulator.close() });
}

async function run(command: string): Promise<void> {
  const { loadConfig, createProcessLogger, createServices, startApi, startWorkers, createBlobStagingStore, banner, ensureRedis } =
    await serverModules();
  let config = loadConfig();
  const pretty = config.logFormat ? config.logFormat === 'pretty' : !config.production && process.stdout.isTTY === true;
  const logger = await createProcessLogger(config.logLevel, pretty);
  const stops: Stoppable[] = [];
  const live: Live = { api: null, runtime: null };
  // Installed first: a signal during start-up still stops what has started, in order.
  onSignals(stops, logger, live);

  if (command === 'emulator') return runEmulator(config, logger, stops);

  const redisChild: ChildProcess | null = await ensureRedis(config, logger);
  if (redisChild) stops.push({ name: 'redis-server', stop: async () => void redisChild.kill('SIGTERM') });
  const dev = await withDevKey(config);
  config = dev.config;
  // FERRY_STAGING_CONTAINER: staged bytes in a blob container every API and worker machine reaches.
  const blobStaging = config.stagingContainer ? createBlobStagingStore(config) : null;
  const services: Services = await createServices(config, logger, { staging: blobStaging ?? undefined });
  stops.push({ name: 'redis', stop: () => services.close() });
  const { announce } = await import('./core/instances.js');
  const instance = await announce(services, command);
  stops.push({ name: 'announcement', stop: instance.stop });

  // Every port is bound before any worker takes a job: a process that cannot listen takes nothing.
  const runsWorkers = command === 'worker' || command === 'all';
  let runtime: WorkerRuntime | null = null;
  const target = runsWorkers ? await geminiTarget(config, logger, stops) : null;
  let api: RunningApi | null = null;
  if (command === 'api' || command === 'all') {
    api = live.api = await startApi(services, {
      port: config.port,
      host: config.host,
      workersReady: async () => (runsWorkers ? (runtime?.running() ?? false) : (await services.queues.upload.getWorkersCount()) > 0),
    });
  }
  if (command === 'worker' && config.metricsPort) {
    const m = await workerMetricsServer(config, logger, () => runtime);
    if (m) stops.push({ name: 'metrics', stop: () => new Promise((r) => m.close(() => r())) });
  }
  if (target) {
    const rt = (runtime = live.runtime = await startWorkers(services, target));
    stops.push({ name: 'workers', stop: () => rt.close() });
  }
  // Stopped first (stops run in reverse): no new request is accepted while the workers wind down.
  const a = api;
  if (a) stops.push({ name: 'api', stop: () => a.close() });

  const staging = blobStaging ? `Azure Blob container ${blobStaging.location}` : null;
  banner([
    ...startedLines(command, config, { api, target, redisStarted: redisChild !== null, devKey: dev.devKey, staging }),
    ...instance.others.map(stagingMismatch),
  ]);
  for (const other of instance.others)
    logger.warn(
      { other: other.name, staging: other.staging, here: services.staging.location },
      'another process on this prefix stages elsewhere',
    );
}

/** Another process on this Redis prefix stages where this one cannot read (or the other way round). */
function stagingMismatch(other: Instance): string {
  return `WARNING: ${other.command} process ${other.name} uses this Redis prefix but stages at ${other.staging}: uploads one of you accepts, the other's workers cannot read. Give each its own FERRY_REDIS_PREFIX, or share the staging (the same FERRY_STAGING_DIR, or FERRY_STAGING_CONTAINER).`;
}

/** What the banner says once started: where the API listens, which Gemini, which Redis, which keys. */
function startedLines(
  command: string,
  config: Config,
  s: {
    api: RunningApi | null;
    target: GeminiTarget | null;
    redisStarted: boolean;
    devKey: string | null | undefined;
    /** Where staged bytes live when not in FERRY_STAGING_DIR. */
    staging: string | null;
  },
): string[] {
  const { api, target } = s;
  const lines = [`Ferry ${command} is running`];
  if (api) {
    lines.push(`API:     ${api.url}   (OpenAI base URL: ${api.url}/v1)`);
    lines.push(`Console: ${api.url}/console   (in a browser, with an API key)`);
    lines.push(`Listens: ${listening(config.host)}`);
  }
  if (target)
    lines.push(
      `Gemini:  ${config.gemini.apiKey ? (target.baseUrl ?? 'Google (generativelanguage.googleapis.com)') : `emulator at ${target.baseUrl} (no GEMINI_API_KEY)`}`,
    );
  const redis = config.redisClusterNodes ? `Redis Cluster via ${config.redisClusterNodes.join(', ')}` : config.redisUrl;
  lines.push(`Redis:   ${redis}${s.redisStarted ? ' (started here, data under ./data/redis)' : ''}`);
  lines.push(`Prefix:  ${config.prefix}${prefixNote(config)}`);
  lines.push(s.staging ? `Staging: ${s.staging} (FERRY_STAGING_CONTAINER)` : `Staging: ${config.stagingDir} on ${hostname()}`);
  if (s.devKey && api) lines.push(`API key: ${s.devKey}`, '         (a development key; FERRY_API_KEYS sets real ones)');
  if (api) lines.push(config.adminKey ? `Admin:   dashboard at ${api.url}/admin/queues` : 'Admin:   off (no FERRY_ADMIN_KEY)');
  lines.push(
    config.allowPrivateNetworks
      ? 'URLs:    private and loopback allowed (WEBHOOK_ALLOW_PRIVATE_NETWORKS=1)'
      : 'URLs:    public only; WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 allows private ones',
  );
  return lines;
}

/** Why the prefix is what it is, when Ferry chose it. */
function prefixNote(config: Config): string {
  if (process.env.FERRY_REDIS_PREFIX?.trim()) return ' (FERRY_REDIS_PREFIX)';
  if (config.prefix === 'ferry') return '';
  return ` (this checkout's own: other checkouts do not share its work; FERRY_REDIS_PREFIX shares it)`;
}

function listening(host: string): string {
  if (isLoopback(host)) return `${host} only; HOST=0.0.0.0 accepts other machines`;
  if (host === '0.0.0.0' || host === '::') return `all interfaces (${host})`;
  return host;
}

/** The parts a shutdown waits for, once they have started. */
interface Live {
  api: RunningApi | null;
  runtime: WorkerRuntime | null;
}

const WORK_WORDS: Record<string, [string, string]> = {
  generate: ['completion', 'completions'],
  upload: ['upload', 'uploads'],
  early: ['upload', 'uploads'],
  deliver: ['webhook delivery', 'webhook deliveries'],
  batch: ['batch step', 'batch steps'],
  maintenance: ['maintenance pass', 'maintenance passes'],
};

/** What this process is still doing, said as a person would ("2 completions, 1 upload"). */
function outstanding(live: Live): { total: number; text: string } {
  const counts = new Map<string, [number, [string, string]]>();
  const add = (words: [string, string], n: number) => {
    if (n > 0) counts.set(words[0], [(counts.get(words[0])?.[0] ?? 0) + n, words]);
  };
  for (const [queue, n] of Object.entries(live.runtime?.inFlight() ?? {}))
    add(WORK_WORDS[queue] ?? [`${queue} job`, `${queue} jobs`], n ?? 0);
  add(['request', 'requests'], live.api?.inFlight() ?? 0);
  const parts = [...counts.values()].map(([n, [one, many]]) => `${n} ${n === 1 ? one : many}`);
  return { total: [...counts.values()].reduce((sum, [n]) => sum + n, 0), text: parts.join(', ') };
}

const PROGRESS_MS = 2_000;
/** Exit codes: a second signal (work left goes back to the queue), and a grace period that ran out with work left. */
const EXIT_INTERRUPTED = 130;
const EXIT_ABANDONED = 1;

/**
 * SIGTERM/SIGINT: stop accepting, let running work finish (saying what is left every two seconds),
 * close Redis, exit 0. A second signal stops at once: running jobs go back to the queue as after
 * a crash, and the exit code says so (130); so does a grace period that runs out with work left (1).
 */
function onSignals(stops: Stoppable[], logger: Logger, live: Live): void {
  let stopping = false;
  const again = (signal: string) => (signal === 'SIGINT' ? 'Ctrl-C again' : `${signal} again`);
  const stop = async (signal: string) => {
    if (stopping) {
      const left = outstanding(live);
      logger.warn(
        { signal, ...(left.total ? { left: left.text } : {}) },
        left.total ? `stopping now: ${left.text} go back to the queue and run again (here or on another worker)` : 'stopping now',
      );
      process.exit(EXIT_INTERRUPTED);
    }
    stopping = true;
    const first = outstanding(live);
    logger.info(
      { signal },
      first.total
        ? `shutting down: waiting for ${first.text} (up to ${SHUTDOWN_GRACE_MS / 1000} s); ${again(signal)} stops now`
        : 'shutting down',
    );
    const progress = setInterval(() => {
      const left = outstanding(live);
      if (left.total) logger.info(`still waiting for ${left.text}; ${again(signal)} stops now`);
    }, PROGRESS_MS);
    progress.unref();
    const timer = setTimeout(() => {
      const left = outstanding(live);
      logger.warn(
        left.total
          ? `shutdown grace period passed: ${left.text} left; they go back to the queue and run again`
          : 'shutdown grace period passed',
      );
      process.exit(left.total ? EXIT_ABANDONED : 0);
    }, SHUTDOWN_GRACE_MS);
    timer.unref();
    // Reverse order of start: API first (stop accepting), then workers, then connections.
    for (const s of [...stops].reverse()) {
      await s.stop().catch((err) => logger.warn({ err: (err as Error).message, part: s.name }, 'error while stopping'));
    }
    clearInterval(progress);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** A port that is taken or not ours to bind, said as what to change. */
function listenRefusal(err: unknown): string | null {
  const e = err as { code?: string; syscall?: string; address?: string; port?: number };
  if (e?.syscall !== 'listen') return null;
  const where = `${e.address ?? ''}:${e.port ?? ''}`;
  if (e.code === 'EADDRINUSE')
    return `${where} is already in use. Stop what listens there, or choose another port with PORT (the API) or FERRY_METRICS_PORT (a worker's metrics).`;
  if (e.code === 'EACCES') return `${where} may not be bound by this user. Choose a port above 1023 with PORT.`;
  return null;
}

const command = process.argv[2] ?? '';
if (CLIENT_COMMANDS.includes(command)) {
  const { runClient } = await import('./client/index.js');
  process.exit(await runClient(command, process.argv.slice(3)));
}
if (!['all', 'api', 'worker', 'emulator'].includes(command)) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(command === '--help' || command === '-h' ? 0 : 2);
}
run(command).catch(async (err: unknown) => {
  const { isRedisUnavailable } = await import('./core/redis.js');
  const { ConfigError } = await import('./core/config.js');
  const { StartupError } = await import('./dev.js');
  if (err instanceof ConfigError) process.stderr.write(`ferry: configuration error: ${err.message}\n`);
  else if (err instanceof StartupError) process.stderr.write(`ferry: cannot start.\n${err.message}\n`);
  else if (listenRefusal(err)) process.stderr.write(`ferry: cannot start: ${listenRefusal(err)}\n`);
  else if (isRedisUnavailable(err))
    process.stderr.write(
      `ferry: cannot start: Redis stopped answering while Ferry started (${(err as Error).message}). Start it again once Redis answers.\n`,
    );
  else process.stderr.write(`ferry: cannot start: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
