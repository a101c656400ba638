/**
 * What Ferry accepts of an OpenAI Responses request, and the response object and stream events it
 * answers with. The check runs in the API before anything is queued (and in batch validation for
 * each line), so a field Ferry cannot honour is a 400 naming it, never dropped; the worker maps the
 * typed request to Gemini (providers/gemini/responses.ts).
 *
 * Written by hand for the same reasons as chat.ts: every refusal names its field and what to send.
 */
import { PayloadTooLargeError } from '../core/errors.js';
import { bad, checkMetadata, checkNumber, given, isObj, type Json } from './fields.js';
import { INLINE_LIMIT_BYTES, MAX_IMAGE_URLS, parseDataUrl } from './chat.js';

export interface InputText {
  type: 'input_text' | 'output_text';
  text: string;
  annotations?: unknown[];
}
export interface InputImage {
  type: 'input_image';
  image_url?: string | null;
  file_id?: string | null;
  detail?: string;
}
export interface InputFile {
  type: 'input_file';
  file_id?: string | null;
  file_url?: string;
  file_data?: string;
  filename?: string;
}
export type InputContent = InputText | InputImage | InputFile;

export type MessageRole = 'user' | 'assistant' | 'system' | 'developer';
export interface MessageItem {
  type: 'message';
  id: string;
  role: MessageRole;
  content: InputContent[];
  status?: string;
}
export interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status?: string;
}
export interface FunctionCallOutputItem {
  type: 'function_call_output';
  id: string;
  call_id: string;
  output: string;
  status?: string;
}
/** An item of a conversation, as input_items lists it (every item has an id). */
export type InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem;

export interface FunctionToolDef {
  type: 'function';
  name: string;
  description?: string | null;
  parameters?: Record<string, unknown> | null;
  strict?: boolean | null;
}

export type TextFormat =
  | { type: 'text' | 'json_object' }
  | { type: 'json_schema'; name?: string; schema: Record<string, unknown>; strict?: boolean | null; description?: string };

export type ResponseToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; name: string };
export type ReasoningEffort = 'none' | 'minimal' | 'low' | 'medium' | 'high';

/** An OpenAI Responses request as Ferry takes it. */
export interface ResponseRequest {
  model: string;
  input: string | unknown[];
  instructions?: string | null;
  text?: { format?: TextFormat; verbosity?: 'medium' | null } | null;
  tools?: FunctionToolDef[] | null;
  tool_choice?: ResponseToolChoice | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  reasoning?: { effort?: ReasoningEffort | null; summary?: null } | null;
  metadata?: Record<string, string> | null;
  service_tier?: 'auto' | 'default' | 'flex' | 'priority' | null;
  store?: boolean | null;
  background?: boolean | null;
  stream?: boolean | null;
  stream_options?: { include_obfuscation?: boolean } | null;
  previous_response_id?: string | null;
  include?: string[] | null;
  truncation?: 'disabled' | null;
  parallel_tool_calls?: boolean | null;
  user?: string;
  safety_identifier?: string;
  prompt_cache_key?: string;
}

/** A checked request and what the API and the worker need to know of it before mapping. */
export interface ValidatedResponse {
  body: ResponseRequest;
  model: string;
  stream: boolean;
  background: boolean;
  store: boolean;
  /** The input as items, each with an id (a string input is one user message). */
  items: InputItem[];
  fileIds: string[];
  /** http(s) images the worker fetches and sends inline. */
  imageUrls: string[];
  /** Files named by URL: Gemini fetches https ones itself, the worker the rest. */
  fileUrls: string[];
  inlineBytes: number;
  inputTokens: number;
}

const PARAMS = new Set<string>([
  'model',
  'input',
  'instructions',
  'text',
  'tools',
  'tool_choice',
  'max_output_tokens',
  'temperature',
  'top_p',
  'reasoning',
  'metadata',
  'service_tier',
  'store',
  'background',
  'stream',
  'stream_options',
  'previous_response_id',
  'include',
  'truncation',
  'parallel_tool_calls',
  'user',
  'safety_identifier',
  'prompt_cache_key',
] satisfies (keyof ResponseRequest)[]);

