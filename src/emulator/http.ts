/** Small HTTP helpers shared by the handlers. */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalidArgument, RpcError } from './errors.js';

export const JSON_TYPE = 'application/json; charset=UTF-8';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': JSON_TYPE,
    'Content-Length': String(Buffer.byteLength(payload)),
    ...headers,
  });
  res.end(payload);
}

export function sendError(res: ServerResponse, err: RpcError, extraHeaders: Record<string, string> = {}): void {
  sendJson(res, err.code, err.toJSON(), { ...err.headers, ...extraHeaders });
}

/** An answer with headers only (upload protocol answers). */
export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string>): void {
  res.writeHead(status, { 'Content-Length': '0', ...headers });
  res.end();
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Reads a whole (small) request body. Past `limit` it rejects at once; the rest of the body is
 * left flowing and discarded, so the connection stays usable.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (req.destroyed) return reject(new Error('request closed before its body was received'));
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (buf: Buffer) => {
      size += buf.length;
      if (size > limit) {
        cleanup();
        req.resume();
        reject(invalidArgument(`Request payload size exceeds the limit: ${limit} bytes.`));
        return;
      }
      parts.push(buf);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(parts, size));
    };
    const onClose = () => {
      cleanup();
      reject(new Error('request closed before its body was received'));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onClose);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onClose);
    req.on('close', onClose);
  });
}

/** Reads a JSON body; an empty body gives `undefined`, bad JSON a 400 like Google's. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const raw = await readBody(req, limit);
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw invalidArgument(`Invalid JSON payload received. ${(err as Error).message}`);
  }
}

/** Consumes and discards a body, reporting each piece's size. Resolves when it ended or broke off. */
export function drain(req: IncomingMessage, onBytes: (n: number) => void = () => {}): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded || req.destroyed) return resolve();
    req.on('data', (buf: Buffer) => onBytes(buf.length));
    req.once('end', resolve);
    req.once('close', resolve);
    req.once('error', resolve);
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
