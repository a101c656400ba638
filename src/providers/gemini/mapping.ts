/**
 * OpenAI chat completions ↔ Gemini generateContent.
 *
 * `validateChatRequest` runs in the API (pure: no network) so a bad request
 * is refused with a 400 naming the problem before anything is queued; the
 * worker then maps the validated request with the files resolved.
 * Nothing is dropped silently: a parameter or part with no Gemini
 * counterpart is refused.
 */
import type { Content, GenerateContentConfig, GenerateContentResponse, Part } from '@google/genai';
import { BadRequestError, PayloadTooLargeError } from '../../core/errors.js';

/** Gemini's limit for a whole request with inline data (larger media goes through the Files API). */
export const INLINE_LIMIT_BYTES = 20 * 1000 * 1000;
/** http(s) image URLs one request may name (each is fetched and sent inline). */
export const MAX_IMAGE_URLS = 16;

const PARAMS = new Set([
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
]);

type Json = Record<string, unknown>;

export interface ValidatedChat {
  body: Json;
  model: string;
  stream: boolean;
  fileIds: string[];
  imageUrls: string[];
  /** Decoded bytes of the inline parts, counted against Gemini's request limit. */
  inlineBytes: number;
  /** Estimated input tokens, for the token quota. */
  inputTokens: number;
}

export interface ResolvedFile {
  fileUri: string;
  mimeType: string;
}

export interface FetchedImage {
  mimeType: string;
  data: string;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(message: string, param: string): never {
  throw new BadRequestError(message, { param: param });
}

function num(body: Json, name: string, min: number, max: number, integer = false) {
  const v = body[name];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    bad(`"${name}" must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}.`, name);
  }
}

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)(?:;[\w=.-]+)*;base64,([A-Za-z0-9+/=\s]*)$/;

export function parseDataUrl(url: string, param: string): { mimeType: string; data: string } {
  const m = DATA_URL.exec(url);
  if (!m) bad('Expected a base64 data URL ("data:<mime>;base64,<data>").', param);
  return { mimeType: m[1].toLowerCase(), data: m[2].replace(/\s/g, '') };
}

const base64Bytes = (b64: string) => Math.floor((b64.length * 3) / 4);

