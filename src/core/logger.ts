/** JSON logs (pino). Keys, secrets and authorization headers are never written. */
import { pino, type DestinationStream, type Logger } from 'pino';

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

/** A logger writing JSON lines to standard output, or to `destination` (a file, in tests). */
export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'ferry' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
