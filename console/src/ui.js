import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { api, watch, worthRetrying } from './api.js';

export const html = htm.bind(h);

export const fmtTime = (s) => (s ? new Date(s * 1000).toISOString().replace('T', ' ').slice(0, 19) : '—');
export const fmtDur = (a, b) => {
  if (!a || !b) return '—';
  const s = b - a;
  return s < 60 ? `${s.toFixed(s < 10 ? 1 : 0)} s` : s < 3600 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;
};
export const fmtBytes = (n) =>
  n == null ? '—' : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
export const fmtNum = (n) => (n == null ? '—' : Number(n).toLocaleString('en'));

export const Status = ({ s }) => html`<span class=${`status s-${s}`}>${s}</span>`;

export function Progress({ counts }) {
  const { total = 0, completed = 0, failed = 0 } = counts ?? {};
  const pct = (n) => (total ? `${(100 * n) / total}%` : '0%');
  return html`<div
    class="progress"
    role="progressbar"
    aria-valuemin="0"
    aria-valuemax=${total}
    aria-valuenow=${completed + failed}
    title=${`${completed} completed, ${failed} failed of ${total}`}
  >
    <span class="done" style=${{ width: pct(completed) }}></span><span class="fail" style=${{ width: pct(failed) }}></span>
    <em>${completed + failed} / ${total}${failed ? ` (${failed} failed)` : ''}</em>
  </div>`;
}

export const ErrorNote = ({ error }) => (error ? html`<p class="error" role="alert">${error.message ?? String(error)}</p>` : null);

/** Calls `load` now, then again after `ms(result)` milliseconds while that is not 0; the latest result. */
export function usePoll(load, ms, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const tick = useRef(0);
  useEffect(() => {
    let stop = false;
    let timer;
    const ctl = new AbortController();
    const run = async () => {
      // A hidden tab reads nothing; shown again, it reads at once.
      await untilShown(ctl.signal);
      if (stop) return;
      const mine = ++tick.current;
      try {
        const data = await load(ctl.signal);
        if (!stop && mine === tick.current) setState({ data, error: null, loading: false });
        if (!stop && ms(data)) timer = setTimeout(run, ms(data));
      } catch (error) {
        if (stop || error.name === 'AbortError') return;
        setState((s) => ({ ...s, error, loading: false }));
        if (worthRetrying(error)) timer = setTimeout(run, 5000);
      }
    };
    run();
    return () => {
      stop = true;
      ctl.abort();
      clearTimeout(timer);
    };
  }, deps);
  const reload = async () => {
    try {
      setState({ data: await load(), error: null, loading: false });
    } catch (error) {
      setState((s) => ({ ...s, error }));
    }
  };
  return { ...state, reload };
}

const pause = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

const hidden = () => document.visibilityState === 'hidden';

/** Resolves once the tab is shown (or `signal` aborts). */
const untilShown = (signal) =>
  new Promise((resolve) => {
    const done = () => {
      if (hidden() && !signal.aborted) return;
      document.removeEventListener('visibilitychange', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    document.addEventListener('visibilitychange', done);
    signal.addEventListener('abort', done);
    done();
  });

/**
 * `watch` while the tab is shown: a hidden tab gives up its held request, so that background
 * tabs do not take the browser's six connections to Ferry; shown again, it asks at once.
 */
async function watchWhileShown(path, etag, signal) {
  await untilShown(signal);
  const one = new AbortController();
  const stop = () => one.abort();
  const onHide = () => hidden() && stop();
  signal.addEventListener('abort', stop);
  document.addEventListener('visibilitychange', onHide);
  try {
    return await watch(path, { etag, signal: one.signal });
  } catch (err) {
    if (one.signal.aborted && !signal.aborted) return { changed: false, etag };
    throw err;
  } finally {
    signal.removeEventListener('abort', stop);
    document.removeEventListener('visibilitychange', onHide);
  }
}

/**
 * A GET kept current: answered at once, then held open as a conditional long-poll that Ferry
 * answers when what it asks for changes, while the tab is shown. `reload()` asks again now.
 */
export function useLive(path, deps = [path]) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    (async () => {
      let etag = null;
      while (!ctl.signal.aborted) {
        try {
          const r = await watchWhileShown(path, etag, ctl.signal);
          if (r.changed) {
            // No tag, or the one just held (a proxy in between that drops or rewrites it): the
            // next request could not wait, so it waits here instead of asking again at once.
            if (!r.etag || r.etag === etag) await pause(2000, ctl.signal);
            etag = r.etag;
            setState({ data: r.data, error: null, loading: false });
          }
        } catch (error) {
          if (ctl.signal.aborted) return;
          setState((s) => ({ ...s, error, loading: false }));
          if (!worthRetrying(error)) return;
          await pause(5000, ctl.signal);
        }
      }
    })();
    return () => ctl.abort();
  }, [...deps, round]);
  return { ...state, reload: () => setRound((n) => n + 1) };
}

/** A button that runs an async action, disabled while it runs, showing its error. */
export function Action({ label, run, confirm: ask, kind = '', ...rest }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const click = async () => {
    if (ask && !window.confirm(ask)) return;
    setBusy(true);
    setError(null);
    try {
      await run();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="action"
    ><button class=${kind} disabled=${busy} onClick=${click} ...${rest}>${busy ? '…' : label}</button>${
      error ? html`<span class="error">${error.message}</span>` : null
    }</span
  >`;
}

export const Empty = ({ children }) => html`<p class="empty">${children}</p>`;

/**
 * One page of a list: its error, `empty` when it has no items, else a table with these headings
 * and `row` of each item; with `pages` ([after, setAfter] of usePages), the Newer/Older buttons.
 */
export function Listing({ id, list, items = list.data?.data ?? [], empty, headings, row, pages }) {
  return html`<${ErrorNote} error=${list.error} /> ${list.data && !items.length ? html`<${Empty}>${empty}<//>` : null}
    ${
      items.length
        ? html`<table class="list" id=${id}>
            <thead>
              <tr>
                ${headings.map((h) => html`<th>${h}</th>`)}
              </tr>
            </thead>
            <tbody>
              ${items.map(row)}
            </tbody>
          </table>`
        : null
    }
    ${pages ? html`<${Pager} list=${list} pages=${pages} />` : null}`;
}

function Pager({ list, pages: [after, setAfter] }) {
  return html`<div class="pager">
    ${after.length ? html`<button onClick=${() => setAfter(after.slice(0, -1))}>Newer</button>` : null}
    ${list.data?.has_more ? html`<button onClick=${() => setAfter([...after, list.data.last_id])}>Older</button>` : null}
  </div>`;
}

/** Whose object it is, on the admin key's lists (which hold every tenant's). */
export const Owner = ({ of }) => (of.tenant ? html`<div class="meta owner">tenant ${of.tenant}</div>` : null);

/** One row of an object's table of properties. */
export const prop = (name, value) =>
  html`<tr>
    <th>${name}</th>
    <td>${value}</td>
  </tr>`;

/** The cancel button of an object that has not ended: POSTs to `path`, then `done()` (a reload). */
export const CancelButton = ({ id, label, confirm, path, done }) =>
  html`<${Action}
    id=${id}
    kind="danger"
    label=${label}
    confirm=${confirm}
    run=${async () => (await api(path, { method: 'POST' }), done())}
  />`;

/** A page of a module loaded when first shown (the overview and the usage charts bring uPlot): `load()` answers the component. */
export function Lazy({ load }) {
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    load().then((c) => setPage(() => c), setError);
  }, []);
  return page ? html`<${page} />` : html`<${ErrorNote} error=${error} />`;
}