export function validateChatRequest(input: unknown): ValidatedChat {
  if (!isObj(input)) bad('The body must be a JSON object, sent with "Content-Type: application/json".', 'body');
  const body = input;
  for (const k of Object.keys(body)) {
    if (!PARAMS.has(k)) bad(`Unsupported parameter "${k}": Ferry cannot pass it to Gemini.`, k);
  }
  if (typeof body.model !== 'string' || !/^[\w.\-/:]{1,128}$/.test(body.model)) {
    bad('"model" must be a Gemini model name, e.g. "gemini-2.0-flash".', 'model');
  }
  if (!body.model.startsWith('gemini-') && !body.model.startsWith('models/gemini-')) {
    bad(`Unknown model "${body.model}": Ferry runs Gemini models (names start with "gemini-").`, 'model');
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) bad('"messages" must be a non-empty array.', 'messages');
  num(body, 'temperature', 0, 2);
  num(body, 'top_p', 0, 1);
  num(body, 'max_tokens', 1, 1_000_000, true);
  num(body, 'max_completion_tokens', 1, 1_000_000, true);
  num(body, 'n', 1, 8, true);
  num(body, 'seed', -(2 ** 31), 2 ** 31 - 1, true);
  num(body, 'presence_penalty', -2, 2);
  num(body, 'frequency_penalty', -2, 2);
  if (body.stop !== undefined && body.stop !== null) {
    const stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
    if (!Array.isArray(stop) || stop.length > 5 || stop.some((s) => typeof s !== 'string')) {
      bad('"stop" must be a string or up to 5 strings.', 'stop');
    }
  }
  if (body.stream !== undefined && typeof body.stream !== 'boolean') bad('"stream" must be true or false.', 'stream');
  if (body.stream_options !== undefined && body.stream_options !== null) {
    if (!isObj(body.stream_options) || Object.keys(body.stream_options).some((k) => k !== 'include_usage')) {
      bad('"stream_options" takes only "include_usage".', 'stream_options');
    }
  }
  if (body.metadata !== undefined && body.metadata !== null) {
    if (
      !isObj(body.metadata) ||
      Object.values(body.metadata).some((v) => typeof v !== 'string') ||
      Object.keys(body.metadata).length > 16
    ) {
      bad('"metadata" must be an object of up to 16 string values.', 'metadata');
    }
  }
  if (body.user !== undefined && typeof body.user !== 'string') bad('"user" must be a string.', 'user');
  if (body.webhook_url !== undefined && typeof body.webhook_url !== 'string') bad('"webhook_url" must be a URL.', 'webhook_url');
  validateResponseFormat(body.response_format);
  validateTools(body.tools, body.tool_choice);

  const fileIds = new Set<string>();
  const imageUrls = new Set<string>();
  let inline = 0;
  const toolCallIds = new Set<string>();
  body.messages.forEach((m: unknown, i: number) => {
    const p = `messages[${i}]`;
    if (!isObj(m)) bad(`${p} must be an object.`, p);
    const role = m.role;
    if (role === 'assistant') {
      if (m.tool_calls !== undefined) {
        if (!Array.isArray(m.tool_calls)) bad(`${p}.tool_calls must be an array.`, `${p}.tool_calls`);
        m.tool_calls.forEach((tc: unknown, j: number) => {
          const tp = `${p}.tool_calls[${j}]`;
          if (
            !isObj(tc) ||
            tc.type !== 'function' ||
            !isObj(tc.function) ||
            typeof tc.function.name !== 'string' ||
            typeof tc.id !== 'string'
          ) {
            bad(`${tp} must be {id, type:"function", function:{name, arguments}}.`, tp);
          }
          parseArguments(tc.function.arguments, tp);
          toolCallIds.add(tc.id);
        });
      }
      if (m.content === null || m.content === undefined) {
        if (m.tool_calls === undefined) bad(`${p} needs "content" or "tool_calls".`, `${p}.content`);
        return;
      }
    } else if (role === 'tool') {
      if (typeof m.tool_call_id !== 'string' || !toolCallIds.has(m.tool_call_id)) {
        bad(`${p}.tool_call_id must name a tool call of an earlier assistant message.`, `${p}.tool_call_id`);
      }
    } else if (!['system', 'developer', 'user'].includes(String(role))) {
      bad(`${p}.role "${String(role)}" is not supported; use system, developer, user, assistant or tool.`, `${p}.role`);
    }
    if (typeof m.content === 'string') return;
    if (!Array.isArray(m.content) || m.content.length === 0)
      bad(`${p}.content must be a string or a non-empty array of parts.`, `${p}.content`);
    m.content.forEach((part: unknown, j: number) => {
      const pp = `${p}.content[${j}]`;
      if (!isObj(part)) bad(`${pp} must be an object.`, pp);
      const textOnly = role !== 'user';
      if (part.type === 'text') {
        if (typeof part.text !== 'string') bad(`${pp}.text must be a string.`, pp);
        return;
      }
      if (textOnly) bad(`${pp}: ${String(role)} messages take only text parts.`, pp);
      if (part.type === 'file' && isObj(part.file)) {
        if (typeof part.file.file_id === 'string') fileIds.add(part.file.file_id);
        else if (typeof part.file.file_data === 'string')
          inline += base64Bytes(parseDataUrl(part.file.file_data, `${pp}.file.file_data`).data);
        else bad(`${pp}.file needs "file_id" or "file_data".`, pp);
      } else if (part.type === 'image_url' && isObj(part.image_url) && typeof part.image_url.url === 'string') {
        const url = part.image_url.url;
        if (url.startsWith('data:')) inline += base64Bytes(parseDataUrl(url, `${pp}.image_url.url`).data);
        else if (/^https?:\/\//i.test(url)) imageUrls.add(url);
        else bad(`${pp}.image_url.url must be a data URL or an http(s) URL.`, pp);
      } else if (part.type === 'input_audio' && isObj(part.input_audio)) {
        const { data, format } = part.input_audio;
        if (typeof data !== 'string' || !['wav', 'mp3'].includes(String(format))) {
          bad(`${pp}.input_audio needs base64 "data" and "format" "wav" or "mp3".`, pp);
        }
        inline += base64Bytes(data);
      } else {
        bad(`Unsupported content part ${JSON.stringify(part.type ?? null)} at ${pp}; use text, file, image_url or input_audio.`, pp);
      }
    });
  });
  if (imageUrls.size > MAX_IMAGE_URLS) {
    bad(`At most ${MAX_IMAGE_URLS} http(s) image URLs per request; upload larger sets with POST /v1/files.`, 'messages');
  }
  if (inline > INLINE_LIMIT_BYTES) {
    throw new PayloadTooLargeError(
      `Inline data totals ${inline} bytes, over Gemini's ${INLINE_LIMIT_BYTES}-byte request limit. Upload the file with POST /v1/files and reference it as {"type":"file","file":{"file_id":"file-…"}}.`,
      { param: 'messages' },
    );
  }
  return {
    body,
    model: body.model,
    stream: body.stream === true,
    fileIds: [...fileIds],
    imageUrls: [...imageUrls],
    inlineBytes: inline,
    inputTokens: estimateInputTokens(body),
  };
}

function parseArguments(args: unknown, param: string): Json {
  if (typeof args !== 'string') bad(`${param}.function.arguments must be a JSON string.`, param);
  try {
    const v = JSON.parse(args || '{}');
    if (!isObj(v)) throw new Error('not an object');
    return v;
  } catch {
    bad(`${param}.function.arguments is not a JSON object.`, param);
  }
}

function validateResponseFormat(rf: unknown) {
  if (rf === undefined || rf === null) return;
  if (!isObj(rf) || !['text', 'json_object', 'json_schema'].includes(String(rf.type))) {
    bad('"response_format.type" must be "text", "json_object" or "json_schema".', 'response_format');
  }
  if (rf.type === 'json_schema' && (!isObj(rf.json_schema) || !isObj(rf.json_schema.schema))) {
    bad('"response_format.json_schema.schema" must be a JSON Schema object.', 'response_format');
  }
}

function validateTools(tools: unknown, choice: unknown) {
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) bad('"tools" must be an array.', 'tools');
    tools.forEach((t: unknown, i: number) => {
      if (!isObj(t) || t.type !== 'function' || !isObj(t.function) || typeof t.function.name !== 'string') {
        bad(`tools[${i}] must be {type:"function", function:{name, description?, parameters?}}.`, `tools[${i}]`);
      }
    });
  }
  if (choice === undefined || choice === null) return;
  if (typeof choice === 'string' && ['none', 'auto', 'required'].includes(choice)) return;
  if (isObj(choice) && choice.type === 'function' && isObj(choice.function) && typeof choice.function.name === 'string') return;
  bad('"tool_choice" must be "none", "auto", "required" or {type:"function", function:{name}}.', 'tool_choice');
}

