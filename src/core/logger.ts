/** JSON logs (pino). Keys, secrets and authorization headers are never written. */
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-goog-api-key"]',
  'req.headers["idempotency-key"]',
  'headers.authorization',
  'headers["x-goog-api-key"]',
  'apiKey',
  'secret',
  '*.apiKey',
  '*.secret',
  '*.accountKey',
  '*.connectionString',
];

export function createLogger(level = 'info'): Logger {
  return pino({
    level,
    base: { service: 'ferry' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type { Logger };
