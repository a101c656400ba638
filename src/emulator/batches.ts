/**
 * Gemini Batch Mode: models/{model}:batchGenerateContent, models/{model}:asyncBatchEmbedContent
 * (an embeddings batch, `@google/genai` batches.createEmbeddings) and the batches/{id} long-running
 * operations (get, list, cancel, delete) of both.
 *
 * A batch's state is computed from its timestamps whenever it is looked at, so no timer runs:
 * PENDING for pendingMs, RUNNING for runningMs (its lines answered evenly over that period), then
 * its end state. Due lines are answered at that look, once each, by the same fake model as
 * generateContent (or embedContent); they are not model calls (no quota, no latency, no model
 * stats). When a batch ends its output is built once: a generated JSONL responses file in the file
 * store for file input, inline responses for inline input, both in input order.
 *
 * Cancel and expiry end a batch where it stands: the lines answered by then are its output (none
 * answered: no output) and the rest stay unanswered. A FAILED batch has an error and no output.
 */

import { requireMethod } from './models.js';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import type { Batch, BatchKind, BatchLine, ForcedState, LineAnswer } from './batch-store.js';
import type { EmulatorContext, Handler, RequestInfo } from './context.js';
import { embedBatchInput, embedResponseJson } from './embeddings.js';
import { failedPrecondition, invalidArgument, notFound, toRpcError } from './errors.js';
import { fileIdOf, stateOf } from './file-store.js';
import { responseJson } from './generate.js';
import { readJson, sendJson } from './http.js';
import { buildReply, collectFacts } from './model.js';
import { decodePageToken, encodePageToken, parsePageSize } from './paging.js';

const API_TYPE = 'type.googleapis.com/google.ai.generativelanguage.v1beta';
/** Lines answered between two yields to the event loop: a large batch must not stall other requests. */
const LINES_PER_TURN = 500;
/** The responses file is held in pieces of about this size, never as one buffer of the whole output. */
const OUTPUT_PIECE_CHARS = 64 * 1024;
/** An Operation's error carries a google.rpc.Code (13 = INTERNAL), not an HTTP status. */
const RPC_INTERNAL = 13;

/** What tells the kinds apart: the method the model must offer, and the message names of the API. */
const KINDS: Record<BatchKind, { method: string; request: string; batch: string }> = {
  generate: { method: 'batchGenerateContent', request: 'BatchGenerateContentRequest', batch: 'GenerateContentBatch' },
  embed: { method: 'asyncBatchEmbedContent', request: 'AsyncBatchEmbedContentRequest', batch: 'EmbedContentBatch' },
};

type BatchState = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'EXPIRED';
const FINAL_STATES = new Set<BatchState>(['SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED']);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const rfc3339 = (ms: number) => new Date(ms).toISOString();

// ---- The schedule ----

function stateAt(batch: Batch, now: number): BatchState {
  if (batch.forced) return batch.forced.state;
  // A batch bound to expire never gets to run.
  if (now < batch.runningAt || (batch.endState === 'EXPIRED' && now < batch.endsAt)) return 'PENDING';
  if (now < batch.endsAt) return 'RUNNING';
  return batch.endState;
}

/** How many lines are answered by time `t`: none before running, all at the end, evenly in between. */
function dueAt(batch: Batch, t: number): number {
  // A batch bound to fail or expire answers nothing.
  if (batch.endState !== 'SUCCEEDED' || t < batch.runningAt) return 0;
  if (t >= batch.endsAt) return batch.requestCount;
  return Math.floor((batch.requestCount * (t - batch.runningAt)) / (batch.endsAt - batch.runningAt));
}

/** When the batch entered its current state. */
function changedAt(batch: Batch, state: BatchState): number {
  if (state === 'PENDING') return batch.createdAt;
  if (state === 'RUNNING') return batch.runningAt;
  return batch.forced?.at ?? batch.endsAt;
}

/** Brings the batch up to `now`: answers the due lines and, once it has ended, builds its output. */
function settle(ctx: EmulatorContext, batch: Batch, now: number): Promise<void> {
  const run = batch.work.then(() => advance(ctx, batch, now));
  batch.work = run.catch(() => {});
  return run;
}

