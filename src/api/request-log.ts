/**
 * Request ids, one log line and one metrics count per request. Each request
 * gets an id (a well-formed `X-Request-Id` from the client, else a fresh
 * UUID), echoed in the response header; `req.log` is a child logger carrying
 * it, made only when something logs. When the response closes, one listener
 * counts it in `ferry_http_requests_total` and writes one line at info (error
 * for a 5xx) with method, URL, status, tenant and time taken.
 *
 * Written here rather than with pino-http: that builds a child logger and runs
 * its serializers on every request even when the level drops the line, which
 * was a large share of the API's CPU time per completion.
 */
import type { Express, NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../core/logger.js';
import { httpRequests } from '../core/metrics.js';

declare module 'node:http' {
  interface IncomingMessage {
    /** The request id, also sent back as `X-Request-Id`. */
    id: string;
    /** A logger that tags every line with the request id. */
    log: Logger;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const QUIET_URLS = new Set(['/healthz', '/metrics']);
const CHILD = Symbol('request logger');

/** The middleware for `app`; `req.log` is defined once on the app's request prototype. */
export function requestLog(app: Express, logger: Logger) {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request & { [CHILD]?: Logger }) {
      return (this[CHILD] ??= logger.child({ reqId: this.id }));
    },
  });
  return (req: Request, res: Response, next: NextFunction) => {
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
      const level = status === null || status >= 500 ? 'error' : 'info';
      if (!logger.isLevelEnabled(level) || QUIET_URLS.has(req.originalUrl)) return;
      const tenant = (res.locals as { principal?: { tenant: string } }).principal?.tenant;
      req.log[level](
        {
          req: { method: req.method, url: req.originalUrl },
          res: { statusCode: status },
          responseTime: Math.round(performance.now() - started),
          ...(tenant ? { tenant } : {}),
        },
        status === null ? 'request aborted' : 'request completed',
      );
    });
    next();
  };
}