/** Why some well-known fields are refused, so the message says what to do instead. */
const REFUSED: Record<string, string> = {
  conversation: 'Ferry keeps conversations through "previous_response_id"; send that instead.',
  prompt: 'Ferry has no stored prompt templates; send the prompt in "input" and "instructions".',
  top_logprobs: 'Gemini does not return log probabilities through Ferry; leave it out.',
  max_tool_calls: 'Gemini has no limit on tool calls per response; leave it out.',
  webhook_url: "responses announce themselves to the tenant's webhook endpoints (POST /v1/webhook_endpoints); leave it out.",
};

/** Checks a request body; answers it typed, with its items and what they reference. */
export function validateResponseRequest(input: unknown, idSeed = ''): ValidatedResponse {
  if (!isObj(input)) bad('The body must be a JSON object, sent with "Content-Type: application/json".', 'body');
  checkParameters(input);
  const body = input as unknown as ResponseRequest;
  const found = new References();
  const items = inputItems(body.input, found, idSeed);
  found.checkLimits();
  const store = body.store !== false;
  const background = body.background === true;
  if (background && !store) bad('"background" responses must be stored: leave "store" out or set it to true.', 'store');
  if (items.length === 0 && !given(body.previous_response_id)) bad('"input" must not be empty.', 'input');
  // Continuing a response, the calls may be in it: checked once it is read (domain/responses.ts).
  if (!given(body.previous_response_id)) checkCallOutputs(items, []);
  return {
    body,
    model: body.model,
    stream: body.stream === true,
    background,
    store,
    items,
    fileIds: [...found.fileIds],
    imageUrls: [...found.imageUrls],
    fileUrls: [...found.fileUrls],
    inlineBytes: found.inlineBytes,
    inputTokens: estimateTokens(items, body),
  };
}

// ---------------------------------------------------------------------------
// Parameters

function checkParameters(body: Json) {
  for (const k of Object.keys(body)) {
    if (REFUSED[k]) bad(`Unsupported parameter "${k}": ${REFUSED[k]}`, k);
    if (!PARAMS.has(k)) bad(`Unsupported parameter "${k}": Ferry cannot pass it to Gemini.`, k);
  }
  checkModel(body.model);
  if (!given(body.input) && !given(body.previous_response_id)) bad('"input" is required: a string or a list of items.', 'input');
  if (given(body.instructions) && typeof body.instructions !== 'string') bad('"instructions" must be a string.', 'instructions');
  checkNumber(body, 'temperature', 0, 2);
  checkNumber(body, 'top_p', 0, 1);
  checkNumber(body, 'max_output_tokens', 1, 1_000_000, true);
  for (const flag of ['store', 'background', 'stream', 'parallel_tool_calls']) checkBoolean(body, flag);
  for (const s of ['user', 'safety_identifier', 'prompt_cache_key', 'previous_response_id']) checkString(body, s);
  checkMetadata(body.metadata);
  checkEnum(body, 'service_tier', ['auto', 'default', 'flex', 'priority']);
  checkEnum(body, 'truncation', ['disabled'], 'Ferry does not drop input to fit the context window: send "disabled" or leave it out.');
  checkInclude(body.include);
  checkStreamOptions(body.stream_options);
  checkText(body.text);
  checkReasoning(body.reasoning);
  checkTools(body.tools);
  checkToolChoice(body.tool_choice);
}

function checkModel(model: unknown) {
  if (typeof model !== 'string' || !/^[\w.\-/:]{1,128}$/.test(model)) {
    bad('"model" must be a Gemini model name, e.g. "gemini-2.5-flash".', 'model');
  }
  if (!model.startsWith('gemini-') && !model.startsWith('models/gemini-')) {
    bad(`Unknown model "${model}": Ferry runs Gemini models (names start with "gemini-").`, 'model');
  }
}

function checkBoolean(body: Json, name: string) {
  if (given(body[name]) && typeof body[name] !== 'boolean') bad(`"${name}" must be true or false.`, name);
}

function checkString(body: Json, name: string) {
  if (given(body[name]) && typeof body[name] !== 'string') bad(`"${name}" must be a string.`, name);
}

function checkEnum(body: Json, name: string, allowed: string[], why = '') {
  const v = body[name];
  if (given(v) && !allowed.includes(String(v))) {
    bad(`"${name}" must be ${allowed.map((a) => `"${a}"`).join(', ')}${why ? `: ${why}` : '.'}`, name);
  }
}

