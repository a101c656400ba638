/**
 * OpenAI chat completions ↔ Gemini generateContent: a checked request (openai/chat.ts), its
 * files resolved, as Gemini's request; Gemini's answers as `chat.completion` and its chunks.
 */
import { modelIdOf } from '../../core/models.js';
import type { Content, GenerateContentConfig, GenerateContentResponse, Part } from '@google/genai';
import { parseArguments, parseDataUrl, type ChatMessage, type ChatRequest, type ContentPart } from '../../openai/chat.js';

export interface ResolvedFile {
  fileUri: string;
  mimeType: string;
}

export interface FetchedImage {
  mimeType: string;
  data: string;
}

export interface GeminiRequest {
  model: string;
  contents: Content[];
  config: GenerateContentConfig;
}

/** The arguments of `ai.models.generateContent` for a checked request. */
export function toGeminiRequest(
  body: ChatRequest,
  files: Map<string, ResolvedFile>,
  images: Map<string, FetchedImage> = new Map(),
): GeminiRequest {
  const { system, contents } = toContents(body.messages, new PartMapper(files, images));
  const config: GenerateContentConfig = { ...samplingConfig(body), ...outputConfig(body), ...toolConfig(body) };
  if (system.length) config.systemInstruction = { parts: system };
  return { model: modelIdOf(body.model), contents, config };
}

/** Fields of the SDK's GenerateContentConfig that REST carries under `generationConfig`. */
const GENERATION_FIELDS = [
  'temperature',
  'topP',
  'maxOutputTokens',
  'stopSequences',
  'candidateCount',
  'seed',
  'presencePenalty',
  'frequencyPenalty',
  'responseMimeType',
  'responseJsonSchema',
  'thinkingConfig',
] as const;

/**
 * The same request in REST's shape (a GenerateContentRequest, as a Batch Mode input line holds
 * it): the SDK moves these fields itself for a live call; a batch's input file is written here.
 */
export function toRestRequest(req: GeminiRequest): Record<string, unknown> {
  const { systemInstruction, tools, toolConfig } = req.config;
  const generationConfig = Object.fromEntries(GENERATION_FIELDS.filter((k) => req.config[k] !== undefined).map((k) => [k, req.config[k]]));
  return {
    contents: req.contents,
    ...(systemInstruction ? { systemInstruction } : {}),
    ...(tools ? { tools } : {}),
    ...(toolConfig ? { toolConfig } : {}),
    ...(Object.keys(generationConfig).length ? { generationConfig } : {}),
  };
}

/** The conversation as Gemini's turns: system text apart, consecutive turns of one role merged, tool answers as function responses. */
function toContents(messages: ChatMessage[], parts: PartMapper): { system: Part[]; contents: Content[] } {
  const system: Part[] = [];
  const contents: Content[] = [];
  const toolNames = new Map<string, string>();
  const push = (role: 'user' | 'model', more: Part[]) => appendTurn(contents, role, more);
  for (const m of messages) {
    if (m.role === 'user') push('user', parts.of(m.content));
    else if (m.role === 'assistant') {
      const calls = (m.tool_calls ?? []).map((tc) => {
        toolNames.set(tc.id, tc.function.name);
        return { functionCall: { name: tc.function.name, args: parseArguments(tc.function.arguments, 'tool_calls') } };
      });
      push('model', [...parts.of(m.content), ...calls]);
    } else if (m.role === 'tool') {
      const response = functionResponseOf(
        parts
          .of(m.content)
          .map((p) => p.text ?? '')
          .join(''),
        'content',
      );
      push('user', [{ functionResponse: { name: toolNames.get(m.tool_call_id) ?? 'tool', response } }]);
    } else system.push(...parts.of(m.content));
  }
  return { system, contents };
}

/** A function's answer as Gemini's function response: its JSON object, or the text under `key`. */
export function functionResponseOf(text: string, key: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : { [key]: v };
  } catch {
    return { [key]: text };
  }
}