/** The arguments of `ai.models.generateContent` for a validated request. */
export function toGeminiRequest(
  body: Json,
  files: Map<string, ResolvedFile>,
  images: Map<string, FetchedImage> = new Map(),
): { model: string; contents: Content[]; config: GenerateContentConfig } {
  const system: Part[] = [];
  const contents: Content[] = [];
  const toolNames = new Map<string, string>();
  const push = (role: 'user' | 'model', parts: Part[]) => {
    const last = contents.at(-1);
    if (last && last.role === role) last.parts!.push(...parts);
    else contents.push({ role, parts });
  };
  for (const m of body.messages as Json[]) {
    const parts = toParts(m.content, files, images);
    if (m.role === 'system' || m.role === 'developer') system.push(...parts);
    else if (m.role === 'user') push('user', parts);
    else if (m.role === 'assistant') {
      const calls = ((m.tool_calls as Json[] | undefined) ?? []).map((tc) => {
        const fn = tc.function as Json;
        toolNames.set(String(tc.id), String(fn.name));
        return { functionCall: { name: String(fn.name), args: parseArguments(fn.arguments, 'tool_calls') } };
      });
      push('model', [...parts, ...calls]);
    } else if (m.role === 'tool') {
      const text = parts.map((p) => p.text ?? '').join('');
      let response: Json;
      try {
        const v = JSON.parse(text);
        response = isObj(v) ? v : { content: v };
      } catch {
        response = { content: text };
      }
      push('user', [{ functionResponse: { name: toolNames.get(String(m.tool_call_id)) ?? 'tool', response } }]);
    }
  }
  const config: GenerateContentConfig = {};
  if (system.length) config.systemInstruction = { parts: system };
  if (typeof body.temperature === 'number') config.temperature = body.temperature;
  if (typeof body.top_p === 'number') config.topP = body.top_p;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (typeof maxTokens === 'number') config.maxOutputTokens = maxTokens;
  if (body.stop) config.stopSequences = typeof body.stop === 'string' ? [body.stop] : (body.stop as string[]);
  if (typeof body.n === 'number') config.candidateCount = body.n;
  if (typeof body.seed === 'number') config.seed = body.seed;
  if (typeof body.presence_penalty === 'number') config.presencePenalty = body.presence_penalty;
  if (typeof body.frequency_penalty === 'number') config.frequencyPenalty = body.frequency_penalty;
  const rf = body.response_format as Json | undefined;
  if (rf?.type === 'json_object') config.responseMimeType = 'application/json';
  if (rf?.type === 'json_schema') {
    config.responseMimeType = 'application/json';
    config.responseJsonSchema = (rf.json_schema as Json).schema;
  }
  const tools = body.tools as Json[] | undefined;
  if (tools?.length) {
    config.tools = [
      {
        functionDeclarations: tools.map((t) => {
          const fn = t.function as Json;
          return {
            name: String(fn.name),
            description: typeof fn.description === 'string' ? fn.description : undefined,
            parametersJsonSchema: fn.parameters ?? undefined,
          };
        }),
      },
    ];
  }
  const choice = body.tool_choice as string | Json | undefined;
  if (choice !== undefined && choice !== null) {
    const mode = choice === 'none' ? 'NONE' : choice === 'auto' ? 'AUTO' : 'ANY';
    const allowed = isObj(choice) ? [String((choice.function as Json).name)] : undefined;
    config.toolConfig = { functionCallingConfig: { mode: mode as never, allowedFunctionNames: allowed } };
  }
  return { model: String(body.model).replace(/^models\//, ''), contents, config };
}

function toParts(content: unknown, files: Map<string, ResolvedFile>, images: Map<string, FetchedImage>): Part[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return [{ text: content }];
  return (content as Json[]).map((part): Part => {
    if (part.type === 'text') return { text: String(part.text) };
    if (part.type === 'file') {
      const f = part.file as Json;
      if (typeof f.file_id === 'string') {
        const r = files.get(f.file_id);
        if (!r) throw new Error(`file ${f.file_id} was not resolved`);
        return { fileData: { fileUri: r.fileUri, mimeType: r.mimeType } };
      }
      return { inlineData: parseDataUrl(String(f.file_data), 'file_data') };
    }
    if (part.type === 'image_url') {
      const url = String((part.image_url as Json).url);
      if (url.startsWith('data:')) return { inlineData: parseDataUrl(url, 'image_url') };
      const img = images.get(url);
      if (!img) throw new Error(`image ${url} was not fetched`);
      return { inlineData: img };
    }
    const audio = part.input_audio as Json;
    return { inlineData: { mimeType: audio.format === 'mp3' ? 'audio/mp3' : 'audio/wav', data: String(audio.data) } };
  });
}

const FINISH: Record<string, string> = {
  STOP: 'stop',
  MAX_TOKENS: 'length',
  SAFETY: 'content_filter',
  RECITATION: 'content_filter',
  BLOCKLIST: 'content_filter',
  PROHIBITED_CONTENT: 'content_filter',
  SPII: 'content_filter',
  IMAGE_SAFETY: 'content_filter',
};

export interface CompletionIds {
  id: string;
  model: string;
  created: number;
}

function toolCallsOf(parts: Part[], choiceIndex: number) {
  return parts
    .filter((p) => p.functionCall)
    .map((p, i) => ({
      id: `call_${choiceIndex}_${i}_${p.functionCall!.name}`,
      type: 'function' as const,
      function: { name: String(p.functionCall!.name), arguments: JSON.stringify(p.functionCall!.args ?? {}) },
    }));
}

export function finishReason(geminiReason: string | undefined, hasToolCalls: boolean): string | null {
  if (hasToolCalls) return 'tool_calls';
  if (!geminiReason) return null;
  return FINISH[geminiReason] ?? 'stop';
}

export function usageOf(r: GenerateContentResponse) {
  const u = r.usageMetadata;
  if (!u) return undefined;
  const prompt = u.promptTokenCount ?? 0;
  const completion = u.candidatesTokenCount ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: u.totalTokenCount ?? prompt + completion };
}

/** A Gemini answer as OpenAI's `chat.completion`. */
export function toChatCompletion(r: GenerateContentResponse, ids: CompletionIds) {
  const candidates = r.candidates ?? [];
  const choices = candidates.map((c, i) => {
    const parts = c.content?.parts ?? [];
    const text = parts
      .filter((p) => typeof p.text === 'string' && !p.thought)
      .map((p) => p.text)
      .join('');
    const toolCalls = toolCallsOf(parts, i);
    return {
      index: c.index ?? i,
      message: {
        role: 'assistant' as const,
        content: text || (toolCalls.length ? null : ''),
        refusal: null,
        ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
      },
      finish_reason: finishReason(c.finishReason, toolCalls.length > 0) ?? 'stop',
      logprobs: null,
    };
  });
  if (choices.length === 0 && r.promptFeedback?.blockReason) {
    choices.push({
      index: 0,
      message: { role: 'assistant', content: null as never, refusal: null },
      finish_reason: 'content_filter',
      logprobs: null,
    });
  }
  return {
    id: ids.id,
    object: 'chat.completion' as const,
    created: ids.created,
    model: ids.model,
    choices,
    usage: usageOf(r),
    system_fingerprint: r.modelVersion ?? null,
  };
}

/** One streamed Gemini answer as OpenAI `chat.completion.chunk`s (one per candidate). */
export function toChunks(r: GenerateContentResponse, ids: CompletionIds, first: boolean) {
  return (r.candidates ?? []).map((c, i) => {
    const parts = c.content?.parts ?? [];
    const text = parts
      .filter((p) => typeof p.text === 'string' && !p.thought)
      .map((p) => p.text)
      .join('');
    const toolCalls = toolCallsOf(parts, i).map((tc, k) => ({ index: k, ...tc }));
    return {
      id: ids.id,
      object: 'chat.completion.chunk' as const,
      created: ids.created,
      model: ids.model,
      choices: [
        {
          index: c.index ?? i,
          delta: {
            ...(first ? { role: 'assistant' as const } : {}),
            ...(text ? { content: text } : {}),
            ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
          },
          finish_reason: finishReason(c.finishReason, toolCalls.length > 0),
          logprobs: null,
        },
      ],
    };
  });
}

/** Gemini counts an image or a document page as about this many tokens; files are counted as one. */
const MEDIA_PART_TOKENS = 258;

/**
 * Input tokens of a chat request, estimated before the call for the token quota: about four
 * characters a token for text (and tool definitions), a fixed count per media part. Gemini's
 * `usageMetadata.promptTokenCount` corrects it after the call.
 */
export function estimateInputTokens(body: Record<string, unknown>): number {
  let chars = 0;
  let media = 0;
  for (const m of (body.messages as Array<{ content?: unknown }> | undefined) ?? []) {
    if (typeof m?.content === 'string') chars += m.content.length;
    else if (Array.isArray(m?.content)) {
      for (const p of m.content as Array<{ type?: string; text?: unknown }>) {
        if (typeof p?.text === 'string') chars += p.text.length;
        else media++;
      }
    }
  }
  if (body.tools) chars += JSON.stringify(body.tools).length;
  return Math.ceil(chars / 4) + media * MEDIA_PART_TOKENS;
}