function checkInclude(include: unknown) {
  if (!given(include)) return;
  if (!Array.isArray(include)) bad('"include" must be an array.', 'include');
  include.forEach((v: unknown, i: number) =>
    bad(`include[${i}] ${JSON.stringify(v)} is not available through Gemini: leave "include" empty.`, `include[${i}]`),
  );
}

function checkStreamOptions(options: unknown) {
  if (!given(options)) return;
  if (!isObj(options) || Object.keys(options).some((k) => k !== 'include_obfuscation')) {
    bad('"stream_options" takes only "include_obfuscation".', 'stream_options');
  }
}

function checkText(text: unknown) {
  if (!given(text)) return;
  if (!isObj(text) || Object.keys(text).some((k) => k !== 'format' && k !== 'verbosity')) {
    bad('"text" takes "format" (and "verbosity": "medium").', 'text');
  }
  if (given(text.verbosity) && text.verbosity !== 'medium') {
    bad('"text.verbosity" must be "medium": Gemini has no verbosity setting.', 'text.verbosity');
  }
  const f = text.format;
  if (!given(f)) return;
  if (!isObj(f) || !['text', 'json_object', 'json_schema'].includes(String(f.type))) {
    bad('"text.format.type" must be "text", "json_object" or "json_schema".', 'text.format');
  }
  if (f.type === 'json_schema' && !isObj(f.schema)) bad('"text.format.schema" must be a JSON Schema object.', 'text.format.schema');
}

const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high'];

function checkReasoning(reasoning: unknown) {
  if (!given(reasoning)) return;
  if (!isObj(reasoning)) bad('"reasoning" must be an object: {"effort": "low" | "medium" | "high"}.', 'reasoning');
  for (const k of Object.keys(reasoning)) {
    if (k === 'effort') continue;
    if (k === 'summary' && !given(reasoning.summary)) continue;
    bad(`"reasoning.${k}" is not available through Gemini: send only "reasoning.effort".`, `reasoning.${k}`);
  }
  if (given(reasoning.effort) && !EFFORTS.includes(String(reasoning.effort))) {
    bad(`"reasoning.effort" must be one of ${EFFORTS.join(', ')}.`, 'reasoning.effort');
  }
}

function checkTools(tools: unknown) {
  if (!given(tools)) return;
  if (!Array.isArray(tools)) bad('"tools" must be an array.', 'tools');
  tools.forEach((t: unknown, i: number) => {
    if (isObj(t) && t.type !== 'function') {
      bad(
        `tools[${i}] of type ${JSON.stringify(t.type)} is one of OpenAI's hosted tools, which Gemini cannot run: declare functions ({type:"function", name, parameters}).`,
        `tools[${i}].type`,
      );
    }
    if (!isObj(t) || typeof t.name !== 'string' || !/^[\w.-]{1,64}$/.test(t.name)) {
      bad(`tools[${i}] must be {type:"function", name, description?, parameters?}.`, `tools[${i}]`);
    }
    if (given(t.parameters) && !isObj(t.parameters)) bad(`tools[${i}].parameters must be a JSON Schema object.`, `tools[${i}].parameters`);
  });
}

function checkToolChoice(choice: unknown) {
  if (!given(choice)) return;
  if (typeof choice === 'string' && ['none', 'auto', 'required'].includes(choice)) return;
  if (isObj(choice) && choice.type === 'function' && typeof choice.name === 'string') return;
  bad('"tool_choice" must be "none", "auto", "required" or {type:"function", name}.', 'tool_choice');
}

// ---------------------------------------------------------------------------
// Input items and their parts

/** What the items reference, gathered as they are checked. */
class References {
  readonly fileIds = new Set<string>();
  readonly imageUrls = new Set<string>();
  readonly fileUrls = new Set<string>();
  inlineBytes = 0;

  checkLimits() {
    if (this.imageUrls.size + this.fileUrls.size > MAX_IMAGE_URLS) {
      bad(`At most ${MAX_IMAGE_URLS} http(s) image and file URLs per request; upload larger sets with POST /v1/files.`, 'input');
    }
    if (this.inlineBytes > INLINE_LIMIT_BYTES) {
      throw new PayloadTooLargeError(
        `Inline data totals ${this.inlineBytes} bytes, over Gemini's ${INLINE_LIMIT_BYTES}-byte request limit. Upload the file with POST /v1/files and reference it as {"type":"input_file","file_id":"file-…"}.`,
        { param: 'input' },
      );
    }
  }
}