/** Adds parts as a turn of `role`, merged into the last turn when it is of the same role (Gemini alternates roles). */
export function appendTurn(contents: Content[], role: 'user' | 'model', parts: Part[]): void {
  const last = contents.at(-1);
  if (last && last.role === role) last.parts!.push(...parts);
  else contents.push({ role, parts });
}

function samplingConfig(body: ChatRequest): GenerateContentConfig {
  const config: GenerateContentConfig = {};
  if (typeof body.temperature === 'number') config.temperature = body.temperature;
  if (typeof body.top_p === 'number') config.topP = body.top_p;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (typeof maxTokens === 'number') config.maxOutputTokens = maxTokens;
  if (body.stop) config.stopSequences = typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (typeof body.n === 'number') config.candidateCount = body.n;
  if (typeof body.seed === 'number') config.seed = body.seed;
  if (typeof body.presence_penalty === 'number') config.presencePenalty = body.presence_penalty;
  if (typeof body.frequency_penalty === 'number') config.frequencyPenalty = body.frequency_penalty;
  return config;
}

function outputConfig(body: ChatRequest): GenerateContentConfig {
  const rf = body.response_format;
  if (rf?.type === 'json_object') return { responseMimeType: 'application/json' };
  if (rf?.type === 'json_schema') return { responseMimeType: 'application/json', responseJsonSchema: rf.json_schema.schema };
  return {};
}

function toolConfig(body: ChatRequest): GenerateContentConfig {
  const config: GenerateContentConfig = {};
  if (body.tools?.length) {
    config.tools = [
      {
        functionDeclarations: body.tools.map(({ function: fn }) => ({
          name: fn.name,
          description: typeof fn.description === 'string' ? fn.description : undefined,
          parametersJsonSchema: fn.parameters ?? undefined,
        })),
      },
    ];
  }
  const choice = body.tool_choice;
  if (choice !== undefined && choice !== null) {
    const mode = choice === 'none' ? 'NONE' : choice === 'auto' ? 'AUTO' : 'ANY';
    const allowed = typeof choice === 'object' ? [choice.function.name] : undefined;
    config.toolConfig = { functionCallingConfig: { mode: mode as never, allowedFunctionNames: allowed } };
  }
  return config;
}

/** Message parts as Gemini parts: files by their Gemini copy, fetched images and data URLs inline. */
class PartMapper {
  constructor(
    private readonly files: Map<string, ResolvedFile>,
    private readonly images: Map<string, FetchedImage>,
  ) {}

  of(content: string | ContentPart[] | null | undefined): Part[] {
    if (content === null || content === undefined) return [];
    if (typeof content === 'string') return [{ text: content }];
    return content.map((part) => this.part(part));
  }

  private part(part: ContentPart): Part {
    if (part.type === 'text') return { text: part.text };
    if (part.type === 'file') {
      if (typeof part.file.file_id !== 'string') return { inlineData: parseDataUrl(String(part.file.file_data), 'file_data') };
      const r = this.files.get(part.file.file_id);
      if (!r) throw new Error(`file ${part.file.file_id} was not resolved`);
      return { fileData: { fileUri: r.fileUri, mimeType: r.mimeType } };
    }
    if (part.type === 'image_url') {
      const url = part.image_url.url;
      if (url.startsWith('data:')) return { inlineData: parseDataUrl(url, 'image_url') };
      const img = this.images.get(url);
      if (!img) throw new Error(`image ${url} was not fetched`);
      return { inlineData: img };
    }
    const audio = part.input_audio;
    return { inlineData: { mimeType: audio.format === 'mp3' ? 'audio/mp3' : 'audio/wav', data: audio.data } };
  }
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
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: u.totalTokenCount ?? prompt + completion,
    // The part of the prompt read from a context cache, as OpenAI reports its own cached tokens.
    ...(u.cachedContentTokenCount ? { prompt_tokens_details: { cached_tokens: u.cachedContentTokenCount } } : {}),
  };
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
