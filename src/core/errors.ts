/**
 * One error family. The API maps any FerryError (and anything else, as a 500)
 * to OpenAI's shape `{"error":{"message","type","param","code"}}` in one place.
 */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class FerryError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = new.target.name;
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export class BadRequestError extends FerryError {
  constructor(message: string, param: string | null = null, code: string | null = 'invalid_request') {
    super(400, message, 'invalid_request_error', code, param);
  }
}
export class AuthenticationError extends FerryError {
  constructor(message = 'Missing or invalid API key. Send it as "Authorization: Bearer <key>".') {
    super(401, message, 'authentication_error', 'invalid_api_key');
  }
}
export class PermissionError extends FerryError {
  constructor(message: string) {
    super(403, message, 'permission_error', 'forbidden');
  }
}
export class NotFoundError extends FerryError {
  constructor(message: string, param: string | null = null) {
    super(404, message, 'invalid_request_error', 'not_found', param);
  }
}
export class ConflictError extends FerryError {
  constructor(message: string, code = 'conflict') {
    super(409, message, 'invalid_request_error', code);
  }
}
export class GoneError extends FerryError {
  constructor(message: string) {
    super(410, message, 'invalid_request_error', 'gone');
  }
}
export class PayloadTooLargeError extends FerryError {
  constructor(message: string, param: string | null = 'file') {
    super(413, message, 'invalid_request_error', 'file_too_large', param);
  }
}
export class UnsupportedMediaTypeError extends FerryError {
  constructor(message: string, param: string | null = 'file') {
    super(415, message, 'invalid_request_error', 'unsupported_media_type', param);
  }
}
export class UnprocessableError extends FerryError {
  constructor(message: string, code = 'unprocessable', param: string | null = null) {
    super(422, message, 'invalid_request_error', code, param);
  }
}
export class RateLimitError extends FerryError {
  constructor(message: string) {
    super(429, message, 'rate_limit_error', 'rate_limited');
  }
}
export class InternalError extends FerryError {
  constructor(message = 'The server had an error while processing your request.') {
    super(500, message, 'server_error', 'internal_error');
  }
}
export class UnavailableError extends FerryError {
  constructor(message: string) {
    super(503, message, 'server_error', 'service_unavailable');
  }
}

/** Redis, where records and queues live, does not answer: retryable, so the SDKs try again. */
export function storeUnavailable(): UnavailableError {
  return new UnavailableError('Ferry cannot reach its store (Redis) right now; try again in a few seconds.');
}

/**
 * A failure of an upstream service (Gemini, Azure). Workers decide from
 * `retryable` whether to try again, and honour `retryAfterMs` when the
 * upstream named a delay.
 */
export class UpstreamError extends FerryError {
  constructor(
    message: string,
    readonly upstreamStatus: number | null,
    readonly retryable: boolean,
    readonly retryAfterMs: number | null = null,
    readonly provider: string = 'gemini',
  ) {
    super(502, message, 'upstream_error', upstreamStatus === null ? 'upstream_unreachable' : `upstream_${upstreamStatus}`);
  }

  /** A 429 that names the quota it exceeded (Gemini's QuotaFailure): the project's limit, not a passing overload. */
  quotaExceeded = false;
  /** The per-minute limits that QuotaFailure stated (requests, input tokens), when it did. */
  quotaLimits: { rpm?: number; tpm?: number } = {};
}

/** Statuses every upstream treats as transient. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function toErrorBody(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof FerryError) return { status: err.status, body: err.toBody() };
  return { status: 500, body: new InternalError().toBody() };
}
