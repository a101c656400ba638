/**
 * What Ferry accepts of an OpenAI chat completion request, as types and as the check that proves
 * a body has them. It runs in the API (pure: no network), so a bad request is refused with a 400
 * naming the field before anything is queued, and in batch validation for each line; the worker
 * then maps the typed request (mapping.ts). Nothing is dropped silently: a parameter or part with
 * no Gemini counterpart is refused.
 *
 * Written by hand rather than with a schema library: each refusal names the field and says what
 * to send instead, and the checks that span fields (a tool message answers an earlier call, the
 * inline bytes of all parts together) are a few lines here.
 */
import { PayloadTooLargeError } from '../core/errors.js';
import { bad, checkMetadata, checkNumber, given, isObj, type Json } from './fields.js';

/** Gemini's limit for a whole request with inline data (larger media goes through the Files API). */
export const INLINE_LIMIT_BYTES = 20 * 1000 * 1000;
/** http(s) image URLs one request may name (each is fetched and sent inline). */
export const MAX_IMAGE_URLS = 16;

export interface TextPart {
  type: 'text';
  text: string;
}
export interface FilePart {
  type: 'file';
  file: { file_id: string; file_data?: undefined; filename?: string } | { file_id?: undefined; file_data: string; filename?: string };
}
export interface ImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: string };
}
export interface AudioPart {
  type: 'input_audio';
  input_audio: { data: string; format: 'wav' | 'mp3' };
}
export type ContentPart = TextPart | FilePart | ImagePart | AudioPart;

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type ChatMessage =
  | { role: 'system' | 'developer'; content: string | TextPart[] }
  | { role: 'user'; content: string | ContentPart[] }
  | { role: 'assistant'; content?: string | TextPart[] | null; tool_calls?: ToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string | TextPart[] };

export interface FunctionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export type ResponseFormat =
  | { type: 'text' | 'json_object' }
  | { type: 'json_schema'; json_schema: { name?: string; schema: Record<string, unknown>; strict?: boolean } };

/** An OpenAI chat completion request as Ferry takes it. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number | null;
  top_p?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  response_format?: ResponseFormat | null;
  tools?: FunctionTool[] | null;
  tool_choice?: ToolChoice | null;
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  metadata?: Record<string, string> | null;
  user?: string;
  webhook_url?: string;
  /** `auto`/`default`: Gemini's standard tier; `flex` (half price, best effort) and `priority` map to Gemini's. */
  service_tier?: 'auto' | 'default' | 'flex' | 'priority' | null;
}

/** A checked request, and what the API and the worker need to know of it before mapping. */
export interface ValidatedChat {
  body: ChatRequest;
  model: string;
  stream: boolean;
  fileIds: string[];
  imageUrls: string[];
  /** Decoded bytes of the inline parts, counted against Gemini's request limit. */
  inlineBytes: number;
  /** Estimated input tokens, for the token quota. */
  inputTokens: number;
}

const PARAMS = new Set<string>([
  'model',
  'messages',
  'temperature',
  'top_p',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'n',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'response_format',
  'tools',
  'tool_choice',
  'stream',
  'stream_options',
  'metadata',
  'user',
  'webhook_url',
  'service_tier',
] satisfies (keyof ChatRequest)[]);

/** Checks a request body; answers it typed, with what the API and worker need to know of it. */
export function validateChatRequest(input: unknown): ValidatedChat {
  const found = new References();
  checkChatBody(input, found);
  return {
    body: input,
    model: input.model,
    stream: input.stream === true,
    fileIds: [...found.fileIds],
    imageUrls: [...found.imageUrls],
    inlineBytes: found.inlineBytes,
    inputTokens: estimateInputTokens(input),
  };
}

/** Every field of a body checked; what its messages reference gathered in `found`. */
function checkChatBody(input: unknown, found: References): asserts input is ChatRequest {
  if (!isObj(input)) bad('The body must be a JSON object, sent with "Content-Type: application/json".', 'body');
  checkParameters(input);
  if (!Array.isArray(input.messages) || input.messages.length === 0) bad('"messages" must be a non-empty array.', 'messages');
  input.messages.forEach((m: unknown, i: number) => checkMessage(m, `messages[${i}]`, found));
  // System and developer messages become Gemini's system instruction: with nothing else, no contents.
  if (input.messages.every((m: { role?: unknown }) => m.role === 'system' || m.role === 'developer')) {
    bad('"messages" needs a user, assistant or tool message besides system and developer ones.', 'messages');
  }
  found.checkLimits();
}

// ---------------------------------------------------------------------------
// Parameters

