import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { api, FINAL_BATCH, qs } from './api.js';
import { ErrorNote, html, usePoll } from './ui.js';

/** The buckets of a report, as x (bucket starts) and y (the sum of `value` over each bucket's results). */
async function series(path, params, value, signal) {
  const r = await api(`${path}${qs(params)}`, { signal });
  return [r.data.map((b) => b.start_time), r.data.map((b) => b.results.reduce((a, x) => a + value(x), 0))];
}

async function overview(signal) {
  const now = Math.floor(Date.now() / 1000);
  const [batches, dead, requests, cost] = await Promise.all([
    api('/v1/batches?limit=100', { signal }),
    api('/v1/webhook_deliveries?status=failed&limit=100', { signal }),
    series(
      '/v1/organization/usage/completions',
      { start_time: Math.floor(now / 3600 - 23) * 3600, bucket_width: '1h', limit: 24 },
      (x) => x.num_model_requests ?? 0,
      signal,
    ),
    series(
      '/v1/organization/costs',
      { start_time: Math.floor(now / 86400 - 29) * 86400, bucket_width: '1d', limit: 30 },
      (x) => x.amount?.value ?? 0,
      signal,
    ),
  ]);
  const running = batches.data.filter((b) => !FINAL_BATCH.includes(b.status));
  const lines = running.reduce(
    (a, b) => ({
      done: a.done + (b.request_counts?.completed ?? 0) + (b.request_counts?.failed ?? 0),
      total: a.total + (b.request_counts?.total ?? 0),
    }),
    { done: 0, total: 0 },
  );
  const count = (s) => batches.data.filter((b) => b.status === s).length;
  return {
    cards: [
      ['Batches running', running.length, running.length ? `${lines.done} / ${lines.total} lines` : ''],
      ['Batches completed', count('completed'), batches.has_more ? 'of the latest 100' : ''],
      ['Batches failed or expired', count('failed') + count('expired'), ''],
      ['Dead letters', `${dead.data.length}${dead.has_more ? '+' : ''}`, 'webhook deliveries that gave up'],
    ],
    requests,
    cost,
  };
}

function Chart({ title, data, label, color, money = false }) {
  const box = useRef(null);
  useEffect(() => {
    const width = Math.max(300, Math.min(box.current.clientWidth, 640));
    const plot = new uPlot(
      {
        title,
        width,
        height: 220,
        scales: { x: { time: true } },
        series: [
          {},
          {
            label,
            stroke: color,
            fill: `${color}22`,
            width: 2,
            value: (_u, v) => (v == null ? '—' : money ? `$${v.toFixed(4)}` : String(v)),
          },
        ],
        axes: [{}, { size: money ? 70 : 50, values: (_u, ticks) => ticks.map((v) => (money ? `$${v}` : String(v))) }],
      },
      data,
      box.current,
    );
    return () => plot.destroy();
  }, [data]);
  return html`<div class="chart" ref=${box}></div>`;
}

export function Overview() {
  const o = usePoll(
    (signal) => overview(signal),
    () => 10000,
  );
  return html`<section>
    <h2>Overview</h2>
    <${ErrorNote} error=${o.error} />
    ${
      o.data
        ? html`<div class="cards" id="overview">
              ${o.data.cards.map(
                ([name, n, note]) =>
                  html`<div class="card">
                    <div class="n">${n}</div>
                    <div>${name}</div>
                    <div class="meta">${note}</div>
                  </div>`,
              )}
            </div>
            <div class="charts">
              <${Chart} title="Requests per hour, last 24 h" label="requests" color="#2463c7" data=${o.data.requests} />
              <${Chart} title="Cost per day, last 30 days (USD)" label="cost" color="#2f9e62" money data=${o.data.cost} />
            </div>`
        : null
    }
  </section>`;
}
