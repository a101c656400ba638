/**
 * Request ids, one log line and one metrics count per request. Each request
 * gets an id (a well-formed `X-Request-Id` from the client, else a fresh
 * UUID), echoed in the response header; `requestLogger(req)` is a child logger
 * carrying it, made only when something logs. Both are own properties of the
 * request, never of a prototype: a mounted sub-app (Bull Board) swaps the
 * request's prototype for its own, and the response may close under it. When the response closes, one listener
 * counts it in `ferry_http_requests_total` and writes one line at info (error
 * for a 5xx, debug for the health and readiness probes, warn for a request the client hung up on, debug
 * for a long-poll it left) with method, URL, status, tenant and time taken.
 *
 * Written here rather than with pino-http: that builds a child logger and runs
 * its serializers on every request even when the level drops the line, which
 * was a large share of the API's CPU time per completion.
 */
import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createLogger, type Logger } from '../core/logger.js';
import { httpRequests } from '../core/metrics.js';

declare module 'node:http' {
  interface IncomingMessage {
    /** The request id, also sent back as `X-Request-Id`. */
    id: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const QUIET_URLS = new Set(['/metrics']);
/** Probes, polled every few seconds by orchestrators and by `npm start`'s own wait: their lines are debug. */
const PROBES = new Set(['/healthz', '/readyz']);
const BASE = Symbol('base logger');
const CHILD = Symbol('request logger');
type Tagged = IncomingMessage & { [BASE]?: Logger; [CHILD]?: Logger };
/** Only for a request that never passed the middleware (none is routed so); logging must never throw. */
let fallback: Logger | undefined;

/** The logger for one request: every line carries its id. */
export function requestLogger(req: IncomingMessage): Logger {
  const r = req as Tagged;
  return (r[CHILD] ??= (r[BASE] ?? (fallback ??= createLogger())).child({ reqId: r.id }));
}

/** The middleware: an id, then one log line and one metrics count when the response closes. */
export function requestLog(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    (req as Tagged)[BASE] = logger;
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', id);
    req.id = id;
    const started = performance.now();
    // A response emits close once, after finish or when it was cut off.
    res.once('close', () => {
      const status = res.writableFinished ? res.statusCode : null;
      if (status !== null) {
        const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched';
        httpRequests.inc({ method: req.method, route, status: String(status) });
      }
      // A client that hangs up (a closed tab, a stream read halfway) is worth seeing, not an alert; a
      // readiness probe told "not yet" (while starting, say) is the probe's answer, not a failure.
      // A long-poll left by its client (a console page closed or moved on) is routine: debug.
      const longPoll = (res.locals as { longPoll?: boolean }).longPoll === true;
      const level = status === null ? (longPoll ? 'debug' : 'warn') : PROBES.has(req.path) ? 'debug' : status >= 500 ? 'error' : 'info';
      if (!logger.isLevelEnabled(level) || QUIET_URLS.has(req.originalUrl)) return;
      const tenant = (res.locals as { principal?: { tenant: string } }).principal?.tenant;
      requestLogger(req)[level](
        {
          req: { method: req.method, url: req.originalUrl },
          res: { statusCode: status },
          responseTime: Math.round(performance.now() - started),
          ...(tenant ? { tenant } : {}),
        },
        status === null ? (longPoll ? 'long-poll left by the client' : 'request aborted') : 'request completed',
      );
    });
    next();
  };
}
