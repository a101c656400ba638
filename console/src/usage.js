import { useState } from 'preact/hooks';
import { api, getTenant, qs, saveBlob } from './api.js';
import { Empty, ErrorNote, fmtNum, html, Lazy, usePoll } from './ui.js';

/** Every bucket of a report from `start`, following `next_page`. */
async function buckets(path, params, signal) {
  const out = [];
  let page;
  do {
    const r = await api(`${path}${qs({ ...params, page })}`, { signal });
    out.push(...r.data);
    page = r.has_more ? r.next_page : null;
  } while (page);
  return out;
}

/** A cost line item's model and tier: `<model>, input (flex)`; no tier named is the default one. */
function lineItemOf(item) {
  const [model, rest = ''] = (item ?? '').split(', ');
  return { model, tier: /\((\w+)\)$/.exec(rest)?.[1] ?? 'default' };
}

/**
 * One row per tenant, model and tier: requests, tokens (usage/completions) and cost (costs, by
 * line item). The admin's tenant filter narrows both reports (`project_ids`).
 */
export async function usageByModel(days, signal) {
  const start_time = Math.floor(Date.now() / 1000 / 86400 - days + 1) * 86400;
  const base = { start_time, bucket_width: '1d', limit: Math.min(days, 31), project_ids: getTenant() || undefined };
  const [usage, costs] = await Promise.all([
    buckets('/v1/organization/usage/completions', { ...base, group_by: ['model', 'project_id', 'service_tier'] }, signal),
    buckets('/v1/organization/costs', { ...base, group_by: ['line_item', 'project_id'] }, signal),
  ]);
  const rows = new Map();
  const row = (tenant, model, tier) => {
    const k = `${tenant}\u0000${model}\u0000${tier}`;
    if (!rows.has(k)) rows.set(k, { tenant, model, tier, requests: 0, input: 0, cached: 0, output: 0, cost: 0 });
    return rows.get(k);
  };
  for (const b of usage)
    for (const r of b.results) {
      const x = row(r.project_id ?? '', r.model ?? '', r.service_tier ?? 'default');
      x.requests += r.num_model_requests ?? 0;
      x.input += r.input_tokens ?? 0;
      x.cached += r.input_cached_tokens ?? 0;
      x.output += r.output_tokens ?? 0;
    }
  for (const b of costs)
    for (const r of b.results) {
      const { model, tier } = lineItemOf(r.line_item);
      row(r.project_id ?? '', model, tier).cost += r.amount?.value ?? 0;
    }
  return [...rows.values()].sort(
    (a, b) => a.tenant.localeCompare(b.tenant) || b.cost - a.cost || a.model.localeCompare(b.model) || a.tier.localeCompare(b.tier),
  );
}

const COLUMNS = ['tenant', 'model', 'service_tier', 'requests', 'input_tokens', 'cached_input_tokens', 'output_tokens', 'cost_usd'];
const cells = (r) => [r.tenant, r.model, r.tier, r.requests, r.input, r.cached, r.output, r.cost.toFixed(6)];
const csvCell = (v) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));

export function Usage() {
  const [days, setDays] = useState(7);
  const report = usePoll(
    (signal) => usageByModel(days, signal),
    () => 60000,
    [days],
  );
  const rows = report.data ?? [];
  const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
  const csv = () =>
    saveBlob(
      new Blob([[COLUMNS, ...rows.map(cells)].map((l) => l.map(csvCell).join(',')).join('\n') + '\n'], { type: 'text/csv' }),
      `ferry-usage-${days}d.csv`,
    );
  return html`<section>
    <h2>Usage and cost</h2>
    <div class="toolbar">
      <label
        >Period
        <select value=${days} onChange=${(e) => setDays(Number(e.currentTarget.value))}>
          <option value="1">today</option>
          <option value="7">7 days</option>
          <option value="30">30 days</option>
        </select></label
      >
      <button id="export-csv" disabled=${!rows.length} onClick=${csv}>Export CSV</button>
    </div>
    <${Lazy} load=${() => import('./overview.js').then((m) => m.UsageCharts)} />
    <${ErrorNote} error=${report.error} />
    ${report.data && !rows.length ? html`<${Empty}>No usage in this period.<//>` : null}
    ${
      rows.length
        ? html`<table class="list num" id="usage">
            <thead>
              <tr>
                <th>Tenant</th>
                <th>Model</th>
                <th>Tier</th>
                <th>Requests</th>
                <th>Input tokens</th>
                <th>Cached input</th>
                <th>Output tokens</th>
                <th>Cost (USD)</th>
              </tr>
            </thead>
            <tbody>
              ${rows.map(
                (r) =>
                  html`<tr key=${`${r.tenant} ${r.model} ${r.tier}`}>
                    <td>${r.tenant}</td>
                    <td>${r.model}</td>
                    <td>${r.tier}</td>
                    <td>${fmtNum(r.requests)}</td>
                    <td>${fmtNum(r.input)}</td>
                    <td>${fmtNum(r.cached)}</td>
                    <td>${fmtNum(r.output)}</td>
                    <td>${r.cost.toFixed(4)}</td>
                  </tr>`,
              )}
            </tbody>
            <tfoot>
              <tr>
                <th>Total</th>
                <th></th>
                <th></th>
                <th>${fmtNum(sum('requests'))}</th>
                <th>${fmtNum(sum('input'))}</th>
                <th>${fmtNum(sum('cached'))}</th>
                <th>${fmtNum(sum('output'))}</th>
                <th>${sum('cost').toFixed(4)}</th>
              </tr>
            </tfoot>
          </table>`
        : null
    }
  </section>`;
}
