/**
 * The console: the static files `npm run build` writes to dist/console, served at `/console`.
 * Nothing here is authenticated: the page asks for a key and every API call it makes carries it.
 */
import express, { Router } from 'express';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '../core/errors.js';

/** dist/console at the checkout's root: the same from src/api (tsx) and dist/api (built). */
export const CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'console');

const HEADERS: Record<string, string> = {
  'Cache-Control': 'no-cache',
  'Content-Security-Policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
};

export function consoleRouter(dir: string = CONSOLE_DIR): Router {
  const r = Router();
  const files = express.static(dir, { index: 'index.html', etag: true, maxAge: 0, setHeaders: (res) => res.set(HEADERS) });
  r.use('/console', (req, res, next) => {
    if (!existsSync(path.join(dir, 'index.html'))) {
      return next(
        new NotFoundError(`The console is not built (${dir} is missing): run \`npm run build\`, then reload /console.`, {
          code: 'console_not_built',
        }),
      );
    }
    files(req, res, next);
  });
  return r;
}
