/**
 * cost: what the cheaper paths through Gemini save, read from Ferry's own usage ledger, against the
 * plain path measured in the same run, under production conditions (a model latency of seconds, a
 * requests-per-minute quota, several worker processes):
 *   A. reference: a batch of questions about one 200-page PDF, standard tier, no context caching;
 *   B. the same batch with automatic context caching (target: input cost, storage included, ≤ 0.3 of A);
 *   C. the same batch as `execution: "flex"` with a share of Flex calls shed (target: cost 0.5 of A,
 *      every line answered once).
 * Each run also checks the ledger against what the emulator billed, token for token.
 *
 *   BENCH_COST_LINES            lines per batch (default 300)
 *   BENCH_COST_WORKERS          worker processes (default 2)
 *   BENCH_COST_LATENCY_MEDIAN_MS / _P99_MS   the model's lognormal service time (default 1500 / 5000)
 *   BENCH_COST_RPM              the emulator's requests-per-minute quota per model (default 1200)
 *   BENCH_COST_FLEX_SHED        share of Flex calls shed in run C (default 0.3)
 *   BENCH_RUNTIME               how Ferry's processes run (see bench/lib.ts)
 */
import OpenAI, { toFile } from 'openai';
import { pdf, questionsAbout } from '../test/document-questions.js';
import { envInt, fmtMs, httpRequest, now, round, startStack, verdict, waitFor, type Section, type Stack } from './lib.js';

const MODEL = 'gemini-2.5-flash';
const CACHE_RATIO_TARGET = 0.3;
const FLEX_RATIO_TARGET = 0.5;

interface Run {
  name: string;
  ms: number;
  lines: number;
  answered: number;
  /** USD from the ledger: input (with cached input), output, storage. */
  cost: { input: number; output: number; storage: number; total: number };
  ledger: { requests: number; input: number; cached: number; output: number };
  billed: { requests: number; inputTokens: number; cachedTokens: number; outputTokens: number };
}