const ROLES: MessageRole[] = ['user', 'assistant', 'system', 'developer'];

function inputItems(input: unknown, found: References, seed: string): InputItem[] {
  if (!given(input)) return [];
  if (typeof input === 'string')
    return [{ type: 'message', id: itemId('msg', seed, 0), role: 'user', content: [{ type: 'input_text', text: input }] }];
  if (!Array.isArray(input)) bad('"input" must be a string or a list of items.', 'input');
  return input.map((item: unknown, i: number) => checkItem(item, `input[${i}]`, found, itemId('msg', seed, i)));
}

/** An input item's id: its own, or one derived from the request (the same on a retry). */
function itemId(prefix: string, seed: string, index: number): string {
  return `${prefix}_${seed}${index.toString(36).padStart(4, '0')}`;
}

function checkItem(item: unknown, p: string, found: References, id: string): InputItem {
  if (!isObj(item)) bad(`${p} must be an object.`, p);
  const ownId = typeof item.id === 'string' ? item.id : undefined;
  const type = item.type ?? 'message';
  if (type === 'message') return checkMessage(item, p, found, ownId ?? id);
  if (type === 'function_call') {
    if (typeof item.call_id !== 'string' || typeof item.name !== 'string') bad(`${p} needs "call_id" and "name".`, p);
    parseArguments(item.arguments, `${p}.arguments`);
    return { type, id: ownId ?? id.replace('msg_', 'fc_'), call_id: item.call_id, name: item.name, arguments: String(item.arguments) };
  }
  if (type === 'function_call_output') {
    if (typeof item.call_id !== 'string') bad(`${p}.call_id must name a function call.`, `${p}.call_id`);
    if (typeof item.output !== 'string') bad(`${p}.output must be a string (the function's result, JSON or text).`, `${p}.output`);
    return { type, id: ownId ?? id.replace('msg_', 'fco_'), call_id: item.call_id, output: item.output };
  }
  bad(`${p}.type ${JSON.stringify(type)} is not supported; use "message", "function_call" or "function_call_output".`, `${p}.type`);
}

function checkMessage(m: Json, p: string, found: References, id: string): MessageItem {
  const role = m.role as MessageRole;
  if (!ROLES.includes(role))
    bad(`${p}.role ${JSON.stringify(m.role ?? null)} is not supported; use user, assistant, system or developer.`, `${p}.role`);
  if (typeof m.content === 'string')
    return { type: 'message', id, role, content: [{ type: role === 'assistant' ? 'output_text' : 'input_text', text: m.content }] };
  if (!Array.isArray(m.content) || m.content.length === 0)
    bad(`${p}.content must be a string or a non-empty array of parts.`, `${p}.content`);
  const content = m.content.map((part: unknown, j: number) => checkPart(part, `${p}.content[${j}]`, role, found));
  return { type: 'message', id, role, content };
}

function checkPart(part: unknown, pp: string, role: MessageRole, found: References): InputContent {
  if (!isObj(part)) bad(`${pp} must be an object.`, pp);
  if (part.type === 'input_text' || part.type === 'output_text') {
    if (typeof part.text !== 'string') bad(`${pp}.text must be a string.`, `${pp}.text`);
    return { type: part.type, text: part.text };
  }
  if (role !== 'user') bad(`${pp}: ${role} messages take only text parts.`, pp);
  if (part.type === 'input_image') return checkImage(part, pp, found);
  if (part.type === 'input_file') return checkFile(part, pp, found);
  bad(`Unsupported content part ${JSON.stringify(part.type ?? null)} at ${pp}; use input_text, input_image or input_file.`, `${pp}.type`);
}

