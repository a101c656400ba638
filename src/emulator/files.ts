/** The files.get / files.list / files.delete / files.download handlers. */

import { pipeline } from 'node:stream/promises';
import type { Handler } from './context.js';
import { invalidArgument, notFound, RpcError } from './errors.js';
import type { FileResource } from './file-store.js';
import { sendJson } from './http.js';
import { decodePageToken, encodePageToken, parsePageSize } from './paging.js';

const noSuchFile = (id: string) => notFound(`File files/${id} does not exist.`);

export const handleGetFile: Handler = async (ctx, _req, res, { params, baseUrl }) => {
  const file = ctx.files.get(params.id);
  if (!file) throw noSuchFile(params.id);
  sendJson(res, 200, ctx.files.toResource(file, baseUrl));
};

export const handleDeleteFile: Handler = async (ctx, _req, res, { params }) => {
  if (!ctx.files.delete(params.id)) throw noSuchFile(params.id);
  sendJson(res, 200, {});
};

/** An empty list answers `{}` like the real API (proto3 JSON leaves out empty repeated fields). */
export const handleListFiles: Handler = async (ctx, _req, res, { url, baseUrl }) => {
  const pageSize = parsePageSize(url.searchParams.get('pageSize'));
  const token = url.searchParams.get('pageToken');
  const { files, more } = ctx.files.page(pageSize, token ? decodePageToken(token) : undefined);
  const body: { files?: FileResource[]; nextPageToken?: string } = {};
  if (files.length) body.files = files.map((f) => ctx.files.toResource(f, baseUrl));
  if (more) body.nextPageToken = encodePageToken(files[files.length - 1].seq);
  sendJson(res, 200, body);
};

/**
 * The bytes of a generated file, streamed (large batch outputs are never joined into one buffer).
 * Like Gemini, uploaded files cannot be downloaded.
 */
export const handleDownloadFile: Handler = async (ctx, _req, res, { params, url }) => {
  if (url.searchParams.get('alt') !== 'media') throw invalidArgument('files.download needs ?alt=media.');
  const file = ctx.files.get(params.id);
  if (!file) throw noSuchFile(params.id);
  if (file.source !== 'GENERATED') throw invalidArgument(`Only generated files can be downloaded; files/${file.id} was uploaded.`);
  const bytes = ctx.files.contentOf(file);
  if (!bytes) throw new RpcError(500, `The bytes of files/${file.id} are not held by the emulator.`);
  res.writeHead(200, { 'Content-Type': file.mimeType, 'Content-Length': String(file.sizeBytes) });
  // A client that goes away mid-download only ends its own response.
  await pipeline(bytes, res).catch(() => res.destroy());
};
