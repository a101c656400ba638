/**
 * JSON request bodies. express.json() silently skips a body sent with another
 * Content-Type (curl's `-d` sends application/x-www-form-urlencoded), and the
 * route would then report a missing field; this says what to change instead.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { UnsupportedMediaTypeError } from '../core/errors.js';

export function jsonBody(limit: string) {
  const parse = express.json({ limit });
  return [
    parse,
    (req: Request, _res: Response, next: NextFunction) => {
      if (req.body !== undefined || !hasBody(req)) return next();
      const given = req.headers['content-type'];
      next(
        new UnsupportedMediaTypeError(
          `The body must be JSON sent with "Content-Type: application/json" (it came ${given ? `as "${given}"` : 'without a Content-Type'}).`,
          { param: 'Content-Type' },
        ),
      );
    },
  ];
}

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}
