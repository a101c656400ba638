/** `GET /openapi.json`: the OpenAPI 3.1 document of the API (src/openai/openapi.ts), served without a key. */
import { Router } from 'express';
import { readFileSync } from 'node:fs';
import { openapiDocument } from '../openai/openapi.js';

/** The service's version, from the package.json beside src/ and dist/. */
function serviceVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function openapiRouter(): Router {
  const body = JSON.stringify(openapiDocument(serviceVersion()));
  const r = Router();
  r.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(body);
  });
  return r;
}