async function json(url: string, key?: string): Promise<any> {
  const res = await httpRequest(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${res.text().slice(0, 200)}`);
  return JSON.parse(res.text());
}

/** The tenant's ledger since `since`, summed: tokens from the usage report, USD by line item from the costs report. */
async function ledger(stack: Stack, since: number) {
  const base = `${stack.apiUrl}/v1/organization`;
  const usage = await json(`${base}/usage/completions?start_time=${since}&bucket_width=1d`, stack.apiKey);
  const rows = usage.data.flatMap((b: any) => b.results);
  const costs = await json(`${base}/costs?start_time=${since}&group_by=line_item`, stack.apiKey);
  const items = costs.data.flatMap((b: any) => b.results) as Array<{ line_item: string; amount: { value: number } }>;
  const part = (re: RegExp) => items.filter((i) => re.test(i.line_item)).reduce((s, i) => s + i.amount.value, 0);
  const cost = { input: part(/, (cached )?input/), output: part(/, output/), storage: part(/, cache storage/), total: 0 };
  cost.total = cost.input + cost.output + cost.storage;
  const sum = (f: string) => rows.reduce((s: number, r: any) => s + r[f], 0);
  return {
    cost,
    ledger: {
      requests: sum('num_model_requests'),
      input: sum('input_tokens'),
      cached: sum('input_cached_tokens'),
      output: sum('output_tokens'),
    },
  };
}

async function runBatch(stack: Stack, name: string, lines: number, execution: 'direct' | 'flex'): Promise<Run> {
  const client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 2 });
  await httpRequest(`${stack.emulatorUrl}/_emulator/reset`, { method: 'POST' });
  // The ledger keeps every run of the stack: this run's share is what it added.
  const since = Math.floor(Date.now() / 1000 / 86400) * 86400 - 86400;
  const before = await ledger(stack, since);
  const doc = await client.files.create({ file: await toFile(pdf(200), 'manual.pdf', { type: 'application/pdf' }), purpose: 'user_data' });
  await waitFor('the document to be processed', async () => (await client.files.retrieve(doc.id)).status === 'processed', {
    timeoutMs: 60_000,
  });
  const jsonl = questionsAbout(doc.id, lines, MODEL)
    .map((l) => JSON.stringify(l))
    .join('\n');
  const input = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'cost.jsonl'), purpose: 'batch' });
  const t0 = now();
  const created = await client.batches.create({
    input_file_id: input.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    ...({ execution } as object),
  } as never);
  const done = await waitFor(
    `batch ${name} to end`,
    async () => {
      const b = await client.batches.retrieve(created.id);
      return ['completed', 'failed', 'expired', 'cancelled'].includes(b.status) ? b : null;
    },
    { timeoutMs: 30 * 60_000, intervalMs: 500 },
  );
  const ms = now() - t0;
  const answered = done.request_counts?.completed ?? 0;
  const billing = await json(`${stack.emulatorUrl}/_emulator/billing`);
  const after = await ledger(stack, since);
  const cost = Object.fromEntries(
    Object.entries(after.cost).map(([k, v]) => [k, v - before.cost[k as keyof typeof before.cost]]),
  ) as Run['cost'];
  const l = Object.fromEntries(
    Object.entries(after.ledger).map(([k, v]) => [k, v - before.ledger[k as keyof typeof before.ledger]]),
  ) as Run['ledger'];
  const { requests, inputTokens, cachedTokens, outputTokens } = billing.totals;
  return { name, ms, lines, answered, cost, ledger: l, billed: { requests, inputTokens, cachedTokens, outputTokens } };
}

const section: Section = {
  name: 'cost',
  title: 'the cost of one batch of questions about a 200-page PDF: plain, with context caching, at the Flex tier (ledger ratios, same run)',
  async run({ scope, log }) {
    const lines = envInt('BENCH_COST_LINES', 300);
    const workers = envInt('BENCH_COST_WORKERS', 2);
    const median = envInt('BENCH_COST_LATENCY_MEDIAN_MS', 1500);
    const p99 = envInt('BENCH_COST_LATENCY_P99_MS', 5000);
    const rpm = envInt('BENCH_COST_RPM', 1200);
    const shed = Number(process.env.BENCH_COST_FLEX_SHED ?? '0.3');
    log(
      `conditions: ${lines} lines, ${workers} worker processes, model latency lognormal median ${median} ms / p99 ${p99} ms, quota ${rpm} rpm`,
    );
    const emulatorEnv = {
      FERRY_EMULATOR_LATENCY_MEDIAN_MS: String(median),
      FERRY_EMULATOR_LATENCY_P99_MS: String(p99),
      FERRY_EMULATOR_RPM: String(rpm),
    };
    const runs: Run[] = [];
    const plain = await startStack(scope, { workers, emulatorEnv, env: { FERRY_CONTEXT_CACHING: 'off' } });
    runs.push(await runBatch(plain, 'A plain', lines, 'direct'));
    await httpRequest(`${plain.emulatorUrl}/_emulator/tiers`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ flex: { shedProbability: shed, shedStatus: 503 } }),
    });
    runs.push(await runBatch(plain, 'C flex', lines, 'flex'));
    const cached = await startStack(scope, { workers, emulatorEnv });
    runs.push(await runBatch(cached, 'B cached', lines, 'direct'));
    const [a, c, b] = runs;
    for (const r of runs) {
      const equal =
        r.ledger.requests === r.billed.requests &&
        r.ledger.input === r.billed.inputTokens &&
        r.ledger.output === r.billed.outputTokens &&
        r.ledger.cached === r.billed.cachedTokens;
      log(
        `${r.name.padEnd(9)} ${fmtMs(r.ms).padStart(8)}  answered ${r.answered}/${r.lines}  cost $${r.cost.total.toFixed(4)} (input $${r.cost.input.toFixed(4)}, output $${r.cost.output.toFixed(4)}, storage $${r.cost.storage.toFixed(4)})  ledger = emulator's billing: ${equal ? 'yes' : `NO (${JSON.stringify(r.ledger)} vs ${JSON.stringify(r.billed)})`}`,
      );
    }
    const cacheRatio = (b.cost.input + b.cost.storage) / a.cost.input;
    const flexRatio = c.cost.total / a.cost.total;
    log(
      `cached input (storage included) / plain input  ${cacheRatio.toFixed(3)}   target ≤ ${CACHE_RATIO_TARGET}   ${verdict(cacheRatio <= CACHE_RATIO_TARGET)}`,
    );
    log(
      `flex / plain (total cost)                      ${flexRatio.toFixed(3)}   target ${FLEX_RATIO_TARGET}   ${verdict(Math.abs(flexRatio - FLEX_RATIO_TARGET) < 0.01 && c.answered === lines)}`,
    );
    log(`time: cached / plain ${(b.ms / a.ms).toFixed(2)}, flex / plain ${(c.ms / a.ms).toFixed(2)} (flex waits for the calls it sheds)`);
    return {
      conditions: { lines, workers, latency_median_ms: median, latency_p99_ms: p99, rpm, flex_shed: shed },
      runs: runs.map((r) => ({ ...r, ms: round(r.ms) })),
      ratios: { cached_input_vs_plain: round(cacheRatio, 3), flex_vs_plain: round(flexRatio, 3) },
      targets: {
        cached: verdict(cacheRatio <= CACHE_RATIO_TARGET),
        flex: verdict(Math.abs(flexRatio - FLEX_RATIO_TARGET) < 0.01 && c.answered === lines),
      },
    };
  },
};

export default section;
