import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, FINAL_BATCH, getTenant, qs } from './api.js';
import { ErrorNote, fmtBytes, html, useLive, usePoll } from './ui.js';

const COLORS = ['#2463c7', '#2f9e62', '#c77d24', '#9b3fc7', '#c73f5b', '#3fb5c7'];

/** The series of a name (and optionally one subject), summed per bucket; null where none has a value. */
function sumOf(activity, name, pick = () => true) {
  const picked = activity.series.filter((s) => s.name === name && pick(s));
  return activity.buckets.map((_, i) => {
    const vs = picked.map((s) => s.values[i]).filter((v) => v !== null);
    return vs.length ? vs.reduce((a, v) => a + v, 0) : null;
  });
}

const perSecond = (values, width) => values.map((v) => (v === null ? null : v / width));

/** The charts of the last hour: each is a title, its series (label, values) and how its values read. */
function charts(a) {
  const w = a.bucket_width_seconds;
  const models = [...new Set(a.series.filter((s) => s.name === 'calls' || s.name === 'admitted_rate').map((s) => s.model))].slice(0, 3);
  const queues = [...new Set(a.series.filter((s) => s.queue).map((s) => s.queue))].filter(
    (q) => q === 'generate' || a.series.some((s) => s.queue === q && s.values.some((v) => v)),
  );
  return [
    {
      id: 'work',
      title: 'Completions and batch lines per second',
      series: [
        ['completions', perSecond(sumOf(a, 'completions'), w)],
        ['batch lines', perSecond(sumOf(a, 'lines'), w)],
      ],
    },
    {
      id: 'quota',
      title: 'Gemini calls per second, against the admitted rate',
      series: models.flatMap((m) => [
        [
          `${m} calls`,
          perSecond(
            sumOf(a, 'calls', (s) => s.model === m),
            w,
          ),
        ],
        [`${m} admitted`, sumOf(a, 'admitted_rate', (s) => s.model === m), { dash: [6, 4] }],
      ]),
    },
    {
      id: 'refusals',
      title: `Quota 429s and retries (per ${w} s)`,
      series: [
        ['429s', sumOf(a, 'quota_refusals')],
        ['retries', sumOf(a, 'retries')],
      ],
    },
    {
      id: 'queues',
      title: 'Queue depths and work running',
      series: queues.flatMap((q) => [
        [`${q} waiting`, sumOf(a, 'queued', (s) => s.queue === q)],
        [`${q} running`, sumOf(a, 'running', (s) => s.queue === q), { dash: [6, 4] }],
      ]),
    },
    {
      id: 'uploads',
      title: 'Upload bytes per second (to Gemini or Azure)',
      series: [['bytes/s', perSecond(sumOf(a, 'upload_bytes'), w)]],
      bytes: true,
    },
  ];
}

const fmtValue = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(2));
const fmtMoney = (v) => `$${v.toFixed(v && v < 0.01 ? 4 : 2)}`;

/** One chart over time; its `data-points` says how many of its points are above zero. */
function Chart({ id, title, x, series, bytes = false, money = false }) {
  const box = useRef(null);
  const plot = useRef(null);
  const points = series.reduce((n, [, values]) => n + values.filter((v) => v > 0).length, 0);
  useEffect(() => {
    const width = Math.max(300, Math.min(box.current.clientWidth - 16, 560));
    const format = bytes ? fmtBytes : money ? fmtMoney : fmtValue;
    plot.current = new uPlot(
      {
        title,
        width,
        height: 200,
        scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max, 1)] } },
        series: [
          {},
          ...series.map(([label, , opts = {}], i) => ({
            label,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            spanGaps: true,
            points: { show: false },
            value: (_u, v) => (v == null ? '—' : format(v)),
            ...opts,
          })),
        ],
        axes: [{}, { size: bytes || money ? 70 : 50, values: (_u, ticks) => ticks.map(format) }],
      },
      [x, ...series.map(([, values]) => values)],
      box.current,
    );
    return () => plot.current.destroy();
    // A new set of series (a model or queue appearing) draws a new chart; new values only redraw it.
  }, [series.map(([label]) => label).join('|')]);
  useEffect(() => {
    plot.current?.setData([x, ...series.map(([, values]) => values)]);
  }, [x, series]);
  return html`<div class="chart" id=${`chart-${id}`} data-points=${points} ref=${box}></div>`;
}

