/**
 * OpenAI Responses ↔ Gemini generateContent: a checked request's items (its earlier turns first)
 * as Gemini's turns, its settings as Gemini's config; Gemini's answers, whole or streamed, as the
 * response's output items and the stream's events. One writer turns answers into items for both
 * (a whole answer is a stream of one chunk), so a streamed response ends as a retrieved one reads.
 */
import type { Content, GenerateContentConfig, GenerateContentResponse, Part, ThinkingConfig } from '@google/genai';
import { modelIdOf } from '../../core/models.js';
import { parseDataUrl } from '../../openai/chat.js';
import type {
  OutputFunctionCall,
  OutputItem,
  OutputMessage,
  ResponseEvent,
  ResponseOutcome,
  ResponseUsage,
} from '../../openai/response-object.js';
import {
  parseArguments,
  type InputContent,
  type InputFile,
  type InputImage,
  type InputItem,
  type ResponseRequest,
} from '../../openai/responses.js';
import { appendTurn, functionResponseOf, type FetchedImage, type GeminiRequest, type ResolvedFile } from './mapping.js';
import { mimeTypeOfName } from './mime.js';

/** What a response's parts reference, made ready by the worker. */
export interface ResponseInputs {
  files: Map<string, ResolvedFile>;
  images: Map<string, FetchedImage>;
  /** A file URL as Gemini takes it: its own address (Gemini fetches it) or the bytes fetched. */
  urls: Map<string, Part>;
}

/** The arguments of `ai.models.generateContent` for a response's request and turns. */
export function toGeminiResponseRequest(body: ResponseRequest, items: InputItem[], inputs: ResponseInputs): GeminiRequest {
  const { system, contents } = toContents(items, inputs);
  if (body.instructions) system.unshift({ text: body.instructions });
  const config: GenerateContentConfig = { ...generationConfig(body), ...toolConfig(body) };
  if (system.length) config.systemInstruction = { parts: system };
  return { model: modelIdOf(body.model), contents, config };
}

function toContents(items: InputItem[], inputs: ResponseInputs): { system: Part[]; contents: Content[] } {
  const system: Part[] = [];
  const contents: Content[] = [];
  const callNames = new Map<string, string>();
  const push = (role: 'user' | 'model', parts: Part[]) => appendTurn(contents, role, parts);
  for (const item of items) {
    if (item.type === 'function_call') {
      callNames.set(item.call_id, item.name);
      push('model', [{ functionCall: { name: item.name, args: parseArguments(item.arguments, 'arguments') } }]);
    } else if (item.type === 'function_call_output') {
      push('user', [
        { functionResponse: { name: callNames.get(item.call_id) ?? 'function', response: functionResponseOf(item.output, 'output') } },
      ]);
    } else {
      const parts = item.content.map((c) => partOf(c, inputs));
      if (item.role === 'system' || item.role === 'developer') system.push(...parts);
      else push(item.role === 'assistant' ? 'model' : 'user', parts);
    }
  }
  return { system, contents };
}

function partOf(c: InputContent, inputs: ResponseInputs): Part {
  if ('text' in c) return { text: c.text };
  return mediaPart(c, inputs);
}

function mediaPart(c: InputImage | InputFile, inputs: ResponseInputs): Part {
  if (c.file_id) {
    const r = inputs.files.get(c.file_id);
    if (!r) throw new Error(`file ${c.file_id} was not resolved`);
    return { fileData: { fileUri: r.fileUri, mimeType: r.mimeType } };
  }
  if (c.type === 'input_image') {
    const url = String(c.image_url);
    if (url.startsWith('data:')) return { inlineData: parseDataUrl(url, 'image_url') };
    const img = inputs.images.get(url);
    if (!img) throw new Error(`image ${url} was not fetched`);
    return { inlineData: img };
  }
  if (c.file_url) {
    const part = inputs.urls.get(c.file_url);
    if (!part) throw new Error(`file URL ${c.file_url} was not resolved`);
    return part;
  }
  const data = String(c.file_data);
  if (data.startsWith('data:')) return { inlineData: parseDataUrl(data, 'file_data') };
  return { inlineData: { mimeType: mimeTypeOfName(c.filename ?? '') ?? 'application/octet-stream', data } };
}

/** Thinking budgets for OpenAI's reasoning efforts (as Gemini's own OpenAI compatibility maps them). */
const THINKING_BUDGET: Record<string, number> = { none: 0, minimal: 0, low: 1024, medium: 8192, high: 24576 };
/** Models that cannot stop thinking take this least budget for "none". */
const ALWAYS_THINKS = /^gemini-2\.5-pro/;

function thinkingOf(model: string, effort: string): ThinkingConfig {
  const budget = THINKING_BUDGET[effort];
  return { thinkingBudget: budget === 0 && ALWAYS_THINKS.test(model) ? 128 : budget };
}

function generationConfig(body: ResponseRequest): GenerateContentConfig {
  const config: GenerateContentConfig = {};
  if (typeof body.temperature === 'number') config.temperature = body.temperature;
  if (typeof body.top_p === 'number') config.topP = body.top_p;
  if (typeof body.max_output_tokens === 'number') config.maxOutputTokens = body.max_output_tokens;
  const format = body.text?.format;
  if (format?.type === 'json_object') config.responseMimeType = 'application/json';
  if (format?.type === 'json_schema') Object.assign(config, { responseMimeType: 'application/json', responseJsonSchema: format.schema });
  if (body.reasoning?.effort) config.thinkingConfig = thinkingOf(modelIdOf(body.model), body.reasoning.effort);
  return config;
}

