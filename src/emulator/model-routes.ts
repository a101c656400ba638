/** `models.list` (paged) and `models.get`, answered from the catalogue (models.ts). */
import type { Handler } from './context.js';
import { notFound } from './errors.js';
import { sendJson } from './http.js';
import { MODELS, modelResource } from './models.js';
import { decodePageToken, encodePageToken, parsePageSize } from './paging.js';

export const handleListModels: Handler = async (_ctx, _req, res, { url }) => {
  const size = parsePageSize(url.searchParams.get('pageSize'));
  const token = url.searchParams.get('pageToken');
  const from = token ? decodePageToken(token) : 0;
  const page = MODELS.slice(from, from + size);
  const next = from + size < MODELS.length ? { nextPageToken: encodePageToken(from + size) } : {};
  sendJson(res, 200, { models: page.map(modelResource), ...next });
};

export const handleGetModel: Handler = async (_ctx, _req, res, { params }) => {
  const entry = MODELS.find((m) => m.id === params.id);
  if (!entry) throw notFound(`models/${params.id} is not found for API version v1beta.`);
  sendJson(res, 200, modelResource(entry));
};
