/**
 * files:register (Cloud Storage objects registered with the Files API, no bytes uploaded) and the
 * token exchange that gives its caller an OAuth access token.
 *
 * Registration needs more than an API key: the request carries an OAuth bearer token (the
 * `@google/genai` SDK adds the headers of the auth object it is given). A directory stands in for
 * Cloud Storage (`gcsDir`, FERRY_EMULATOR_GCS_DIR): gs://bucket/object is `<gcsDir>/bucket/object`.
 * An object that is not there, or no directory at all, is refused as Gemini refuses an object its
 * service agent may not read (403). The token endpoint answers an RFC 8693 token exchange, as
 * Google's STS does for external-account (workload identity) credentials, so that a credentials
 * file whose `token_url` names the emulator yields tokens without Google.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { Handler } from './context.js';
import { invalidArgument, RpcError } from './errors.js';
import { readJson, sendJson } from './http.js';

const GS = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])\/(.+)$/;
const TYPES: Record<string, string> = {
  '.pdf': 'application/pdf',
  '.txt': 'text/plain',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.mp4': 'video/mp4',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/wav',
};

/** Tokens this emulator handed out; a bearer token must be one of them. */
const issued = new Set<string>();

export const handleTokenExchange: Handler = async (_ctx, req, res) => {
  let body = '';
  for await (const chunk of req) body += chunk;
  const form = new URLSearchParams(body);
  if (!form.get('subject_token')) return sendJson(res, 400, { error: 'invalid_request', error_description: 'subject_token is required' });
  const token = `emulated-${randomBytes(12).toString('hex')}`;
  issued.add(token);
  sendJson(res, 200, {
    access_token: token,
    issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    token_type: 'Bearer',
    expires_in: 3600,
  });
};

export const handleRegisterFiles: Handler = async (ctx, req, res, { baseUrl }) => {
  const auth = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''));
  if (!auth || !issued.has(auth[1])) {
    throw new RpcError(401, 'Request is missing required authentication credential. Expected OAuth 2 access token.', {
      status: 'UNAUTHENTICATED',
    });
  }
  const body = (await readJson(req, ctx.opts.maxRequestBytes)) as { uris?: unknown };
  if (!Array.isArray(body.uris) || body.uris.length === 0) throw invalidArgument('uris must name at least one gs:// object.');
  const files = [];
  for (const uri of body.uris) {
    const m = GS.exec(String(uri));
    if (!m) throw invalidArgument(`Invalid Cloud Storage URI: ${String(uri)}`);
    const path = objectPath(ctx.opts.gcsDir, m[1], m[2]);
    const size = path
      ? await stat(path).then(
          (s) => (s.isFile() ? s.size : null),
          () => null,
        )
      : null;
    if (!path || size === null) throw new RpcError(403, `The caller does not have permission to read ${String(uri)}.`);
    const file = ctx.files.add({
      displayName: m[2].split('/').pop(),
      mimeType: TYPES[extname(m[2]).toLowerCase()] ?? 'application/octet-stream',
      sizeBytes: size,
      sha256Hex: await sha256Of(path),
      storePath: path,
      source: 'REGISTERED',
    });
    files.push(ctx.files.toResource(file, baseUrl));
  }
  sendJson(res, 200, { files });
};

/** The object's path under `dir`, or null when there is no directory or the name climbs out of it. */
function objectPath(dir: string | undefined, bucket: string, object: string): string | null {
  if (!dir) return null;
  const path = normalize(join(dir, bucket, object));
  return path.startsWith(normalize(dir) + sep) ? path : null;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
