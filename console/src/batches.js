import { useState } from 'preact/hooks';
import { downloadFile, FINAL_BATCH, jsonl, qs } from './api.js';
import { Action, CancelButton, ErrorNote, Listing, fmtDur, fmtTime, html, Owner, Progress, prop, Status, useLive, usePoll } from './ui.js';

/**
 * When a running batch should end at the pace of its lines so far (the time since it started, per
 * line ended, for every line); its end once ended.
 */
function expectedFinish(b) {
  const ended = b.completed_at ?? b.failed_at ?? b.cancelled_at ?? b.expired_at;
  if (ended) return fmtTime(ended);
  const { total = 0, completed = 0, failed = 0 } = b.request_counts ?? {};
  const done = completed + failed;
  if (!b.in_progress_at || !done || !total) return '—';
  const now = Date.now() / 1000;
  return `≈ ${fmtTime(b.in_progress_at + ((now - b.in_progress_at) * total) / done)}`;
}

/** A batch's steps with their times: created, in progress, finalizing, and how it ended. */
function Timeline({ batch }) {
  const steps = [
    ['created', batch.created_at],
    ['in progress', batch.in_progress_at],
    ['finalizing', batch.finalizing_at],
    ['cancelling', batch.cancelling_at],
    ['completed', batch.completed_at],
    ['failed', batch.failed_at],
    ['expired', batch.expired_at],
    ['cancelled', batch.cancelled_at],
  ].filter(([, t]) => t);
  return html`<ol class="timeline" id="timeline">
    ${steps.map(
      ([name, t], i) =>
        html`<li key=${name}>
          <strong>${name}</strong> ${fmtTime(t)}${i ? html`<span class="meta"> (+${fmtDur(steps[i - 1][1], t)})</span>` : null}
        </li>`,
    )}
  </ol>`;
}

export function Batches() {
  const [after, setAfter] = useState([]);
  const cursor = after[after.length - 1];
  const list = useLive(`/v1/batches${qs({ limit: 25, after: cursor }, { scoped: true })}`);
  return html`<section>
    <h2>Batches</h2>
    <${Listing}
      id="batches"
      list=${list}
      empty="No batches yet for this key."
      headings=${['Batch', 'Status', 'Execution', 'Progress', 'Expected finish', 'Endpoint', 'Created']}
      row=${(b) =>
        html`<tr key=${b.id} data-id=${b.id}>
          <td>
            <a href=${`#/batches/${b.id}`}>${b.id}</a><${Owner} of=${b} />${
              b.metadata && Object.keys(b.metadata).length
                ? html`<div class="meta">
                    ${Object.entries(b.metadata)
                      .map(([k, v]) => `${k}=${v}`)
                      .join(' ')}
                  </div>`
                : null
            }
          </td>
          <td><${Status} s=${b.status} /></td>
          <td>${b.execution ?? 'direct'}</td>
          <td><${Progress} counts=${b.request_counts} /></td>
          <td>${expectedFinish(b)}</td>
          <td>${b.endpoint}</td>
          <td>${fmtTime(b.created_at)}</td>
        </tr>`}
      pages=${[after, setAfter]}
    />
  </section>`;
}

function FailedLines({ fileId }) {
  const lines = usePoll(
    () => jsonl(fileId),
    () => 0,
    [fileId],
  );
  const [open, setOpen] = useState(null);
  if (!lines.data && !lines.error) return html`<p>Reading the error file…</p>`;
  return html`<${Listing}
    id="failed-lines"
    list=${lines}
    items=${lines.data ?? []}
    empty="The error file holds no lines."
    headings=${['custom_id', 'Code', 'Message']}
    row=${(l, i) =>
      html`<tr key=${i} class="clickable" onClick=${() => setOpen(open === i ? null : i)}>
          <td><button class="link">${l.custom_id ?? `line ${i + 1}`}</button></td>
          <td><code>${l.error?.code ?? '—'}</code></td>
          <td class="msg">${l.error?.message ?? l.unparsed ?? ''}</td>
        </tr>
        ${
          open === i
            ? html`<tr class="detail">
                <td colspan="3"><pre>${JSON.stringify(l, null, 2)}</pre></td>
              </tr>`
            : null
        }`}
  />`;
}

export function Batch({ id }) {
  const b = useLive(`/v1/batches/${encodeURIComponent(id)}`);
  const batch = b.data;
  if (!batch)
    return html`<section>
      <h2>Batch ${id}</h2>
      <${ErrorNote} error=${b.error} />${b.loading ? html`<p>Loading…</p>` : null}
    </section>`;
  const final = FINAL_BATCH.includes(batch.status);
  return html`<section>
    <h2>Batch <code>${batch.id}</code> <${Status} s=${batch.status} /></h2>
    <${ErrorNote} error=${b.error} />
    <${Progress} counts=${batch.request_counts} />
    <${Timeline} batch=${batch} />
    <div class="actions">
      ${
        batch.output_file_id
          ? html`<${Action}
              id="download-output"
              label="Download output"
              run=${() => downloadFile(batch.output_file_id, `${batch.id}-output.jsonl`)}
            />`
          : null
      }
      ${
        batch.error_file_id
          ? html`<${Action}
              id="download-errors"
              label="Download errors"
              run=${() => downloadFile(batch.error_file_id, `${batch.id}-errors.jsonl`)}
            />`
          : null
      }
      ${
        !final && batch.status !== 'cancelling'
          ? html`<${CancelButton}
              id="cancel-batch"
              label="Cancel batch"
              confirm="Cancel this batch? Lines not done become batch_cancelled."
              path=${`/v1/batches/${encodeURIComponent(batch.id)}/cancel`}
              done=${b.reload}
            />`
          : null
      }
    </div>
    <table class="props">
      ${prop('Endpoint', batch.endpoint)} ${prop('Execution', batch.execution ?? 'direct')}
      ${batch.gemini_batches?.length ? prop('Gemini batches', batch.gemini_batches.map((g) => `${g.model}: ${g.state}`).join(', ')) : null}
      ${prop('Completion window', batch.completion_window)} ${prop('Created', fmtTime(batch.created_at))}
      ${prop(final ? 'Ended' : 'Expected finish', expectedFinish(batch))}
      ${prop('Duration', fmtDur(batch.created_at, batch.completed_at ?? batch.failed_at ?? batch.cancelled_at ?? batch.expired_at))}
      ${prop('Expires', fmtTime(batch.expires_at))} ${prop('Input file', batch.input_file_id)}
      ${prop('Output file', batch.output_file_id ?? '—')} ${prop('Error file', batch.error_file_id ?? '—')}
      ${batch.usage ? prop('Tokens', `${batch.usage.input_tokens ?? 0} in, ${batch.usage.output_tokens ?? 0} out`) : null}
      ${batch.metadata ? prop('Metadata', JSON.stringify(batch.metadata)) : null}
    </table>
    ${
      batch.errors?.data?.length
        ? html`<h3>Validation errors</h3>
            <${Listing}
              list=${{ data: batch.errors }}
              headings=${['Line', 'Code', 'Message']}
              row=${(e, i) =>
                html`<tr key=${i}>
                  <td>${e.line ?? '—'}</td>
                  <td><code>${e.code}</code></td>
                  <td>${e.message}</td>
                </tr>`}
            />`
        : null
    }
    ${
      batch.error_file_id
        ? html`<h3>Failed lines</h3>
            <${FailedLines} fileId=${batch.error_file_id} />`
        : null
    }
  </section>`;
}
