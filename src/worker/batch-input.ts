/**
 * A batch's input file, read as a stream of JSONL lines (never whole in
 * memory): each request line `{"custom_id","method":"POST","url","body"}` is
 * checked like a request to the endpoint itself (`validateChatRequest`), and
 * every problem is reported with its line number. Blank lines are skipped but
 * still counted, so line numbers are the file's own.
 */
import { createInterface } from 'node:readline';
import { FerryError } from '../core/errors.js';
import type { BatchError, BatchRecord } from '../core/records/batches.js';
import type { FileRecord } from '../core/records/files.js';
import type { Services } from '../core/services.js';
import { fileUsability } from '../domain/files.js';
import { modelChecker, offeredModels } from '../domain/models.js';
import { validateChatRequest, type ValidatedChat } from '../openai/chat.js';
import { validateResponseRequest, type ValidatedResponse } from '../openai/responses.js';
import { validateEmbeddingRequest, type ValidatedEmbedding } from '../openai/embeddings.js';

type ModelCheck = ReturnType<typeof modelChecker>;

/** At most this many problems are listed in `errors.data`. */
export const MAX_LISTED_ERRORS = 100;

export interface RequestLine {
  /** 1-based line number in the file. */
  line: number;
  /** 0-based index among the request lines. */
  index: number;
  custom_id: string;
  call: LineCall;
}

/** A line's request, checked as its endpoint checks one. */
export type LineCall =
  | { type: 'chat.completion'; chat: ValidatedChat }
  | { type: 'response'; response: ValidatedResponse }
  | { type: 'embedding'; embedding: ValidatedEmbedding };

/** What the line references and which model it names. */
const validated = (call: LineCall): { model: string; fileIds: string[] } =>
  call.type === 'response' ? call.response : call.type === 'embedding' ? { model: call.embedding.model, fileIds: [] } : call.chat;

/** What each endpoint a batch may call checks a line's body with; `refused` are fields a batch cannot honour. */
const ENDPOINTS: Record<string, { check: (body: unknown, seed: string) => LineCall; refused: string[] }> = {
  '/v1/chat/completions': {
    check: (body) => ({ type: 'chat.completion', chat: validateChatRequest(body) }),
    refused: ['stream', 'webhook_url'],
  },
  '/v1/responses': {
    check: (body, seed) => ({ type: 'response', response: validateResponseRequest(body, seed) }),
    refused: ['stream', 'background', 'previous_response_id'],
  },
  '/v1/embeddings': { check: (body) => ({ type: 'embedding', embedding: validateEmbeddingRequest(body) }), refused: [] },
};

/** The output limit a line's model is checked against, by the field the line set it in. */
function outputField(call: LineCall): { field: string; value: number | null | undefined } | undefined {
  if (call.type === 'embedding') return undefined;
  if (call.type === 'response') return { field: 'max_output_tokens', value: call.response.body.max_output_tokens };
  const { body } = call.chat;
  const field = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  return { field, value: body[field] };
}

export type InputItem = { request: RequestLine } | { error: BatchError };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const problem = (line: number | null, code: string, message: string, param: string | null = null): { error: BatchError } => ({
  error: { code, message: line === null ? message : `Line ${line}: ${message}`, param, line },
});

/**
 * The input's lines in order: each a request or a problem. `checkFiles`
 * also looks up the Ferry files a body references (their owner and state).
 * Stops after the line limit with a `too_many_requests` problem.
 */
