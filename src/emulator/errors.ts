/** Errors in Google's JSON shape: {"error":{"code","message","status","details"?}}. */

const STATUS_BY_CODE: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

export class RpcError extends Error {
  readonly code: number;
  readonly status: string;
  readonly details?: unknown[];
  readonly headers: Record<string, string>;

  constructor(code: number, message: string, opts: { status?: string; details?: unknown[]; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.status = opts.status ?? STATUS_BY_CODE[code] ?? 'UNKNOWN';
    this.details = opts.details;
    this.headers = opts.headers ?? {};
  }

  toJSON(): { error: Record<string, unknown> } {
    const error: Record<string, unknown> = { code: this.code, message: this.message, status: this.status };
    if (this.details?.length) error.details = this.details;
    return { error };
  }
}

export const invalidArgument = (message: string, headers?: Record<string, string>) => new RpcError(400, message, { headers });
export const failedPrecondition = (message: string) => new RpcError(400, message, { status: 'FAILED_PRECONDITION' });
export const notFound = (message: string, headers?: Record<string, string>) => new RpcError(404, message, { headers });

/** Anything thrown by a handler becomes a Google-shaped error; unexpected ones are 500 INTERNAL. */
export function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RpcError(500, `Internal error: ${message}`);
}