function Cards({ batches, dead }) {
  const running = batches.data.filter((b) => !FINAL_BATCH.includes(b.status));
  const lines = running.reduce(
    (a, b) => ({
      done: a.done + (b.request_counts?.completed ?? 0) + (b.request_counts?.failed ?? 0),
      total: a.total + (b.request_counts?.total ?? 0),
    }),
    { done: 0, total: 0 },
  );
  const count = (s) => batches.data.filter((b) => b.status === s).length;
  const cards = [
    ['Batches running', running.length, running.length ? `${lines.done} / ${lines.total} lines` : ''],
    ['Batches completed', count('completed'), batches.has_more ? 'of the latest 100' : ''],
    ['Batches failed or expired', count('failed') + count('expired'), ''],
    ['Dead letters', `${dead.data.length}${dead.has_more ? '+' : ''}`, 'webhook deliveries that gave up'],
  ];
  return html`<div class="cards" id="overview">
    ${cards.map(
      ([name, n, note]) =>
        html`<div class="card">
          <div class="n">${n}</div>
          <div>${name}</div>
          <div class="meta">${note}</div>
        </div>`,
    )}
  </div>`;
}

const WINDOWS = [
  [600, 'last 10 minutes'],
  [3600, 'last hour'],
  [7200, 'last 2 hours'],
];

export function Overview() {
  const [seconds, setSeconds] = useState(3600);
  const activity = useLive(`/v1/activity${qs({ seconds }, { scoped: true })}`);
  // The cards are read every 5 s: one long-poll per page leaves the browser's other connections to Ferry free.
  const cards = usePoll(
    async (signal) => {
      const [batches, dead] = await Promise.all([
        api(`/v1/batches${qs({ limit: 100 }, { scoped: true })}`, { signal }),
        api(`/v1/webhook_deliveries${qs({ status: 'failed', limit: 100 }, { scoped: true })}`, { signal }),
      ]);
      return { batches, dead };
    },
    () => 5000,
  );
  const a = activity.data;
  // Drawn anew only when the activity changed, not when the cards did.
  const drawn = useMemo(() => (a ? charts(a) : []), [a]);
  return html`<section>
    <h2>Overview</h2>
    <${ErrorNote} error=${activity.error ?? cards.error} />
    ${cards.data ? html`<${Cards} batches=${cards.data.batches} dead=${cards.data.dead} />` : null}
    <h3>
      <select id="activity-window" value=${seconds} onChange=${(e) => setSeconds(Number(e.currentTarget.value))}>
        ${WINDOWS.map(([s, name]) => html`<option value=${s}>${name}</option>`)}
      </select>
    </h3>
    ${
      a
        ? html`<div class="charts">${drawn.map((c) => html`<${Chart} key=${c.id} x=${a.buckets} ...${c} />`)}</div>`
        : html`<p class="empty">Loading…</p>`
    }
  </section>`;
}

/** A usage report's buckets: their starts, and the sum of `value` over each bucket's results. */
async function reportSeries(path, params, value, signal) {
  const r = await api(`${path}${qs({ ...params, project_ids: getTenant() || undefined })}`, { signal });
  return [r.data.map((b) => b.start_time), r.data.map((b) => b.results.reduce((a, x) => a + value(x), 0))];
}

/** The usage page's charts, from the usage ledger: requests per hour over a day, cost per day over 30. */
export function UsageCharts() {
  const r = usePoll(
    async (signal) => {
      const now = Math.floor(Date.now() / 1000);
      const [requests, cost] = await Promise.all([
        reportSeries(
          '/v1/organization/usage/completions',
          { start_time: Math.floor(now / 3600 - 23) * 3600, bucket_width: '1h', limit: 24 },
          (x) => x.num_model_requests ?? 0,
          signal,
        ),
        reportSeries(
          '/v1/organization/costs',
          { start_time: Math.floor(now / 86400 - 29) * 86400, bucket_width: '1d', limit: 30 },
          (x) => x.amount?.value ?? 0,
          signal,
        ),
      ]);
      return { requests, cost };
    },
    () => 60000,
  );
  if (!r.data) return html`<${ErrorNote} error=${r.error} />`;
  return html`<div class="charts">
    <${Chart} id="requests" title="Requests per hour, last 24 h" x=${r.data.requests[0]} series=${[['requests', r.data.requests[1]]]} />
    <${Chart} id="cost" title="Cost per day, last 30 days (USD)" x=${r.data.cost[0]} series=${[['cost', r.data.cost[1]]]} money />
  </div>`;
}
