/**
 * The Express app: request ids and logs, operations endpoints, the
 * authenticated `/v1` routers, and the one place errors become OpenAI's
 * error shape. It validates, stages, enqueues and reads records; it never
 * calls Gemini or Azure.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import {
  BadRequestError,
  FerryError,
  NotFoundError,
  PayloadTooLargeError,
  storeUnavailable,
  toErrorBody,
  UnavailableError,
  UnsupportedMediaTypeError,
} from '../core/errors.js';
import { ChangeWaiter } from '../core/events.js';
import { BlockingReaders, createRedis, isRedisUnavailable, logErrors } from '../core/redis.js';
import type { Services } from '../core/services.js';
import { KeyRing, requireKey } from './auth.js';
import type { ApiDeps } from './deps.js';
import { chatRouter } from './chat.js';
import { responsesRouter } from './responses.js';
import { embeddingsRouter } from './embeddings.js';
import { modelsRouter } from './models.js';
import { organizationRouter } from './usage.js';
import { meRouter } from './me.js';
import { activityRouter } from './activity.js';
import { filesRouter } from './files.js';
import { uploadsRouter } from './uploads.js';
import { jobsRouter } from './jobs.js';
import { batchesRouter } from './batches.js';
import { webhookDeliveriesRouter, webhookEndpointsRouter } from './webhooks.js';
import { opsRouter } from './ops.js';
import { consoleRouter } from './console.js';
import { openapiRouter } from './openapi.js';
import { requestLog, requestLogger } from './request-log.js';

export function createApp(deps: ApiDeps): { app: express.Express; close: () => void } {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  app.set('etag', false);
  app.use(requestLog(deps.services.logger));

  const ops = opsRouter(deps);
  app.use(ops.router);
  app.use(consoleRouter());
  app.use(openapiRouter());
  const v1 = express.Router();
  // Answers are per key and change as work moves: no cache keeps one, nor revalidates it on its own
  // (a browser that did would turn a `?wait=` for a final status into a wait for any change).
  v1.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  v1.use(requireKey(deps.ring));
  v1.use('/files', filesRouter(deps));
  v1.use('/uploads', uploadsRouter(deps));
  v1.use('/chat', chatRouter(deps));
  v1.use('/responses', responsesRouter(deps));
  v1.use('/embeddings', embeddingsRouter(deps));
  v1.use('/jobs', jobsRouter(deps));
  v1.use('/batches', batchesRouter(deps));
  v1.use('/webhook_endpoints', webhookEndpointsRouter(deps));
  v1.use('/webhook_deliveries', webhookDeliveriesRouter(deps));
  v1.use('/models', modelsRouter(deps));
  v1.use('/organization', organizationRouter(deps));
  v1.use('/me', meRouter(deps));
  v1.use('/activity', activityRouter(deps));
  app.use('/v1', v1);

  app.use((req, _res, next) => next(new NotFoundError(`Unknown route: ${req.method} ${req.path}`)));
  app.use(errorHandler);
  return { app, close: ops.close };
}

/** Errors raised by Express and its body parsers, as Ferry's own: what to change, in OpenAI's shape. */
function fromExpress(err: unknown): unknown {
  const e = err as { type?: string; status?: number; message?: string; body?: string; limit?: number; expose?: boolean };
  if (e?.type === 'entity.parse.failed') return new BadRequestError(parseFailure(e), { code: 'invalid_json' });
  if (e?.type === 'entity.too.large') {
    return new PayloadTooLargeError(
      `The request body is larger than ${e.limit} bytes. Upload large media with POST /v1/files and reference it by file_id.`,
      { param: null, code: 'request_too_large' },
    );
  }
  if (e?.type === 'charset.unsupported') {
    return new UnsupportedMediaTypeError(`${e.message}: send the body as UTF-8 (Content-Type: application/json; charset=utf-8).`, {
      param: null,
      code: 'unsupported_charset',
    });
  }
  if (err instanceof URIError || (e?.status === 400 && /decode param/.test(e.message ?? ''))) {
    return new BadRequestError(`The URL holds a malformed %-escape (${e.message}); percent-encode it as UTF-8.`, {
      code: 'invalid_url_encoding',
    });
  }
  if (e?.status && e.status >= 400 && e.status < 500 && e.expose) {
    // Other client errors of the parsers (an encoding they cannot read, say).
    return new FerryError(e.message ?? 'Bad request', { status: e.status, type: 'invalid_request_error', code: 'invalid_request' });
  }
  return isRedisUnavailable(err) ? storeUnavailable() : err;
}

