/**
 * `ferry submit <files or folders> --prompt "…"`: uploads every document,
 * builds a batch with one request per document (the prompt and the file),
 * waits with a live progress line, and writes the results as JSONL: the
 * batch's output and error lines merged in document order (custom_id is the
 * document's path), plus an error line for any document that could not be
 * uploaded. Exit code 0 when every document was answered, 3 when some were
 * not, 1 when the batch did not complete.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Readable, type Writable } from 'node:stream';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { findDocuments, uploadDocuments, type Uploaded } from './documents.js';
import { batchLine, ProgressLine } from './progress.js';
import { UsageError } from './target.js';

export interface SubmitOptions {
  paths: string[];
  prompt: string;
  model: string;
  storage?: string;
  out?: string;
  window: string;
  /** `direct` or `gemini_batch`; absent, the service's default (FERRY_BATCH_EXECUTION). */
  execution?: string;
  /** `chat` (chat completions, the default) or `responses`: the endpoint each document's request calls. */
  endpoint?: 'chat' | 'responses';
}

const ENDPOINT_PATHS = { chat: '/v1/chat/completions', responses: '/v1/responses' } as const;

const FINAL = ['completed', 'failed', 'expired', 'cancelled'];
const POLL_SECONDS = 2;

export function batchInput(docs: Uploaded[], prompt: string, model: string, endpoint: 'chat' | 'responses' = 'chat'): string {
  return docs
    .filter((d) => d.fileId)
    .map((d) =>
      JSON.stringify({
        custom_id: d.name,
        method: 'POST',
        url: ENDPOINT_PATHS[endpoint],
        body: requestBody(d.fileId!, prompt, model, endpoint),
      }),
    )
    .join('\n');
}

/** One document's request: the prompt and the file, as a chat message or a response's input. */
function requestBody(fileId: string, prompt: string, model: string, endpoint: 'chat' | 'responses') {
  if (endpoint === 'responses') {
    const content = [
      { type: 'input_text', text: prompt },
      { type: 'input_file', file_id: fileId },
    ];
    return { model, input: [{ role: 'user', content }] };
  }
  const content = [
    { type: 'text', text: prompt },
    { type: 'file', file: { file_id: fileId } },
  ];
  return { model, messages: [{ role: 'user', content }] };
}

export async function waitForBatch(client: OpenAI, id: string): Promise<Batch> {
  const progress = new ProgressLine();
  let b = await client.batches.retrieve(id);
  while (!FINAL.includes(b.status)) {
    progress.update(batchLine(b as never));
    b = await client.batches.retrieve(id, { query: { wait: POLL_SECONDS } });
  }
  progress.done(batchLine(b as never));
  return b;
}

/** The lines of a result file with the document index of each (files list lines in input order). */
async function* fileLines(client: OpenAI, fileId: string | null | undefined, index: Map<string, number>) {
  if (!fileId) return;
  const res = await client.files.content(fileId);
  const lines = createInterface({ input: Readable.fromWeb(res.body as never), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim()) yield { index: index.get(JSON.parse(line).custom_id) ?? Number.MAX_SAFE_INTEGER, line };
  }
}

async function* listed(items: Array<{ index: number; line: string }>) {
  yield* items;
}

/** Merges sources that are each in document order, streaming (a result file is never held whole). */
export async function writeMerged(sources: AsyncGenerator<{ index: number; line: string }>[], out: Writable): Promise<number> {
  const heads = await Promise.all(sources.map((s) => s.next()));
  let written = 0;
  for (;;) {
    let pick = -1;
    for (let k = 0; k < heads.length; k++) {
      const h = heads[k];
      if (!h.done && (pick < 0 || h.value.index < (heads[pick].value as { index: number }).index)) pick = k;
    }
    if (pick < 0) return written;
    if (!out.write(`${(heads[pick].value as { line: string }).line}\n`)) await once(out, 'drain');
    written++;
    heads[pick] = await sources[pick].next();
  }
}

/** The batch's tokens (OpenAI's `usage`) and what it cost (Ferry's `cost`, from the usage ledger). */
function spentLine(batch: Batch): string {
  const u = batch.usage;
  const cost = (batch as Batch & { cost?: { value: number } }).cost?.value;
  const tokens = u
    ? `${u.input_tokens} input tokens (${u.input_tokens_details?.cached_tokens ?? 0} cached), ${u.output_tokens} output`
    : 'no tokens reported';
  const usd = cost ?? 0;
  return `Used ${tokens}; cost $${usd < 0.01 ? usd.toFixed(6) : usd.toFixed(2)} at the configured prices.`;
}

export async function submit(client: OpenAI, opts: SubmitOptions): Promise<number> {
  const docs = await findDocuments(opts.paths);
  if (docs.length === 0) throw new UsageError('no documents found');
  const uploaded = await uploadDocuments(client, docs, { model: opts.model, storage: opts.storage });
  const ok = uploaded.filter((d) => d.fileId);
  const index = new Map(uploaded.map((d, i) => [d.name, i]));
  const notUploaded = uploaded.flatMap((d, i) =>
    d.error
      ? [
          {
            index: i,
            line: JSON.stringify({ id: null, custom_id: d.name, response: null, error: { code: 'upload_failed', message: d.error } }),
          },
        ]
      : [],
  );

  let batch: Batch | null = null;
  if (ok.length) {
    const input = await client.files.create({
      file: await toFile(Buffer.from(batchInput(uploaded, opts.prompt, opts.model, opts.endpoint)), 'ferry-submit.jsonl'),
      purpose: 'batch',
    });
    batch = await client.batches.create({
      input_file_id: input.id,
      endpoint: ENDPOINT_PATHS[opts.endpoint ?? 'chat'],
      completion_window: opts.window as '24h',
      metadata: { source: 'ferry submit', documents: String(ok.length) },
      // Ferry's field beside OpenAI's: the SDK passes it through as it is.
      ...(opts.execution ? { execution: opts.execution } : {}),
    } as Parameters<typeof client.batches.create>[0]);
    process.stderr.write(`Batch ${batch.id} created (${ok.length} documents); "npx ferry status ${batch.id}" shows it later.\n`);
    batch = await waitForBatch(client, batch.id);
    if (batch.status === 'failed') {
      for (const e of batch.errors?.data ?? []) process.stderr.write(`ferry: ${e.message}\n`);
    }
  }

  const out: Writable = opts.out ? createWriteStream(opts.out) : process.stdout;
  const written = await writeMerged(
    [fileLines(client, batch?.output_file_id, index), fileLines(client, batch?.error_file_id, index), listed(notUploaded)],
    out,
  );
  if (opts.out) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const counts = batch?.request_counts ?? { completed: 0, failed: 0, total: 0 };
  const failed = docs.length - counts.completed;
  process.stderr.write(
    `${counts.completed} of ${docs.length} documents answered, ${failed} not; ${written} result lines${opts.out ? ` in ${opts.out}` : ''}.\n`,
  );
  if (batch) process.stderr.write(`${spentLine(batch)}\n`);
  if (batch && batch.status !== 'completed') return 1;
  // Not one document taken: the service could not be reached, or refused them all (a wrong key).
  if (!batch) {
    process.stderr.write(`ferry submit: no document was accepted: ${uploaded.find((d) => d.error)?.error ?? 'no answer'}\n`);
    return 1;
  }
  return failed > 0 ? 3 : 0;
}