export async function* readInput(
  services: Services,
  batch: BatchRecord,
  input: FileRecord,
  checkFiles: boolean,
): AsyncGenerator<InputItem> {
  const { maxLines } = services.config.batch;
  const seen = new Map<string, number>();
  const fileProblems = new Map<string, string | null>();
  let checkModel: ModelCheck | undefined;
  const lines = createInterface({ input: services.staging.read(input.staging_key), crlfDelay: Infinity });
  let line = 0;
  let index = 0;
  try {
    for await (const raw of lines) {
      line++;
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim() === '') continue;
      if (index >= maxLines) {
        yield problem(line, 'too_many_requests', `the input has more than ${maxLines} requests, the most one batch takes.`);
        return;
      }
      const item = checkLine(text, line, index, batch.endpoint, seen);
      if ('request' in item && checkFiles) {
        const bad = await referencedFileProblem(services, batch.tenant, validated(item.request.call).fileIds, fileProblems);
        checkModel ??= modelChecker(await offeredModels(services), services.config.models !== null);
        const badModel = bad ? null : modelProblem(checkModel, item.request, line);
        if (bad || badModel) {
          yield badModel ?? problem(line, 'invalid_file', bad!, 'body.messages');
          index++;
          continue;
        }
      }
      yield item;
      index++;
    }
  } finally {
    lines.close();
  }
  if (index === 0) yield problem(null, 'empty_file', 'The input file has no request lines.');
}

function checkLine(text: string, line: number, index: number, endpoint: string, seen: Map<string, number>): InputItem {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return problem(line, 'invalid_json_line', `not valid JSON (${(err as Error).message}).`);
  }
  if (!isObj(parsed)) return problem(line, 'invalid_json_line', 'a request line must be a JSON object.');
  const { custom_id, method, url, body } = parsed;
  if (typeof custom_id !== 'string' || custom_id === '')
    return problem(line, 'missing_custom_id', '"custom_id" must be a non-empty string.', 'custom_id');
  if (custom_id.length > 512) return problem(line, 'invalid_custom_id', '"custom_id" must be at most 512 characters.', 'custom_id');
  const first = seen.get(custom_id);
  if (first !== undefined) {
    return problem(line, 'duplicate_custom_id', `custom_id ${JSON.stringify(custom_id)} was already used on line ${first}.`, 'custom_id');
  }
  seen.set(custom_id, line);
  if (method !== 'POST')
    return problem(line, 'invalid_method', `"method" must be "POST", got ${JSON.stringify(method ?? null)}.`, 'method');
  if (url !== endpoint) {
    return problem(line, 'invalid_url', `"url" must be the batch's endpoint "${endpoint}", got ${JSON.stringify(url ?? null)}.`, 'url');
  }
  if (!isObj(body)) return problem(line, 'invalid_request', '"body" must be a JSON object.', 'body');
  const { check, refused } = ENDPOINTS[endpoint];
  const unsupported = refused.find((f) => body[f] !== undefined && body[f] !== null && body[f] !== false);
  if (unsupported) {
    const why = unsupported === 'webhook_url' ? '; batch events go to your webhook endpoints' : '';
    return problem(line, 'invalid_request', `"${unsupported}" is not supported in a batch${why}.`, `body.${unsupported}`);
  }
  try {
    return { request: { line, index, custom_id, call: check(body, `${index.toString(36)}x`) } };
  } catch (err) {
    if (!(err instanceof FerryError)) throw err;
    return problem(line, 'invalid_request', err.message, err.param ? `body.${err.param}` : 'body');
  }
}

/** A line whose model Gemini does not have, or whose output limit is above the model's, as its problem. */
function modelProblem(check: ModelCheck, request: RequestLine, line: number): { error: BatchError } | null {
  try {
    check(validated(request.call).model, outputField(request.call), request.call.type === 'embedding' ? 'embedContent' : 'generateContent');
    return null;
  } catch (err) {
    if (!(err instanceof FerryError)) throw err;
    return problem(line, err.code ?? 'invalid_request', err.message, `body.${err.param ?? 'model'}`);
  }
}

/** Why a referenced file cannot be used (null when all can); answers are cached per file id. */
async function referencedFileProblem(
  services: Services,
  tenant: string,
  ids: string[],
  cache: Map<string, string | null>,
): Promise<string | null> {
  for (const id of ids) {
    if (!cache.has(id)) {
      const use = fileUsability(id, await services.files.get(id), tenant);
      cache.set(id, use.usable ? null : use.error.message);
    }
    const bad = cache.get(id);
    if (bad) return bad;
  }
  return null;
}