/** `null` or `[1]` parse, but are not a request: say what the body must be. */
function parseFailure(e: { body?: string; message?: string }): string {
  try {
    JSON.parse(e.body ?? '');
    return 'The body must be a JSON object, like {"model": …, "messages": […]}.';
  } catch {
    return `The body is not valid JSON: ${e.message}`;
  }
}

function errorHandler(err: unknown, req: Request, res: Response, _next: NextFunction) {
  const normalized = fromExpress(err);
  // The client hung up while the answer streamed: the request log has it as aborted, at warn.
  if (res.headersSent && (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return void res.destroy();
  const { status, body } = toErrorBody(normalized);
  if (normalized instanceof UnavailableError) requestLogger(req).warn({ err: (err as Error).message }, 'request failed: unavailable');
  else if (status >= 500) requestLogger(req).error({ err }, 'request failed');
  else requestLogger(req).info({ status, code: body.error.code, message: body.error.message }, 'request refused');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (!req.complete) unreadBody(req, res);
  // The SDKs retry a 503 (and a 409) after this long.
  const retryAfter = normalized instanceof FerryError ? normalized.retryAfterSeconds : null;
  if (retryAfter !== null) res.setHeader('Retry-After', String(retryAfter));
  else if (status === 503) res.setHeader('Retry-After', '2');
  res.status(status).json(body);
}

/** Up to this much of a refused request's body is read, so that its client sees the answer. */
const DRAIN_BYTES = 4 * 1024 * 1024;

/**
 * The client is still sending a body Ferry will not use (a wrong key on an upload, say). Closing
 * at once would reset a client still writing, which then reports a connection error instead of
 * the answer: a small body is read to its end, and only a large one drops the connection.
 */
function unreadBody(req: Request, res: Response) {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > DRAIN_BYTES) res.setHeader('Connection', 'close');
  else {
    let seen = 0;
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DRAIN_BYTES) req.socket.destroy();
    });
  }
  req.resume();
}

export interface RunningApi {
  server: http.Server;
  url: string;
  /** Requests being answered now (what a shutdown waits for). */
  inFlight(): number;
  close(): Promise<void>;
}

export async function startApi(
  services: Services,
  opts: { port: number; host: string; workersReady: () => Promise<boolean> },
): Promise<RunningApi> {
  const { config } = services;
  const sub = createRedis(config, 'subscriber');
  logErrors(sub, services.logger, 'subscriber connection');
  const stopping = new AbortController();
  // Every waiting caller listens for the stop, by design: no count of them is a leak.
  setMaxListeners(0, stopping.signal);
  const deps: ApiDeps = {
    services,
    waiter: new ChangeWaiter(sub, services.keys),
    readers: new BlockingReaders(config),
    ring: new KeyRing(config.apiKeys, config.adminKey),
    workersReady: opts.workersReady,
    stopping: stopping.signal,
  };
  const { app, close: closeApp } = createApp(deps);
  const server = http.createServer(app);
  let answering = 0;
  server.on('request', (_req, res: http.ServerResponse) => {
    answering++;
    res.once('close', () => answering--);
  });
  // Large uploads may take long: no overall request deadline, but headers must arrive promptly.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as import('node:net').AddressInfo;
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
  return {
    server,
    url: `http://${host}:${addr.port}`,
    inFlight: () => answering,
    async close() {
      // Callers waiting on a job get its id now (202, or a stream's last event), not a dropped connection.
      stopping.abort();
      await new Promise<void>((resolve) => {
        // Connections still answering become idle a moment later: close those too, not after the keep-alive timeout.
        const idle = setInterval(() => server.closeIdleConnections(), 100);
        server.close(() => {
          clearInterval(idle);
          resolve();
        });
        server.closeIdleConnections();
      });
      closeApp();
      deps.readers.close();
      await sub.quit().catch(() => sub.disconnect());
    },
  };
}
