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

/** A call to Ferry's API at this origin: JSON in, JSON out; the error shape becomes an ApiError. */
export async function api(path, { method = 'GET', body, signal, raw = false, key = getKey() } = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: 'omit',
  });
  if (!res.ok) {
    const err = new ApiError(res.status, await res.json().catch(() => null));
    if (res.status === 401 && key === getKey()) onUnauthorized();
    throw err;
  }
  return raw ? res : res.json();
}

export const qs = (params) => {
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

/**
 * Who the key is. Ferry has no "who am I" call: a key that lists batches is valid; the admin key
 * is the one the queue dashboard accepts; a tenant's name shows in its usage (project_id).
 */
export async function identify(key) {
  await api('/v1/batches?limit=1', { key });
  // credentials: 'omit': the dashboard's Basic-auth challenge must not open the browser's password prompt.
  const admin = await fetch('/admin/queues', { headers: { Authorization: `Bearer ${key}` }, credentials: 'omit' })
    .then((r) => r.ok)
    .catch(() => false);
  const start = Math.floor(Date.now() / 1000) - 30 * 86400;
  let tenants = [];
  try {
    const u = await api(
      `/v1/organization/usage/completions${qs({ start_time: start, bucket_width: '1d', limit: 31, group_by: 'project_id' })}`,
      { key },
    );
    tenants = [...new Set(u.data.flatMap((b) => b.results.map((r) => r.project_id)).filter(Boolean))].sort();
  } catch {
    // usage unavailable: the header says "tenant key"
  }
  return { admin, tenants };
}

export const FINAL_BATCH = ['completed', 'failed', 'expired', 'cancelled'];
export const FINAL_JOB = ['succeeded', 'failed', 'cancelled'];