function checkParameters(body: Json) {
  for (const k of Object.keys(body)) {
    if (!PARAMS.has(k)) bad(`Unsupported parameter "${k}": Ferry cannot pass it to Gemini.`, k);
  }
  checkModel(body.model);
  checkNumber(body, 'temperature', 0, 2);
  checkNumber(body, 'top_p', 0, 1);
  checkNumber(body, 'max_tokens', 1, 1_000_000, true);
  checkNumber(body, 'max_completion_tokens', 1, 1_000_000, true);
  checkNumber(body, 'n', 1, 8, true);
  checkNumber(body, 'seed', -(2 ** 31), 2 ** 31 - 1, true);
  checkNumber(body, 'presence_penalty', -2, 2);
  checkNumber(body, 'frequency_penalty', -2, 2);
  checkStop(body.stop);
  checkStreaming(body.stream, body.stream_options);
  checkMetadata(body.metadata);
  if (body.user !== undefined && typeof body.user !== 'string') bad('"user" must be a string.', 'user');
  if (body.webhook_url !== undefined && typeof body.webhook_url !== 'string') bad('"webhook_url" must be a URL.', 'webhook_url');
  if (body.service_tier != null && !['auto', 'default', 'flex', 'priority'].includes(body.service_tier as string)) {
    bad('"service_tier" must be "auto", "default", "flex" or "priority".', 'service_tier');
  }
  checkResponseFormat(body.response_format);
  checkTools(body.tools);
  checkToolChoice(body.tool_choice);
}

function checkModel(model: unknown) {
  if (typeof model !== 'string' || !/^[\w.\-/:]{1,128}$/.test(model)) {
    bad('"model" must be a Gemini model name, e.g. "gemini-2.0-flash".', 'model');
  }
  if (!model.startsWith('gemini-') && !model.startsWith('models/gemini-')) {
    bad(`Unknown model "${model}": Ferry runs Gemini models (names start with "gemini-").`, 'model');
  }
}

function checkStop(stop: unknown) {
  if (!given(stop)) return;
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || list.length > 5 || list.some((s) => typeof s !== 'string')) {
    bad('"stop" must be a string or up to 5 strings.', 'stop');
  }
}

function checkStreaming(stream: unknown, options: unknown) {
  if (stream !== undefined && typeof stream !== 'boolean') bad('"stream" must be true or false.', 'stream');
  if (given(options) && (!isObj(options) || Object.keys(options).some((k) => k !== 'include_usage'))) {
    bad('"stream_options" takes only "include_usage".', 'stream_options');
  }
}

function checkResponseFormat(rf: unknown) {
  if (!given(rf)) return;
  if (!isObj(rf) || !['text', 'json_object', 'json_schema'].includes(String(rf.type))) {
    bad('"response_format.type" must be "text", "json_object" or "json_schema".', 'response_format');
  }
  if (rf.type === 'json_schema' && (!isObj(rf.json_schema) || !isObj(rf.json_schema.schema))) {
    bad('"response_format.json_schema.schema" must be a JSON Schema object.', 'response_format');
  }
}

function checkTools(tools: unknown) {
  if (!given(tools)) return;
  if (!Array.isArray(tools)) bad('"tools" must be an array.', 'tools');
  tools.forEach((t: unknown, i: number) => {
    if (!isObj(t) || t.type !== 'function' || !isObj(t.function) || typeof t.function.name !== 'string') {
      bad(`tools[${i}] must be {type:"function", function:{name, description?, parameters?}}.`, `tools[${i}]`);
    }
  });
}

function checkToolChoice(choice: unknown) {
  if (!given(choice)) return;
  if (typeof choice === 'string' && ['none', 'auto', 'required'].includes(choice)) return;
  if (isObj(choice) && choice.type === 'function' && isObj(choice.function) && typeof choice.function.name === 'string') return;
  bad('"tool_choice" must be "none", "auto", "required" or {type:"function", function:{name}}.', 'tool_choice');
}

// ---------------------------------------------------------------------------
// Messages and their parts

/** What the messages reference, gathered as they are checked. */
class References {
  readonly fileIds = new Set<string>();
  readonly imageUrls = new Set<string>();
  readonly toolCallIds = new Set<string>();
  inlineBytes = 0;

  checkLimits() {
    if (this.imageUrls.size > MAX_IMAGE_URLS) {
      bad(`At most ${MAX_IMAGE_URLS} http(s) image URLs per request; upload larger sets with POST /v1/files.`, 'messages');
    }
    if (this.inlineBytes > INLINE_LIMIT_BYTES) {
      throw new PayloadTooLargeError(
        `Inline data totals ${this.inlineBytes} bytes, over Gemini's ${INLINE_LIMIT_BYTES}-byte request limit. Upload the file with POST /v1/files and reference it as {"type":"file","file":{"file_id":"file-…"}}.`,
        { param: 'messages' },
      );
    }
  }
}

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'];

function checkMessage(m: unknown, p: string, found: References) {
  if (!isObj(m)) bad(`${p} must be an object.`, p);
  if (!ROLES.includes(String(m.role))) {
    bad(`${p}.role "${String(m.role)}" is not supported; use system, developer, user, assistant or tool.`, `${p}.role`);
  }
  if (m.role === 'assistant') {
    checkToolCalls(m.tool_calls, p, found);
    if (!given(m.content)) {
      if (m.tool_calls === undefined) bad(`${p} needs "content" or "tool_calls".`, `${p}.content`);
      return;
    }
  }
  if (m.role === 'tool' && (typeof m.tool_call_id !== 'string' || !found.toolCallIds.has(m.tool_call_id))) {
    bad(`${p}.tool_call_id must name a tool call of an earlier assistant message.`, `${p}.tool_call_id`);
  }
  if (typeof m.content === 'string') return;
  if (!Array.isArray(m.content) || m.content.length === 0)
    bad(`${p}.content must be a string or a non-empty array of parts.`, `${p}.content`);
  m.content.forEach((part: unknown, j: number) => checkPart(part, `${p}.content[${j}]`, String(m.role), found));
}

