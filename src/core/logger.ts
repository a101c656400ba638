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

/**
 * The logger of a Ferry process: readable lines (pino-pretty, loaded only then) when `pretty`,
 * JSON lines otherwise. Redaction applies to both: it runs before the lines are formatted.
 */
export async function createProcessLogger(level: string, pretty: boolean): Promise<Logger> {
  if (!pretty) return createLogger(level);
  const { default: prettyStream } = await import('pino-pretty');
  return createLogger(level, prettyStream({ sync: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,service' }));
}
