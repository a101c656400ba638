// Ferry's public HTTP API, with the key entered in this tab (sessionStorage: gone with the tab, never in a URL).
const KEY = 'ferry.console.key';

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (k) => sessionStorage.setItem(KEY, k);
export const clearKey = () => sessionStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? null;
  }
}

let onUnauthorized = () => {};
export const whenUnauthorized = (fn) => (onUnauthorized = fn);

/**
 * A call to Ferry's API at this origin: JSON in, JSON out; the error shape becomes an ApiError.
 * `raw` answers the response itself (a 304 included, for `watch`).
 */
export async function api(path, { method = 'GET', body, signal, raw = false, key = getKey(), headers: extra = {} } = {}) {
  const headers = { Authorization: `Bearer ${key}`, ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: 'omit',
    cache: 'no-store',
  });
  if (!res.ok && !(raw && res.status === 304)) {
    const err = new ApiError(res.status, await res.json().catch(() => null));
    if (res.status === 401 && key === getKey()) onUnauthorized();
    throw err;
  }
  return raw ? res : res.json();
}

/** A query string of `params`, with the admin's tenant filter for the lists and the activity (`scoped`). */
export const qs = (params, { scoped = false } = {}) => {
  if (scoped && getTenant()) params = { ...params, tenant: getTenant() };
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
};

/** A file's bytes fetched with the key, then saved by the browser as a download. */
export async function downloadFile(fileId, name) {
  const res = await api(`/v1/files/${encodeURIComponent(fileId)}/content`, { raw: true });
  saveBlob(await res.blob(), name ?? `${fileId}.jsonl`);
}

export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Lines of a JSONL file (the batch error and output files). */
export async function jsonl(fileId) {
  const text = await (await api(`/v1/files/${encodeURIComponent(fileId)}/content`, { raw: true })).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return { unparsed: l };
      }
    });
}

/** Who the key is: its tenant, whether it is the admin key, and the tenants it may list. */
export const identify = (key) => api('/v1/me', { key });

// The admin's tenant filter (`?tenant=` on lists and the activity), kept for the tab like the key.
const TENANT = 'ferry.console.tenant';
export const getTenant = () => sessionStorage.getItem(TENANT) ?? '';
export const setTenant = (t) => (t ? sessionStorage.setItem(TENANT, t) : sessionStorage.removeItem(TENANT));

/** How long a conditional long-poll waits for a change (Ferry holds it at most 120 s). */
const WATCH_SECONDS = 25;

/**
 * A GET that holds the version it has (`If-None-Match` with `?wait=`): Ferry answers when what it
 * asks for changes, or 304 when the wait runs out. Answers { changed, data, etag }.
 */
export async function watch(path, { etag, signal } = {}) {
  const url = etag ? `${path}${path.includes('?') ? '&' : '?'}wait=${WATCH_SECONDS}` : path;
  const res = await api(url, { raw: true, signal, headers: etag ? { 'If-None-Match': etag } : {} });
  if (res.status === 304) return { changed: false, etag };
  return { changed: true, data: await res.json(), etag: res.headers.get('etag') };
}

/** Whether a failed call is worth trying again: not a refusal (400, 404: asking again answers the same), but a 429, a 503 or a dropped connection. */
export const worthRetrying = (error) => !(error.status >= 400 && error.status < 500 && error.status !== 429);

export const FINAL_BATCH = ['completed', 'failed', 'expired', 'cancelled'];
export const FINAL_JOB = ['succeeded', 'failed', 'cancelled'];
