import { useState } from 'preact/hooks';
import { api, qs } from './api.js';
import { Action, Listing, fmtTime, html, Owner, Status, useLive, usePoll } from './ui.js';

const Attempts = ({ list }) =>
  html`<span class="attempts"
    >${(list ?? []).map(
      (a, i) =>
        html`<span
          key=${i}
          class=${`attempt ${a.status_code >= 200 && a.status_code < 300 ? 'ok' : 'bad'}`}
          title=${`${fmtTime(a.at > 1e12 ? a.at / 1000 : a.at)} · ${a.duration_ms} ms${a.error ? ` · ${a.error}` : ''}`}
          >${a.status_code ?? 'err'}</span
        >`,
    )}</span
  >`;

export function Webhooks() {
  const [status, setStatus] = useState('');
  // A rotated secret is shown once, as the API answers it once: { endpoint id, secret }.
  const [rotated, setRotated] = useState(null);
  const rotate = async (e) => {
    const r = await api(`/v1/webhook_endpoints/${encodeURIComponent(e.id)}/rotate_secret`, { method: 'POST' });
    setRotated({ id: e.id, secret: r.secret });
  };
  const endpoints = usePoll(
    (signal) => api(`/v1/webhook_endpoints${qs({}, { scoped: true })}`, { signal }),
    () => 15000,
  );
  const deliveries = useLive(`/v1/webhook_deliveries${qs({ limit: 100, status }, { scoped: true })}`);
  const eps = endpoints.data?.data ?? [];
  return html`<section>
    <h2>Webhook endpoints</h2>
    ${
      rotated
        ? html`<p class="notice" id="rotated-secret">
            New signing secret of <code>${rotated.id}</code>: <code>${rotated.secret}</code>. Copy it now: it is not shown again. The old
            one still verifies for a while, so receivers can switch.
          </p>`
        : null
    }
    <${Listing}
      id="endpoints"
      list=${endpoints}
      items=${eps}
      empty="No endpoints."
      headings=${['Endpoint', 'URL', 'Events', 'Enabled', 'Created', '']}
      row=${(e) =>
        html`<tr key=${e.id}>
          <td><code>${e.id}</code><${Owner} of=${e} /></td>
          <td class="msg">${e.url}</td>
          <td>${e.events?.length ? e.events.join(', ') : 'all'}</td>
          <td>${e.enabled === false ? html`<${Status} s="disabled" />` : html`<${Status} s="enabled" />`}</td>
          <td>${fmtTime(e.created_at)}</td>
          <td>
            <${Action} class="rotate" label="Rotate secret" confirm=${`Rotate the signing secret of ${e.id}?`} run=${() => rotate(e)} />
            ${
              e.enabled === false
                ? html`<${Action}
                    label="Enable"
                    run=${async () => (await api(`/v1/webhook_endpoints/${e.id}`, { method: 'PATCH', body: { enabled: true } }), endpoints.reload())}
                  />`
                : null
            }
          </td>
        </tr>`}
    />
    <h2>Deliveries</h2>
    <div class="toolbar">
      <label
        >Status
        <select value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
          <option value="">any</option>
          <option value="pending">pending</option>
          <option value="succeeded">succeeded</option>
          <option value="failed">failed (dead letters)</option>
        </select></label
      >
    </div>
    <${Listing}
      id="deliveries"
      list=${deliveries}
      empty="No deliveries."
      headings=${['Delivery', 'Event', 'Status', 'Attempts', 'Endpoint', 'Created', '']}
      row=${(d) =>
        html`<tr key=${d.id} data-id=${d.id}>
          <td><code>${d.id}</code><${Owner} of=${d} /></td>
          <td>
            ${d.event_type}
            <div class="meta">${d.event_id}</div>
          </td>
          <td><${Status} s=${d.status} /></td>
          <td><${Attempts} list=${d.attempts} /></td>
          <td>${d.endpoint_id ?? html`<span class="msg">${d.url}</span>`}</td>
          <td>${fmtTime(d.created_at)}</td>
          <td>
            ${
              d.status === 'failed'
                ? html`<${Action}
                    class="replay"
                    label="Replay"
                    run=${async () => (await api(`/v1/webhook_deliveries/${encodeURIComponent(d.id)}/retry`, { method: 'POST' }), deliveries.reload())}
                  />`
                : null
            }
          </td>
        </tr>`}
    />
  </section>`;
}