async function advance(ctx: EmulatorContext, batch: Batch, now: number): Promise<void> {
  // A batch ended by a call is answered up to that moment, which may come after `now`.
  const target = () => dueAt(batch, batch.forced?.at ?? now);
  while (!batch.finished && !batch.gone && batch.answered < target()) {
    const stop = Math.min(target(), batch.answered + LINES_PER_TURN);
    while (batch.answered < stop && !batch.gone) {
      const answer = await answerLine(ctx, batch, batch.lines[batch.answered]);
      batch.answers.push(answer);
      batch.answered += 1;
      if (answer.error) batch.failedLines += 1;
    }
    if (batch.answered < target()) await new Promise((resolve) => setImmediate(resolve));
  }
  if (!batch.finished && !batch.gone && FINAL_STATES.has(stateAt(batch, now))) finish(ctx, batch, stateAt(batch, now));
}

/** One line through the fake model; whatever generateContent (embedContent) would refuse becomes an error line. */
async function answerLine(ctx: EmulatorContext, batch: Batch, line: BatchLine): Promise<LineAnswer> {
  const answer: LineAnswer = { key: line.key, metadata: line.metadata };
  try {
    if (line.key !== undefined && batch.failKeys.has(line.key)) throw invalidArgument('Request contains an invalid argument.');
    if (batch.kind === 'embed') answer.embedding = embedBatchInput(batch.model, line.request);
    else answer.response = await generateLine(ctx, batch.model, line.request);
  } catch (err) {
    const { code, message, status } = toRpcError(err);
    answer.error = { code, message, status };
  }
  ctx.stats.countBatchLine(answer.error !== undefined);
  return answer;
}

async function generateLine(ctx: EmulatorContext, model: string, request: unknown): Promise<Json> {
  const facts = collectFacts(ctx.files, model, request);
  await ctx.remoteFiles.resolve(facts);
  const reply = buildReply(facts, request as Json);
  ctx.billing.bill(model, reply.usageMetadata, { batch: true });
  return responseJson(reply);
}

/** `{response}` or `{error}` of a line; an inline embedding response also carries its token count. */
function lineResult(batch: Batch, { response, embedding, error }: LineAnswer, inline: boolean): Json {
  if (embedding) return { response: embedResponseJson(embedding, batch.model, inline) };
  return response ? { response } : { error };
}

function finish(ctx: EmulatorContext, batch: Batch, state: BatchState): void {
  batch.finished = true;
  batch.lines = [];
  if (state === 'FAILED') batch.answers = [];
  if (batch.inputFile === undefined || batch.answers.length === 0) return;
  batch.responsesFile = writeResponsesFile(ctx, batch);
  batch.answers = [];
}

/** Output JSONL, one `{"key","response"}` or `{"key","error"}` per line in input order, hashed as it is written. */
function writeResponsesFile(ctx: EmulatorContext, batch: Batch): string {
  const hash = createHash('sha256');
  const pieces: Buffer[] = [];
  let text = '';
  let size = 0;
  const flush = () => {
    const piece = Buffer.from(text, 'utf8');
    hash.update(piece);
    pieces.push(piece);
    size += piece.length;
    text = '';
  };
  for (const answer of batch.answers) {
    const { key } = answer;
    text += `${JSON.stringify({ ...(key !== undefined ? { key } : {}), ...lineResult(batch, answer, false) })}\n`;
    if (text.length >= OUTPUT_PIECE_CHARS) flush();
  }
  if (text) flush();
  const preferred = `batch-${batch.id}`;
  const file = ctx.files.add({
    id: ctx.files.get(preferred) ? undefined : preferred,
    mimeType: 'application/jsonl',
    sizeBytes: size,
    sha256Hex: hash.digest('hex'),
    content: pieces,
    source: 'GENERATED',
  });
  return `files/${file.id}`;
}

// ---- Answers ----

/** proto3 JSON: int64 counts as strings, zero counts left out. */
function batchStatsJson(batch: Batch): Record<string, string> {
  const counts = {
    requestCount: batch.requestCount,
    successfulRequestCount: batch.answered - batch.failedLines,
    failedRequestCount: batch.failedLines,
    pendingRequestCount: batch.requestCount - batch.answered,
  };
  return Object.fromEntries(Object.entries(counts).flatMap(([k, n]) => (n > 0 ? [[k, String(n)]] : [])));
}

function outputJson(batch: Batch): Json | undefined {
  if (batch.responsesFile) return { responsesFile: batch.responsesFile };
  if (batch.inputFile !== undefined || batch.answers.length === 0) return undefined;
  const inlinedResponses = batch.answers.map((answer) => ({
    ...(answer.metadata !== undefined ? { metadata: answer.metadata } : {}),
    ...lineResult(batch, answer, true),
  }));
  return { inlinedResponses: { inlinedResponses } };
}

