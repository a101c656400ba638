import { useState } from 'preact/hooks';
import { api, downloadFile, qs } from './api.js';
import { Action, Listing, fmtBytes, fmtTime, html, Owner, Status, useLive } from './ui.js';

const PURPOSES = ['', 'user_data', 'batch', 'batch_output', 'assistants', 'vision'];

export function Files() {
  const [purpose, setPurpose] = useState('');
  const [after, setAfter] = useState([]);
  const cursor = after[after.length - 1];
  const list = useLive(`/v1/files${qs({ limit: 50, purpose, after: cursor }, { scoped: true })}`);
  return html`<section>
    <h2>Files</h2>
    <div class="toolbar">
      <label
        >Purpose
        <select value=${purpose} onChange=${(e) => (setAfter([]), setPurpose(e.currentTarget.value))}>
          ${PURPOSES.map((p) => html`<option value=${p}>${p || 'any'}</option>`)}
        </select></label
      >
    </div>
    <${Listing}
      id="files"
      list=${list}
      empty="No files."
      headings=${['File', 'Name', 'Purpose', 'Status', 'Storage', 'Size', 'Created', 'Expires', '']}
      row=${(f) =>
        html`<tr key=${f.id} data-id=${f.id}>
          <td><code>${f.id}</code><${Owner} of=${f} /></td>
          <td class="msg">${f.filename}</td>
          <td>${f.purpose}</td>
          <td><${Status} s=${f.status} />${f.status_details ? html`<div class="meta">${f.status_details}</div>` : null}</td>
          <td>${f.storage ?? '—'}${f.provider_file ? html`<div class="meta">${f.provider_file}</div>` : null}</td>
          <td>${fmtBytes(f.bytes)}</td>
          <td>${fmtTime(f.created_at)}</td>
          <td>
            ${fmtTime(f.expires_at)}${f.provider_expires_at ? html`<div class="meta">Gemini copy: ${fmtTime(f.provider_expires_at)}</div>` : null}
            ${f.content_expires_at ? html`<div class="meta">bytes: ${fmtTime(f.content_expires_at)}</div>` : null}
          </td>
          <td class="nowrap">
            <${Action} label="Download" run=${() => downloadFile(f.id, f.filename || f.id)} />
            <${Action}
              kind="danger"
              label="Delete"
              confirm=${`Delete ${f.filename || f.id} everywhere?`}
              run=${async () => (await api(`/v1/files/${encodeURIComponent(f.id)}`, { method: 'DELETE' }), list.reload())}
            />
          </td>
        </tr>`}
      pages=${[after, setAfter]}
    />
  </section>`;
}