function toolConfig(body: ResponseRequest): GenerateContentConfig {
  const config: GenerateContentConfig = {};
  if (body.tools?.length) {
    config.tools = [
      {
        functionDeclarations: body.tools.map((t) => ({
          name: t.name,
          description: t.description ?? undefined,
          parametersJsonSchema: t.parameters ?? undefined,
        })),
      },
    ];
  }
  const choice = body.tool_choice;
  if (choice !== undefined && choice !== null) {
    const mode = choice === 'none' ? 'NONE' : choice === 'auto' ? 'AUTO' : 'ANY';
    const allowed = typeof choice === 'object' ? [choice.name] : undefined;
    config.toolConfig = { functionCallingConfig: { mode: mode as never, allowedFunctionNames: allowed } };
  }
  return config;
}

// ---------------------------------------------------------------------------
// Answers

const INCOMPLETE: Record<string, 'max_output_tokens' | 'content_filter'> = {
  MAX_TOKENS: 'max_output_tokens',
  SAFETY: 'content_filter',
  RECITATION: 'content_filter',
  BLOCKLIST: 'content_filter',
  PROHIBITED_CONTENT: 'content_filter',
  SPII: 'content_filter',
  IMAGE_SAFETY: 'content_filter',
};

export function responseUsageOf(r: GenerateContentResponse | undefined): ResponseUsage | null {
  const u = r?.usageMetadata;
  if (!u) return null;
  const input = u.promptTokenCount ?? 0;
  const reasoning = u.thoughtsTokenCount ?? 0;
  const output = (u.candidatesTokenCount ?? 0) + reasoning;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: u.cachedContentTokenCount ?? 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: reasoning },
    total_tokens: u.totalTokenCount ?? input + output,
  };
}

/**
 * Turns Gemini's answers (streamed chunks, or one whole answer) into output items and, as they
 * grow, the stream's item events: text opens a message item and streams into it; each function
 * call is an item of its own. `finish` closes what is open and answers the outcome.
 */
export class OutputWriter {
  private readonly items: OutputItem[] = [];
  private message: { item: OutputMessage; index: number } | null = null;
  private last: GenerateContentResponse | undefined;
  private calls = 0;

  constructor(
    /** The response's id without its `resp_` prefix: item ids derive from it, the same on every read. */
    private readonly idBase: string,
    private readonly emit: (event: ResponseEvent) => Promise<void> = async () => {},
    private readonly singleCall = false,
  ) {}

  async add(r: GenerateContentResponse): Promise<void> {
    this.last = r;
    const parts = r.candidates?.[0]?.content?.parts ?? [];
    for (const p of parts) {
      if (p.thought) continue;
      if (typeof p.text === 'string' && p.text) await this.text(p.text);
      if (p.functionCall && !(this.singleCall && this.calls > 0)) await this.call(p.functionCall.name ?? 'function', p.functionCall.args);
    }
  }

  async finish(): Promise<ResponseOutcome> {
    await this.closeMessage();
    const candidate = this.last?.candidates?.[0];
    const blocked = this.last?.promptFeedback?.blockReason;
    const reason = blocked ? 'content_filter' : (INCOMPLETE[candidate?.finishReason ?? ''] ?? null);
    return {
      status: reason ? 'incomplete' : 'completed',
      output: this.items,
      incomplete_details: reason ? { reason } : null,
      usage: responseUsageOf(this.last),
    };
  }

  private async text(delta: string) {
    if (!this.message) {
      const item: OutputMessage = {
        type: 'message',
        id: `msg_${this.idBase}${this.items.length}`,
        status: 'in_progress',
        role: 'assistant',
        content: [],
      };
      this.message = { item, index: this.items.length };
      this.items.push(item);
      await this.emit({ type: 'response.output_item.added', output_index: this.message.index, item: structuredClone(item) });
      item.content.push({ type: 'output_text', text: '', annotations: [], logprobs: [] });
      await this.emit({ type: 'response.content_part.added', ...this.where(), part: { ...item.content[0], text: '' } });
    }
    this.message.item.content[0].text += delta;
    await this.emit({ type: 'response.output_text.delta', ...this.where(), delta, logprobs: [] });
  }

  private where() {
    return { item_id: this.message!.item.id, output_index: this.message!.index, content_index: 0 };
  }

  private async closeMessage() {
    if (!this.message) return;
    const { item, index } = this.message;
    const part = item.content[0];
    await this.emit({ type: 'response.output_text.done', ...this.where(), text: part.text, logprobs: [] });
    await this.emit({ type: 'response.content_part.done', ...this.where(), part });
    item.status = 'completed';
    await this.emit({ type: 'response.output_item.done', output_index: index, item });
    this.message = null;
  }

  private async call(name: string, args: unknown) {
    await this.closeMessage();
    const index = this.items.length;
    const item: OutputFunctionCall = {
      type: 'function_call',
      id: `fc_${this.idBase}${index}`,
      call_id: `call_${this.idBase}${index}`,
      name,
      arguments: '',
      status: 'in_progress',
    };
    this.items.push(item);
    this.calls++;
    await this.emit({ type: 'response.output_item.added', output_index: index, item: structuredClone(item) });
    const json = JSON.stringify(args ?? {});
    await this.emit({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index: index, delta: json });
    item.arguments = json;
    await this.emit({ type: 'response.function_call_arguments.done', item_id: item.id, output_index: index, name, arguments: json });
    item.status = 'completed';
    await this.emit({ type: 'response.output_item.done', output_index: index, item });
  }
}
