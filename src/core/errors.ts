/**
 * One error family. The API maps any FerryError (and anything else, as a 500) to OpenAI's shape
 * `{"error":{"message","type","param","code"}}` in one place. Every class takes the message and
 * an options object; each kind's status, type and usual code are its own.
 */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** What the caller may say besides the message: the field to change, and a code more precise than the kind's. */
export interface ErrorOptions {
  param?: string | null;
  code?: string | null;
  /** When the same request may succeed: sent as `Retry-After`, which the SDKs honour. */
  retryAfterSeconds?: number;
}

export class FerryError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly retryAfterSeconds: number | null;

  constructor(message: string, opts: ErrorOptions & { status: number; type: string }) {
    super(message);
    this.name = new.target.name;
    this.status = opts.status;
    this.type = opts.type;
    this.code = opts.code ?? null;
    this.param = opts.param ?? null;
    this.retryAfterSeconds = opts.retryAfterSeconds ?? null;
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A kind of error: its status, type and default code, taking `(message, { param, code })`. */
function kind(status: number, type: string, defaultCode: string | null, defaultParam: string | null = null) {
  return class extends FerryError {
    constructor(message: string, opts: ErrorOptions = {}) {
      super(message, {
        status,
        type,
        code: opts.code === undefined ? defaultCode : opts.code,
        param: opts.param === undefined ? defaultParam : opts.param,
        retryAfterSeconds: opts.retryAfterSeconds,
      });
    }
  };
}

export class BadRequestError extends kind(400, 'invalid_request_error', 'invalid_request') {}
export class AuthenticationError extends kind(401, 'authentication_error', 'invalid_api_key') {
  constructor(message = 'Missing or invalid API key. Send it as "Authorization: Bearer <key>".', opts: ErrorOptions = {}) {
    super(message, opts);
  }
}
export class NotFoundError extends kind(404, 'invalid_request_error', 'not_found') {}
export class ConflictError extends kind(409, 'invalid_request_error', 'conflict') {}
export class GoneError extends kind(410, 'invalid_request_error', 'gone') {}
export class PayloadTooLargeError extends kind(413, 'invalid_request_error', 'file_too_large', 'file') {}
export class UnsupportedMediaTypeError extends kind(415, 'invalid_request_error', 'unsupported_media_type', 'file') {}
export class UnprocessableError extends kind(422, 'invalid_request_error', 'unprocessable') {}
export class InternalError extends kind(500, 'server_error', 'internal_error') {
  constructor(message = 'The server had an error while processing your request.', opts: ErrorOptions = {}) {
    super(message, opts);
  }
}
export class UnavailableError extends kind(503, 'server_error', 'service_unavailable') {}
/** OpenAI's answer when the spending limit is reached (the SDKs raise RateLimitError for it). */
export class InsufficientQuotaError extends kind(429, 'insufficient_quota', 'insufficient_quota') {}

/** Redis, where records and queues live, does not answer: retryable, so the SDKs try again. */
export function storeUnavailable(): UnavailableError {
  return new UnavailableError('Ferry cannot reach its store (Redis) right now; try again in a few seconds.');
}

/**
 * A failure of an upstream service (Gemini, Azure). Workers decide from `retryable` whether to
 * try again, and honour `retryAfterMs` when the upstream named a delay.
 */
export class UpstreamError extends FerryError {
  readonly upstreamStatus: number | null;
  readonly retryable: boolean;
  readonly retryAfterMs: number | null;
  /** Which service answered: gemini, azure, or http (a fetched URL). */
  readonly provider: string;
  /** A 429 that names the quota it exceeded (Gemini's QuotaFailure): the project's limit, not a passing overload. */
  quotaExceeded = false;
  /** The per-minute limits that QuotaFailure stated (requests, input tokens), when it did. */
  quotaLimits: { rpm?: number; tpm?: number } = {};
  /** The 429 carried a QuotaFailure: it names a quota of the project (else it may be a passing overload, or a shed Flex call). */
  namesQuota = false;

  constructor(
    message: string,
    opts: { upstreamStatus: number | null; retryable: boolean; retryAfterMs?: number | null; provider?: string },
  ) {
    const s = opts.upstreamStatus;
    super(message, { status: 502, type: 'upstream_error', code: s === null ? 'upstream_unreachable' : `upstream_${s}` });
    this.upstreamStatus = s;
    this.retryable = opts.retryable;
    this.retryAfterMs = opts.retryAfterMs ?? null;
    this.provider = opts.provider ?? 'gemini';
  }
}

/** Statuses every upstream treats as transient. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function toErrorBody(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof FerryError) return { status: err.status, body: err.toBody() };
  return { status: 500, body: new InternalError().toBody() };
}
