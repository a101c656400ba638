import { useState } from 'preact/hooks';
import { FINAL_JOB, qs } from './api.js';
import { CancelButton, ErrorNote, Listing, fmtDur, fmtTime, html, Owner, prop, Status, useLive } from './ui.js';

const STATUSES = ['', 'queued', 'waiting_for_files', 'waiting_for_quota', 'running', 'succeeded', 'failed', 'cancelled'];
const TYPES = [
  ['', 'any'],
  ['chat.completion', 'chat completions'],
  ['response', 'responses'],
  ['embedding', 'embeddings'],
];

/** A response's id is its job's (`resp_X` for `job-X`). */
const responseIdOf = (jobId) => `resp_${jobId.slice('job-'.length)}`;

export function Jobs() {
  const [status, setStatus] = useState('');
  const [type, setType] = useState('');
  const [open, setOpen] = useState('');
  const [after, setAfter] = useState([]);
  const cursor = after[after.length - 1];
  const list = useLive(`/v1/jobs${qs({ limit: 50, status, type, after: cursor }, { scoped: true })}`);
  const filter = (set) => (e) => (setAfter([]), set(e.currentTarget.value));
  return html`<section>
    <h2>Jobs and responses</h2>
    <form class="toolbar" onSubmit=${(e) => (e.preventDefault(), open && (location.hash = `#/jobs/${open.trim()}`))}>
      <label
        >Type
        <select id="job-type" value=${type} onChange=${filter(setType)}>
          ${TYPES.map(([t, name]) => html`<option value=${t}>${name}</option>`)}
        </select></label
      >
      <label
        >Status
        <select value=${status} onChange=${filter(setStatus)}>
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
      headings=${['Job', 'Type', 'Status', 'Model', 'Batch', 'Created', 'Ran']}
      pages=${[after, setAfter]}
      row=${(j) =>
        html`<tr key=${j.id} data-id=${j.id}>
          <td>
            <a href=${`#/jobs/${j.id}`}>${j.id}</a
            ><${Owner} of=${j} />${j.type === 'response' ? html`<div class="meta">${responseIdOf(j.id)}</div>` : null}
          </td>
          <td>${j.type}</td>
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
  const j = useLive(`/v1/jobs/${encodeURIComponent(id)}`);
  const job = j.data;
  if (!job)
    return html`<section>
      <h2>Job ${id}</h2>
      <${ErrorNote} error=${j.error} />
    </section>`;
  return html`<section>
    <h2>
      ${job.type === 'response' ? 'Response' : 'Job'} <code>${job.type === 'response' ? responseIdOf(job.id) : job.id}</code>
      <${Status} s=${job.status} />
    </h2>
    <${ErrorNote} error=${j.error} />
    <div class="actions">
      ${
        !FINAL_JOB.includes(job.status)
          ? html`<${CancelButton}
              id="cancel-job"
              label="Cancel job"
              confirm="Cancel this job?"
              path=${`/v1/jobs/${encodeURIComponent(job.id)}/cancel`}
              done=${j.reload}
            />`
          : null
      }
    </div>
    <table class="props">
      ${prop('Type', job.type ?? '—')} ${prop('Model', job.model ?? '—')} ${prop('Attempts', job.attempts ?? 0)}
      ${job.file_ids?.length ? prop('Files', job.file_ids.join(', ')) : null}
      ${job.batch_id ? prop('Batch', html`<a href=${`#/batches/${job.batch_id}`}>${job.batch_id}</a> (${job.custom_id})`) : null}
      ${prop('Created', fmtTime(job.created_at))} ${prop('Started', fmtTime(job.started_at))} ${prop('Finished', fmtTime(job.finished_at))}
      ${prop('Waited', fmtDur(job.created_at, job.started_at))} ${prop('Ran', fmtDur(job.started_at, job.finished_at))}
      ${job.metadata && Object.keys(job.metadata).length ? prop('Metadata', JSON.stringify(job.metadata)) : null}
    </table>
    ${
      job.error
        ? html`<h3>Error</h3>
            <pre class="error">${JSON.stringify(job.error, null, 2)}</pre>`
        : null
    }
    ${job.request ? html`<${Request} request=${job.request} />` : null}
    ${
      job.result
        ? html`<h3>Answer</h3>
            ${answerText(job) ? html`<blockquote id="answer">${answerText(job)}</blockquote>` : null}
            <details>
              <summary>JSON</summary>
              <pre>${JSON.stringify(job.result, null, 2)}</pre>
            </details>`
        : null
    }
  </section>`;
}

/** What the answer says in words: a completion's message, a response's output text; embeddings have none. */
function answerText(job) {
  const r = job.result;
  if (r.choices) return r.choices[0]?.message?.content ?? null;
  if (r.output) {
    const texts = r.output.flatMap((o) => (o.content ?? []).filter((c) => c.type === 'output_text').map((c) => c.text));
    return texts.join('\n') || null;
  }
  return null;
}

/** Long strings (inline images, documents) are cut, so the page stays readable. */
const shortened = (request) =>
  JSON.stringify(request, (_k, v) => (typeof v === 'string' && v.length > 400 ? `${v.slice(0, 400)}… (${v.length} characters)` : v), 2);

/** The request as it was accepted: what was asked (the last user turn, or the input), then the whole body. */
function Request({ request }) {
  const asked = request.messages?.filter((m) => m.role === 'user').at(-1)?.content ?? request.input;
  const text = typeof asked === 'string' ? asked : null;
  return html`<h3>Request</h3>
    ${text ? html`<blockquote id="asked">${text.length > 2000 ? `${text.slice(0, 2000)}…` : text}</blockquote>` : null}
    <details>
      <summary>JSON</summary>
      <pre id="request">${shortened(request)}</pre>
    </details>`;
}
