import '../style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { clearKey, getKey, getTenant, identify, setKey, setTenant, whenUnauthorized } from './api.js';
import { Batch, Batches } from './batches.js';
import { Files } from './files.js';
import { Job, Jobs } from './jobs.js';
import { ErrorNote, html, Lazy } from './ui.js';
import { Usage } from './usage.js';
import { Webhooks } from './webhooks.js';

const PAGES = [
  ['overview', 'Overview'],
  ['batches', 'Batches'],
  ['jobs', 'Jobs and responses'],
  ['webhooks', 'Webhooks'],
  ['files', 'Files'],
  ['usage', 'Usage and cost'],
];

function route(hash) {
  const [page = 'batches', id] = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return { page, id };
}

function Login({ onIn }) {
  const [key, setValue] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const who = await identify(key.trim());
      setKey(key.trim());
      setTenant('');
      onIn(who);
    } catch (err) {
      setError(err.status === 401 ? new Error('Ferry does not know this key.') : err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <h1>Ferry console</h1>
    <form onSubmit=${submit}>
      <label for="key">API key</label>
      <input
        id="key"
        type="password"
        autocomplete="off"
        placeholder="sk-…"
        value=${key}
        onInput=${(e) => setValue(e.currentTarget.value)}
      />
      <button type="submit" disabled=${busy || !key.trim()}>Open</button>
      <p class="hint">
        A tenant's key shows its own work; the admin key every tenant's, with a tenant filter. The key stays in this tab only.
      </p>
      <${ErrorNote} error=${error} />
    </form>
  </main>`;
}

/** The admin's tenant filter: every tenant, or one. */
function TenantFilter({ who, tenant, onTenant }) {
  return html`<label class="who"
    >admin ·
    <select id="tenant-filter" value=${tenant} onChange=${(e) => onTenant(e.currentTarget.value)}>
      <option value="">all tenants</option>
      ${who.tenants.map((t) => html`<option value=${t}>${t}</option>`)}
    </select></label
  >`;
}

function Header({ who, page, onOut, tenant, onTenant }) {
  return html`<header>
    <strong>Ferry</strong>
    <nav>${PAGES.map(([p, name]) => html`<a href=${`#/${p}`} class=${p === page ? 'on' : ''}>${name}</a>`)}</nav>
    ${
      who.admin
        ? html`<${TenantFilter} who=${who} tenant=${tenant} onTenant=${onTenant} />`
        : html`<span id="tenant" class="who">tenant ${who.tenant}</span>`
    }
    <button onClick=${onOut}>Sign out</button>
  </header>`;
}

function App() {
  const [who, setWho] = useState(null);
  const [checking, setChecking] = useState(Boolean(getKey()));
  const [loc, setLoc] = useState(route(location.hash));
  const [tenant, setTenantState] = useState(getTenant());
  const onTenant = (t) => (setTenant(t), setTenantState(t));
  useEffect(() => {
    const on = () => setLoc(route(location.hash));
    addEventListener('hashchange', on);
    whenUnauthorized(() => (clearKey(), setWho(null)));
    const key = getKey();
    if (key)
      identify(key)
        .then(setWho, () => clearKey())
        .finally(() => setChecking(false));
    return () => removeEventListener('hashchange', on);
  }, []);
  if (checking) return html`<p class="empty">Checking the key…</p>`;
  if (!who) return html`<${Login} onIn=${(w) => (onTenant(''), setWho(w))} />`;
  const out = () => (clearKey(), onTenant(''), setWho(null));
  const { page, id } = loc;
  const body =
    page === 'batches' && id
      ? html`<${Batch} id=${id} key=${id} />`
      : page === 'jobs' && id
        ? html`<${Job} id=${id} key=${id} />`
        : page === 'jobs'
          ? html`<${Jobs} />`
          : page === 'webhooks'
            ? html`<${Webhooks} />`
            : page === 'files'
              ? html`<${Files} />`
              : page === 'usage'
                ? html`<${Usage} />`
                : page === 'overview'
                  ? html`<${Lazy} load=${() => import('./overview.js').then((m) => m.Overview)} />`
                  : html`<${Batches} />`;
  // A new tenant filter starts every page afresh (its lists, pages and live polls).
  return html`<${Header} who=${who} page=${page} onOut=${out} tenant=${tenant} onTenant=${onTenant} />
    <main key=${tenant}>${body}</main>`;
}

render(html`<${App} />`, document.getElementById('app'));