function checkToolCalls(calls: unknown, p: string, found: References) {
  if (calls === undefined) return;
  if (!Array.isArray(calls)) bad(`${p}.tool_calls must be an array.`, `${p}.tool_calls`);
  calls.forEach((tc: unknown, j: number) => {
    const tp = `${p}.tool_calls[${j}]`;
    if (!isObj(tc) || tc.type !== 'function' || !isObj(tc.function) || typeof tc.function.name !== 'string' || typeof tc.id !== 'string') {
      bad(`${tp} must be {id, type:"function", function:{name, arguments}}.`, tp);
    }
    parseArguments(tc.function.arguments, tp);
    found.toolCallIds.add(tc.id);
  });
}

function checkPart(part: unknown, pp: string, role: string, found: References) {
  if (!isObj(part)) bad(`${pp} must be an object.`, pp);
  if (part.type === 'text') {
    if (typeof part.text !== 'string') bad(`${pp}.text must be a string.`, pp);
    return;
  }
  if (role !== 'user') bad(`${pp}: ${role} messages take only text parts.`, pp);
  if (part.type === 'file' && isObj(part.file)) checkFilePart(part.file, pp, found);
  else if (part.type === 'image_url' && isObj(part.image_url) && typeof part.image_url.url === 'string')
    checkImageUrl(part.image_url.url, pp, found);
  else if (part.type === 'input_audio' && isObj(part.input_audio)) {
    const { data, format } = part.input_audio;
    if (typeof data !== 'string' || !['wav', 'mp3'].includes(String(format))) {
      bad(`${pp}.input_audio needs base64 "data" and "format" "wav" or "mp3".`, pp);
    }
    found.inlineBytes += base64Bytes(data);
  } else {
    bad(`Unsupported content part ${JSON.stringify(part.type ?? null)} at ${pp}; use text, file, image_url or input_audio.`, pp);
  }
}

function checkFilePart(file: Json, pp: string, found: References) {
  if (typeof file.file_id === 'string') found.fileIds.add(file.file_id);
  else if (typeof file.file_data === 'string') found.inlineBytes += base64Bytes(parseDataUrl(file.file_data, `${pp}.file.file_data`).data);
  else bad(`${pp}.file needs "file_id" or "file_data".`, pp);
}

function checkImageUrl(url: string, pp: string, found: References) {
  if (url.startsWith('data:')) found.inlineBytes += base64Bytes(parseDataUrl(url, `${pp}.image_url.url`).data);
  else if (/^https?:\/\//i.test(url)) found.imageUrls.add(url);
  else bad(`${pp}.image_url.url must be a data URL or an http(s) URL.`, pp);
}

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)(?:;[\w=.-]+)*;base64,([A-Za-z0-9+/=\s]*)$/;

export function parseDataUrl(url: string, param: string): { mimeType: string; data: string } {
  const m = DATA_URL.exec(url);
  if (!m) bad('Expected a base64 data URL ("data:<mime>;base64,<data>").', param);
  return { mimeType: m[1].toLowerCase(), data: m[2].replace(/\s/g, '') };
}

const base64Bytes = (b64: string) => Math.floor((b64.length * 3) / 4);

/** A tool call's `arguments`: a JSON object, as a string. */
export function parseArguments(args: unknown, param: string): Record<string, unknown> {
  if (typeof args !== 'string') bad(`${param}.function.arguments must be a JSON string.`, param);
  try {
    const v = JSON.parse(args || '{}');
    if (!isObj(v)) throw new Error('not an object');
    return v;
  } catch {
    bad(`${param}.function.arguments is not a JSON object.`, param);
  }
}

/** Gemini counts an image or a document page as about this many tokens; files are counted as one. */
const MEDIA_PART_TOKENS = 258;

/**
 * Input tokens of a chat request, estimated before the call for the token quota: about four
 * characters a token for text (and tool definitions), a fixed count per media part. Gemini's
 * `usageMetadata.promptTokenCount` corrects it after the call.
 */
export function estimateInputTokens(body: Pick<ChatRequest, 'messages' | 'tools'>): number {
  let chars = 0;
  let media = 0;
  for (const m of body.messages ?? []) {
    if (typeof m?.content === 'string') chars += m.content.length;
    else if (Array.isArray(m?.content)) {
      for (const p of m.content as ContentPart[]) {
        if (p?.type === 'text' && typeof p.text === 'string') chars += p.text.length;
        else media++;
      }
    }
  }
  if (body.tools) chars += JSON.stringify(body.tools).length;
  return Math.ceil(chars / 4) + media * MEDIA_PART_TOKENS;
}