function checkImage(part: Json, pp: string, found: References): InputImage {
  if (typeof part.file_id === 'string') {
    found.fileIds.add(part.file_id);
    return { type: 'input_image', file_id: part.file_id };
  }
  const url = part.image_url;
  if (typeof url !== 'string') bad(`${pp} needs "image_url" or "file_id".`, pp);
  if (url.startsWith('data:')) found.inlineBytes += base64Bytes(parseDataUrl(url, `${pp}.image_url`).data);
  else if (/^https?:\/\//i.test(url)) found.imageUrls.add(url);
  else bad(`${pp}.image_url must be a data URL or an http(s) URL.`, `${pp}.image_url`);
  return { type: 'input_image', image_url: url };
}

function checkFile(part: Json, pp: string, found: References): InputFile {
  const filename = typeof part.filename === 'string' ? part.filename : undefined;
  if (typeof part.file_id === 'string') {
    found.fileIds.add(part.file_id);
    return { type: 'input_file', file_id: part.file_id };
  }
  if (typeof part.file_url === 'string') {
    if (!/^https?:\/\/[^\s]+$/i.test(part.file_url)) bad(`${pp}.file_url must be an http(s) URL.`, `${pp}.file_url`);
    found.fileUrls.add(part.file_url);
    return { type: 'input_file', file_url: part.file_url, ...(filename ? { filename } : {}) };
  }
  if (typeof part.file_data === 'string') {
    if (!part.file_data.startsWith('data:') && !filename) {
      bad(`${pp}.file_data must be a data URL ("data:<mime>;base64,…"), or base64 with "filename" naming its type.`, `${pp}.file_data`);
    }
    found.inlineBytes += base64Bytes(
      part.file_data.startsWith('data:') ? parseDataUrl(part.file_data, `${pp}.file_data`).data : part.file_data,
    );
    return { type: 'input_file', file_data: part.file_data, ...(filename ? { filename } : {}) };
  }
  bad(`${pp} needs "file_id", "file_url" or "file_data" (with "filename").`, pp);
}

const base64Bytes = (b64: string) => Math.floor((b64.length * 3) / 4);

/** What items reference (files by id, images and files by URL) and their inline bytes: of a conversation's earlier turns. */
export function referencesOf(items: InputItem[]): Pick<ValidatedResponse, 'fileIds' | 'imageUrls' | 'fileUrls' | 'inlineBytes'> {
  const found = new References();
  items.forEach((item, i) => {
    if (item.type !== 'message') return;
    item.content.forEach((part, j) => {
      if (item.role === 'user' && !('text' in part)) checkPart(part, `context[${i}].content[${j}]`, 'user', found);
    });
  });
  return { fileIds: [...found.fileIds], imageUrls: [...found.imageUrls], fileUrls: [...found.fileUrls], inlineBytes: found.inlineBytes };
}

/**
 * Every function_call_output answers a function call made before it (in `earlier` turns or the
 * input): Gemini's function response needs the call's name, and an answer to no call is a mistake.
 */
export function checkCallOutputs(items: InputItem[], earlier: InputItem[]): void {
  const calls = new Set(earlier.flatMap((i) => (i.type === 'function_call' ? [i.call_id] : [])));
  items.forEach((item, i) => {
    if (item.type === 'function_call') calls.add(item.call_id);
    if (item.type === 'function_call_output' && !calls.has(item.call_id)) {
      bad(
        `No function call found for function_call_output with call_id '${item.call_id}': answer a call of this response's conversation.`,
        `input[${i}].call_id`,
      );
    }
  });
}

/** A function call's `arguments`: a JSON object, as a string. */
export function parseArguments(args: unknown, param: string): Record<string, unknown> {
  if (typeof args !== 'string') bad(`${param} must be a JSON string.`, param);
  try {
    const v = JSON.parse(args || '{}');
    if (!isObj(v)) throw new Error('not an object');
    return v;
  } catch {
    bad(`${param} is not a JSON object.`, param);
  }
}

/** Gemini counts an image or a document page as about this many tokens; files are counted as one. */
const MEDIA_PART_TOKENS = 258;

/** Input tokens estimated before the call (four characters a token, a fixed count per media part). */
function estimateTokens(items: InputItem[], body: ResponseRequest): number {
  let chars = (body.instructions ?? '').length + (body.tools ? JSON.stringify(body.tools).length : 0);
  let media = 0;
  for (const item of items) {
    if (item.type === 'function_call') chars += item.arguments.length;
    else if (item.type === 'function_call_output') chars += item.output.length;
    else
      for (const part of item.content) {
        if ('text' in part) chars += part.text.length;
        else media++;
      }
  }
  return Math.ceil(chars / 4) + media * MEDIA_PART_TOKENS;
}