/** The long-running Operation of a batch that was settled up to `now`. */
function operationJson(batch: Batch, now: number): Json {
  const state = stateAt(batch, now);
  const final = FINAL_STATES.has(state);
  const name = `batches/${batch.id}`;
  const output = final ? outputJson(batch) : undefined;
  const type = `${API_TYPE}.${KINDS[batch.kind].batch}`;
  const metadata = {
    '@type': type,
    model: batch.modelName,
    ...(batch.displayName !== undefined ? { displayName: batch.displayName } : {}),
    ...(batch.inputFile !== undefined ? { inputConfig: { fileName: batch.inputFile } } : {}),
    ...(output ? { output } : {}),
    createTime: rfc3339(batch.createdAt),
    updateTime: rfc3339(changedAt(batch, state)),
    ...(final ? { endTime: rfc3339(changedAt(batch, state)) } : {}),
    batchStats: batchStatsJson(batch),
    state: `BATCH_STATE_${state}`,
    name,
  };
  if (!final) return { name, metadata };
  if (state === 'FAILED') return { name, metadata, done: true, error: { code: RPC_INTERNAL, message: 'The batch failed.' } };
  return { name, metadata, done: true, response: { '@type': `${type}Output`, ...output } };
}

// ---- Input ----

interface BatchSpec {
  displayName?: string;
  fileName?: string;
  requests?: unknown;
}

/**
 * The create body: {"batch":{"displayName","inputConfig":{"fileName"} | {"requests":{"requests":[…]}}}}.
 * Field names may come in proto form too, as proto JSON allows: the SDK's createEmbeddings sends "file_name".
 */
function batchSpec(body: unknown, kind: BatchKind): BatchSpec {
  const names = KINDS[kind];
  const batch = isObject(body) ? body.batch : undefined;
  if (!isObject(batch)) throw invalidArgument(`* ${names.request}.batch: batch is required.\n`);
  const displayName = batch.displayName ?? batch.display_name;
  const input = batch.inputConfig ?? batch.input_config;
  if (displayName !== undefined && typeof displayName !== 'string') {
    throw invalidArgument(`Invalid value at 'batch.display_name' (TYPE_STRING), ${JSON.stringify(displayName)}`);
  }
  if (!isObject(input)) throw invalidArgument(`* ${names.batch}.input_config: input_config is required.\n`);
  const fileName = input.fileName ?? input.file_name;
  if ((fileName === undefined) === (input.requests === undefined)) {
    throw invalidArgument(`* ${names.batch}.input_config: exactly one of file_name and requests must be set.\n`);
  }
  if (fileName !== undefined && (typeof fileName !== 'string' || !fileName)) {
    throw invalidArgument(`Invalid value at 'batch.input_config.file_name' (TYPE_STRING), ${JSON.stringify(fileName)}`);
  }
  return { displayName, fileName: fileName as string | undefined, requests: input.requests };
}

function inlineLines(requests: unknown, kind: BatchKind): BatchLine[] {
  const list = isObject(requests) ? requests.requests : undefined;
  if (!Array.isArray(list) || list.length === 0) {
    throw invalidArgument(`* ${KINDS[kind].batch}.input_config.requests.requests: requests must not be empty.\n`);
  }
  return list.map((item, i) => {
    const where = `batch.input_config.requests.requests[${i}]`;
    if (!isObject(item) || !isObject(item.request)) throw invalidArgument(`* ${where}.request: request is required.\n`);
    const { metadata } = item;
    if (metadata !== undefined && !isObject(metadata)) throw invalidArgument(`Invalid value at '${where}.metadata': expected an object.`);
    return { key: typeof metadata?.key === 'string' ? metadata.key : undefined, metadata, request: item.request };
  });
}

/** The lines of an ACTIVE JSONL file of the store; a malformed line refuses the whole batch. */
async function fileLines(ctx: EmulatorContext, fileName: string): Promise<BatchLine[]> {
  const id = fileIdOf(fileName);
  const file = ctx.files.get(id);
  if (!file) throw invalidArgument(`File ${id} does not exist or you do not have permission to access it.`);
  if (stateOf(file) !== 'ACTIVE') throw failedPrecondition(`The File ${id} is not in an ACTIVE state and usage is not allowed.`);
  const input = ctx.files.contentOf(file);
  if (!input) {
    throw failedPrecondition(
      `The emulator kept no bytes of files/${id}: it is larger than maxKeptFileBytes; start the emulator with storeDir.`,
    );
  }
  const lines: BatchLine[] = [];
  let n = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    n += 1;
    if (text.trim()) lines.push(fileLine(text, n, id));
  }
  if (lines.length === 0) throw invalidArgument(`The input file files/${id} holds no requests.`);
  return lines;
}

