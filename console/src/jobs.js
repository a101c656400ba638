import { useState } from 'preact/hooks';
import { api, FINAL_JOB, qs } from './api.js';
import { Action, ErrorNote, Listing, fmtDur, fmtTime, html, Status, usePoll } from './ui.js';

const STATUSES = ['', 'queued', 'waiting_for_files', 'waiting_for_quota', 'running', 'succeeded', 'failed', 'cancelled'];

export function Jobs() {
  const [status, setStatus] = useState('');
  const [open, setOpen] = useState('');
  const list = usePoll(
    (signal) => api(`/v1/jobs${qs({ limit: 50, status, order: 'desc' })}`, { signal }),
    (d) => (d.data.some((j) => !FINAL_JOB.includes(j.status)) ? 2000 : 10000),
    [status],
  );
  return html`<section>
    <h2>Jobs</h2>
    <form class="toolbar" onSubmit=${(e) => (e.preventDefault(), open && (location.hash = `#/jobs/${open.trim()}`))}>
      <label
        >Status
        <select value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
          ${STATUSES.map((s) => html`<option value=${s}>${s || 'any'}</option>`)}
        </select></label
      >
      <input placeholder="job-…" value=${open} onInput=${(e) => setOpen(e.currentTarget.value)} />
      <button type="submit">Open</button>
    </form>
    <${Listing}
      id="jobs"
      list=${list}
      empty="No jobs."
      headings=${['Job', 'Status', 'Model', 'Batch', 'Created', 'Ran']}
      row=${(j) =>
        html`<tr key=${j.id}>
          <td><a href=${`#/jobs/${j.id}`}>${j.id}</a></td>
          <td><${Status} s=${j.status} /></td>
          <td>${j.model ?? '—'}</td>
          <td>${j.batch_id ? html`<a href=${`#/batches/${j.batch_id}`}>${j.custom_id ?? j.batch_id}</a>` : '—'}</td>
          <td>${fmtTime(j.created_at)}</td>
          <td>${fmtDur(j.started_at, j.finished_at)}</td>
        </tr>`}
    />
  </section>`;
}

export function Job({ id }) {
  const j = usePoll(
    (signal) => api(`/v1/jobs/${encodeURIComponent(id)}`, { signal }),
    (d) => (FINAL_JOB.includes(d.status) ? 0 : 1000),
    [id],
  );
  const job = j.data;
  if (!job)
    return html`<section>
      <h2>Job ${id}</h2>
      <${ErrorNote} error=${j.error} />
    </section>`;
  const row = (k, v) =>
    html`<tr>
      <th>${k}</th>
      <td>${v}</td>
    </tr>`;
  return html`<section>
    <h2>Job <code>${job.id}</code> <${Status} s=${job.status} /></h2>
    <${ErrorNote} error=${j.error} />
    <div class="actions">
      ${
        !FINAL_JOB.includes(job.status)
          ? html`<${Action}
              id="cancel-job"
              kind="danger"
              label="Cancel job"
              confirm="Cancel this job?"
              run=${async () => (await api(`/v1/jobs/${encodeURIComponent(job.id)}/cancel`, { method: 'POST' }), j.reload())}
            />`
          : null
      }
    </div>
    <table class="props">
      ${row('Type', job.type ?? '—')} ${row('Model', job.model ?? '—')} ${row('Attempts', job.attempts ?? 0)}
      ${job.file_ids?.length ? row('Files', job.file_ids.join(', ')) : null}
      ${job.batch_id ? row('Batch', html`<a href=${`#/batches/${job.batch_id}`}>${job.batch_id}</a> (${job.custom_id})`) : null}
      ${row('Created', fmtTime(job.created_at))} ${row('Started', fmtTime(job.started_at))} ${row('Finished', fmtTime(job.finished_at))}
      ${row('Waited', fmtDur(job.created_at, job.started_at))} ${row('Ran', fmtDur(job.started_at, job.finished_at))}
      ${job.metadata && Object.keys(job.metadata).length ? row('Metadata', JSON.stringify(job.metadata)) : null}
    </table>
    ${
      job.error
        ? html`<h3>Error</h3>
            <pre class="error">${JSON.stringify(job.error, null, 2)}</pre>`
        : null
    }
    ${
      job.result
        ? html`<h3>Result</h3>
            ${job.result.choices?.[0]?.message?.content ? html`<blockquote>${job.result.choices[0].message.content}</blockquote>` : null}
            <details>
              <summary>JSON</summary>
              <pre>${JSON.stringify(job.result, null, 2)}</pre>
            </details>`
        : null
    }
  </section>`;
}