function fileLine(text: string, n: number, id: string): BatchLine {
  let line: unknown;
  try {
    line = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`Line ${n} of files/${id} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(line) || !isObject(line.request)) {
    throw invalidArgument(`Line ${n} of files/${id} must be a JSON object like {"key":"…","request":{…}}.`);
  }
  if (line.key !== undefined && typeof line.key !== 'string') throw invalidArgument(`Line ${n} of files/${id}: "key" must be a string.`);
  return { key: line.key, request: line.request };
}

// ---- Handlers ----

function requireBatch(ctx: EmulatorContext, id: string): Batch {
  const batch = ctx.batches.get(id);
  if (!batch) throw notFound(`Batch batches/${id.replace(/^batches\//, '')} does not exist.`);
  return batch;
}

export const handleCreateBatch: Handler = (ctx, req, res, info) => createBatch(ctx, req, res, info, 'generate');
export const handleCreateEmbeddingsBatch: Handler = (ctx, req, res, info) => createBatch(ctx, req, res, info, 'embed');

/** Not idempotent, like Gemini's: every call makes a new batch. */
async function createBatch(ctx: EmulatorContext, req: IncomingMessage, res: ServerResponse, { params }: RequestInfo, kind: BatchKind) {
  requireMethod(params.model, KINDS[kind].method);
  // The whole body counts against the request limit (20 MiB), which bounds inline batches.
  const spec = batchSpec(await readJson(req, ctx.opts.maxRequestBytes), kind);
  const lines = spec.fileName !== undefined ? await fileLines(ctx, spec.fileName) : inlineLines(spec.requests, kind);
  const model = params.model;
  const batch = ctx.batches.create({
    kind,
    model,
    modelName: model.startsWith('tunedModels/') ? model : `models/${model}`,
    displayName: spec.displayName,
    inputFile: spec.fileName !== undefined ? `files/${fileIdOf(spec.fileName)}` : undefined,
    lines,
  });
  ctx.stats.countBatchCreated();
  // Settled like any look: with a zero schedule the batch has already run.
  await settle(ctx, batch, batch.createdAt);
  sendJson(res, 200, operationJson(batch, batch.createdAt));
}

export const handleGetBatch: Handler = async (ctx, _req, res, { params }) => {
  const batch = requireBatch(ctx, params.id);
  const now = Date.now();
  await settle(ctx, batch, now);
  sendJson(res, 200, operationJson(batch, now));
};

/** An empty list answers `{}` (proto3 JSON leaves out empty repeated fields). */
export const handleListBatches: Handler = async (ctx, _req, res, { url }) => {
  const pageSize = parsePageSize(url.searchParams.get('pageSize'));
  const token = url.searchParams.get('pageToken');
  const { batches, more } = ctx.batches.page(pageSize, token ? decodePageToken(token) : undefined);
  const now = Date.now();
  for (const batch of batches) await settle(ctx, batch, now);
  const body: { operations?: Json[]; nextPageToken?: string } = {};
  if (batches.length) body.operations = batches.map((b) => operationJson(b, now));
  if (more) body.nextPageToken = encodePageToken(batches[batches.length - 1].seq);
  sendJson(res, 200, body);
};

export const handleCancelBatch: Handler = async (ctx, _req, res, { params }) => {
  await endBatch(ctx, params.id, 'CANCELLED');
  sendJson(res, 200, {});
};

export const handleDeleteBatch: Handler = async (ctx, _req, res, { params }) => {
  if (!ctx.batches.delete(params.id)) throw notFound(`Batch batches/${params.id} does not exist.`);
  sendJson(res, 200, {});
};

/** Ends a pending or running batch now (cancel; expire and fail from the controls); a finished one is refused. */
export async function endBatch(ctx: EmulatorContext, id: string, state: ForcedState): Promise<void> {
  const batch = requireBatch(ctx, id);
  const now = Date.now();
  const current = stateAt(batch, now);
  if (FINAL_STATES.has(current)) {
    throw failedPrecondition(
      `Batch batches/${batch.id} has already ended (${current}); only a pending or running batch can end as ${state}.`,
    );
  }
  batch.forced = { state, at: now };
  await settle(ctx, batch, now);
}
