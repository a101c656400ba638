/**
 * The fake model: validates a generateContent request and computes a deterministic reply that
 * reveals what reached the model (model, files, inline data, system instruction, texts).
 *
 * A fileData part names a file of the Files API, or (since January 2026) an https URL that Gemini
 * fetches itself: collectFacts leaves such a part's size and hash to be filled in by
 * remote-files.ts, so that validation stays synchronous and the fetch happens once the request is
 * known to be valid.
 *
 * Directives in the last user text: `CALL <name> <json-args>` (a declared function) answers a
 * functionCall; `FINISH:<REASON>` sets the finish reason; `BLOCK:<REASON>` blocks the prompt.
 */

import { randomBytes } from 'node:crypto';
import { failedPrecondition, invalidArgument } from './errors.js';
import { fileIdOf, stateOf, type EmulatedFiles } from './file-store.js';
import { planThinking, thoughtSummary, thoughtTokens, type ThinkingPlan } from './thinking.js';

/** Tokens charged per file or inline part, like an image on the real API. */
const TOKENS_PER_MEDIA_PART = 258;
const MAX_CANDIDATES = 8;
const FINISH_REASONS = new Set([
  'STOP',
  'MAX_TOKENS',
  'SAFETY',
  'RECITATION',
  'LANGUAGE',
  'OTHER',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'MALFORMED_FUNCTION_CALL',
  'IMAGE_SAFETY',
  'UNEXPECTED_TOOL_CALL',
  'TOO_MANY_TOOL_CALLS',
]);
/** Finish reasons for which the real API sends a candidate without content. */
const CONTENTLESS_REASONS = new Set(['SAFETY', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'MALFORMED_FUNCTION_CALL']);
const BLOCK_REASONS = new Set(['SAFETY', 'OTHER', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'IMAGE_SAFETY']);
/** The SDK's ServiceTier values; the enum's names (FLEX, SERVICE_TIER_FLEX) are taken too, as proto JSON takes them. */
const SERVICE_TIERS = new Set(['unspecified', 'standard', 'flex', 'priority']);
/** A fileUri of the Files API (e.g. https://generativelanguage.googleapis.com/v1beta/files/abc), as opposed to a URL to fetch. */
const FILES_API_PATH = /^\/(?:v1beta|v1alpha|v1)\/files\/[^/]+$/;

type Json = Record<string, unknown>;

export interface FileFact {
  name: string;
  mimeType: string;
  sizeBytes: number;
  sha256: string;
  /** What the file counts in the prompt: 258 tokens, a PDF's 258 a page. */
  tokens: number;
}

/** A fileData part naming an https URL: its fact is completed once the URL is fetched (remote-files.ts). */
export interface RemoteFileRef {
  url: string;
  fact: FileFact;
  /** The part gave a mimeType, which wins over the URL's Content-Type (as it does over a file's). */
  mimeTypeGiven: boolean;
}

export interface PromptFacts {
  model: string;
  /** Files of the store and fetched URLs, in prompt order. */
  files: FileFact[];
  /** The URLs among them, still to be fetched. */
  remote: RemoteFileRef[];
  inline: { mimeType: string; bytes: number }[];
  system: string[];
  texts: string[];
  functionResponses: { name: string; response: unknown }[];
  lastUserText: string;
  promptTokens: number;
  /** Absent when the model does not think for this request. */
  thinking?: ThinkingPlan;
}

export interface FunctionCall {
  name: string;
  args: Json;
}

export interface Candidate {
  index: number;
  finishReason: string;
  /** Absent for a function call or a blocked candidate. */
  text?: string;
  /** The thought summary, shown before the answer (thinkingConfig.includeThoughts). */
  thought?: string;
  functionCall?: FunctionCall;
  safetyRatings?: Json[];
}

export interface Reply {
  candidates: Candidate[];
  promptFeedback?: { blockReason: string };
  usageMetadata: {
    promptTokenCount: number;
    candidatesTokenCount: number;
    totalTokenCount: number;
    thoughtsTokenCount?: number;
    cachedContentTokenCount?: number;
  };
  modelVersion: string;
  responseId: string;
}

export const countWords = (text: string) => text.split(/\s+/).filter(Boolean).length;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates the request like the real API and gathers what the model would see. */
export function collectFacts(files: EmulatedFiles, model: string, body: unknown): PromptFacts {
  if (!isObject(body)) throw invalidArgument('Invalid JSON payload: the request body must be a JSON object.');
  const contents = body.contents;
  if (!Array.isArray(contents) || contents.length === 0) {
    throw invalidArgument('* GenerateContentRequest.contents: contents is not specified\n');
  }
  checkServiceTier(body.serviceTier);
  const facts: PromptFacts = {
    model,
    files: [],
    remote: [],
    inline: [],
    system: systemTexts(body.systemInstruction),
    texts: [],
    functionResponses: [],
    lastUserText: '',
    promptTokens: 0,
    thinking: planThinking(model, body.generationConfig),
  };
  contents.forEach((content, i) => {
    const where = `GenerateContentRequest.contents[${i}]`;
    if (!isObject(content) || !Array.isArray(content.parts) || content.parts.length === 0) {
      throw invalidArgument(`* ${where}.parts: contents.parts must not be empty.\n`);
    }
    const texts: string[] = [];
    content.parts.forEach((part, j) => collectPart(files, facts, texts, part, `${where}.parts[${j}]`));
    facts.texts.push(...texts);
    if ((content.role ?? 'user') === 'user') facts.lastUserText = texts.join(' ');
  });
  // The one token estimate: reported as usageMetadata.promptTokenCount and charged against the tpm
  // quota (quota.ts), so a client can correct its own estimate from the answers.
  const words = [...facts.texts, ...facts.system, ...facts.functionResponses.map((r) => JSON.stringify(r))].reduce(
    (sum, t) => sum + countWords(t),
    0,
  );
  facts.promptTokens = words + facts.files.reduce((sum, f) => sum + f.tokens, 0) + TOKENS_PER_MEDIA_PART * facts.inline.length;
  return facts;
}

function collectPart(files: EmulatedFiles, facts: PromptFacts, texts: string[], part: unknown, where: string): void {
  if (!isObject(part)) throw invalidArgument(`* ${where}: a part must be an object.\n`);
  if (typeof part.text === 'string') texts.push(part.text);
  if (isObject(part.inlineData)) {
    const { mimeType, data } = part.inlineData;
    if (typeof mimeType !== 'string' || !mimeType)
      throw invalidArgument(`* ${where}.inline_data.mime_type: mime type must be specified.\n`);
    if (typeof data !== 'string') throw invalidArgument(`* ${where}.inline_data.data: data must be base64.\n`);
    facts.inline.push({ mimeType, bytes: Buffer.from(data, 'base64').length });
  }
  if (isObject(part.fileData)) facts.files.push(fileFact(files, facts, part.fileData, where));
  if (isObject(part.functionResponse)) {
    facts.functionResponses.push({ name: String(part.functionResponse.name ?? ''), response: part.functionResponse.response ?? null });
  }
}

function fileFact(files: EmulatedFiles, facts: PromptFacts, fileData: Json, where: string): FileFact {
  const uri = fileData.fileUri;
  if (typeof uri !== 'string' || !uri) throw invalidArgument(`* ${where}.file_data.file_uri: file uri must be specified.\n`);
  const url = URL.canParse(uri) ? new URL(uri) : undefined;
  if ((url?.protocol === 'https:' || url?.protocol === 'http:') && !FILES_API_PATH.test(url.pathname)) {
    return remoteFact(facts, url, fileData, where);
  }
  const file = files.get(uri);
  const id = fileIdOf(uri);
  if (!file) throw invalidArgument(`File ${id} does not exist or you do not have permission to access it.`);
  if (stateOf(file) !== 'ACTIVE') throw failedPrecondition(`The File ${id} is not in an ACTIVE state and usage is not allowed.`);
  const mimeType = typeof fileData.mimeType === 'string' && fileData.mimeType ? fileData.mimeType : file.mimeType;
  return {
    name: `files/${file.id}`,
    mimeType,
    sizeBytes: file.sizeBytes,
    sha256: file.sha256Hex,
    tokens: TOKENS_PER_MEDIA_PART * (file.pages ?? 1),
  };
}

/**
 * A URL Gemini fetches itself: https only. Its name in the reply leaves out the query, where a
 * signed URL carries its signature.
 */
function remoteFact(facts: PromptFacts, url: URL, fileData: Json, where: string): FileFact {
  if (url.protocol !== 'https:') {
    throw invalidArgument(`* ${where}.file_data.file_uri: Gemini fetches https URLs only; ${url.protocol} is not supported.\n`);
  }
  const given = typeof fileData.mimeType === 'string' && fileData.mimeType !== '';
  const fact: FileFact = {
    name: `${url.origin}${url.pathname}`,
    mimeType: given ? (fileData.mimeType as string) : '',
    sizeBytes: 0,
    sha256: '',
    tokens: TOKENS_PER_MEDIA_PART,
  };
  facts.remote.push({ url: url.href, fact, mimeTypeGiven: given });
  return fact;
}

const tierName = (tier: unknown) => (typeof tier === 'string' ? tier.toLowerCase().replace(/^service_tier_/, '') : '');

/** The tier a (valid) request is served and billed at: `serviceTier`, standard when absent or unspecified. */
export function servedTier(body: unknown): string {
  const name = tierName((body as { serviceTier?: unknown } | null)?.serviceTier);
  return name && name !== 'unspecified' ? name : 'standard';
}

function checkServiceTier(tier: unknown): void {
  if (tier === undefined || tier === null) return;
  if (!SERVICE_TIERS.has(tierName(tier))) {
    throw invalidArgument(
      `Invalid value at 'service_tier' (type.googleapis.com/google.ai.generativelanguage.v1beta.ServiceTier), ${JSON.stringify(tier)}`,
    );
  }
}

function systemTexts(system: unknown): string[] {
  if (typeof system === 'string') return [system];
  if (!isObject(system) || !Array.isArray(system.parts)) return [];
  return system.parts.flatMap((p) => (isObject(p) && typeof p.text === 'string' ? [p.text] : []));
}

/** Computes the reply for validated facts and the request's generationConfig and tools. */
export function buildReply(facts: PromptFacts, body: Json): Reply {
  const config = isObject(body.generationConfig) ? body.generationConfig : {};
  const count = candidateCount(config.candidateCount);
  const modelVersion = facts.model.replace(/^models\//, '');
  const responseId = randomBytes(12).toString('base64url');
  const directive = (name: string) => new RegExp(`\\b${name}:([A-Z_]+)`).exec(facts.lastUserText)?.[1];

  const blockReason = directive('BLOCK');
  if (blockReason && BLOCK_REASONS.has(blockReason)) {
    return {
      candidates: [],
      promptFeedback: { blockReason },
      usageMetadata: usage(facts.promptTokens, 0),
      modelVersion,
      responseId,
    };
  }

  const call = requestedCall(facts.lastUserText, declaredFunctions(body.tools));
  const forced = directive('FINISH');
  const candidates = Array.from({ length: count }, (_, index) =>
    makeCandidate(facts, config, index, count, call, forced && FINISH_REASONS.has(forced) ? forced : undefined),
  );
  const outputTokens = candidates.reduce(
    (sum, c) => sum + countWords(c.text ?? (c.functionCall ? `${c.functionCall.name} ${JSON.stringify(c.functionCall.args)}` : '')),
    0,
  );
  const thoughts = facts.thinking ? thoughtTokens(facts.thinking, facts.promptTokens) : 0;
  if (facts.thinking?.includeThoughts) {
    const thought = thoughtSummary(thoughts, facts.lastUserText);
    for (const c of candidates) if (c.text !== undefined || c.functionCall) c.thought = thought;
  }
  return { candidates, usageMetadata: usage(facts.promptTokens, outputTokens, thoughts), modelVersion, responseId };
}

function makeCandidate(
  facts: PromptFacts,
  config: Json,
  index: number,
  count: number,
  call: FunctionCall | 'malformed' | undefined,
  forcedReason: string | undefined,
): Candidate {
  if (call === 'malformed') return { index, finishReason: 'MALFORMED_FUNCTION_CALL' };
  if (call) return { index, finishReason: 'STOP', functionCall: call };
  if (forcedReason && CONTENTLESS_REASONS.has(forcedReason)) {
    const safetyRatings =
      forcedReason === 'SAFETY' ? [{ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true }] : undefined;
    return { index, finishReason: forcedReason, ...(safetyRatings ? { safetyRatings } : {}) };
  }
  const json = config.responseMimeType === 'application/json';
  let text = json ? jsonReply(facts, count > 1 ? index : undefined) : textReply(facts) + (count > 1 ? ` #${index}` : '');
  text = cutAtStopSequence(text, config.stopSequences);
  const limit = typeof config.maxOutputTokens === 'number' && config.maxOutputTokens > 0 ? Math.floor(config.maxOutputTokens) : undefined;
  const truncated = limit !== undefined ? truncateWords(text, limit) : text;
  const finishReason = forcedReason ?? (truncated !== text ? 'MAX_TOKENS' : 'STOP');
  return { index, finishReason, text: truncated };
}

/** e.g. `model=gemini-2.0-flash | files=files/abc(application/pdf,1234 bytes,sha256=…) | inline=image/png(67 bytes) | system=… | text=…` */
function textReply(facts: PromptFacts): string {
  const segments = [`model=${facts.model}`];
  const add = (label: string, values: string[], sep = ', ') => {
    if (values.length) segments.push(`${label}=${values.join(sep)}`);
  };
  add(
    'files',
    facts.files.map((f) => `${f.name}(${f.mimeType},${f.sizeBytes} bytes,sha256=${f.sha256})`),
  );
  add(
    'inline',
    facts.inline.map((p) => `${p.mimeType}(${p.bytes} bytes)`),
  );
  add('system', facts.system, ' / ');
  add(
    'functionResponse',
    facts.functionResponses.map((r) => `${r.name}${JSON.stringify(r.response)}`),
    ' / ',
  );
  add('text', facts.texts, ' / ');
  return segments.join(' | ');
}

/** With responseMimeType application/json the same facts come as a JSON object. */
function jsonReply(facts: PromptFacts, candidate: number | undefined): string {
  return JSON.stringify({
    model: facts.model,
    files: facts.files,
    inline: facts.inline,
    system: facts.system.join(' / '),
    functionResponses: facts.functionResponses,
    text: facts.texts.join(' / '),
    ...(candidate !== undefined ? { candidate } : {}),
  });
}

function candidateCount(raw: unknown): number {
  if (raw === undefined || raw === null) return 1;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > MAX_CANDIDATES) {
    throw invalidArgument(`* GenerateContentRequest.generation_config.candidate_count: must be between 1 and ${MAX_CANDIDATES}.\n`);
  }
  return raw;
}

function declaredFunctions(tools: unknown): Set<string> {
  const names = new Set<string>();
  if (!Array.isArray(tools)) return names;
  for (const tool of tools) {
    if (!isObject(tool) || !Array.isArray(tool.functionDeclarations)) continue;
    for (const decl of tool.functionDeclarations) {
      if (isObject(decl) && typeof decl.name === 'string') names.add(decl.name);
    }
  }
  return names;
}

/**
 * `CALL <name> <json-args>` naming a declared function; the args run from the first "{" to the last
 * "}" and must be a JSON object, else the call is 'malformed'.
 */
function requestedCall(text: string, declared: Set<string>): FunctionCall | 'malformed' | undefined {
  const match = /\bCALL\s+([A-Za-z_][\w.-]*)/.exec(text);
  if (!match || !declared.has(match[1])) return undefined;
  const rest = text.slice(match.index + match[0].length).trimStart();
  if (!rest.startsWith('{')) return { name: match[1], args: {} };
  try {
    const args: unknown = JSON.parse(rest.slice(0, rest.lastIndexOf('}') + 1));
    return isObject(args) ? { name: match[1], args } : 'malformed';
  } catch {
    return 'malformed';
  }
}

function cutAtStopSequence(text: string, stops: unknown): string {
  if (!Array.isArray(stops)) return text;
  let end = text.length;
  for (const stop of stops) {
    if (typeof stop !== 'string' || !stop) continue;
    const at = text.indexOf(stop);
    if (at !== -1 && at < end) end = at;
  }
  return text.slice(0, end);
}

/** Keeps the first `limit` words (original spacing kept); the same string when it has no more. */
export function truncateWords(text: string, limit: number): string {
  const word = /\S+/g;
  let count = 0;
  for (let m = word.exec(text); m; m = word.exec(text)) {
    if (++count === limit) {
      const end = m.index + m[0].length;
      return /\S/.test(text.slice(end)) ? text.slice(0, end) : text;
    }
  }
  return text;
}

/** Thought tokens count in the total, as Gemini bills them with the output. */
const usage = (prompt: number, output: number, thoughts = 0) => ({
  promptTokenCount: prompt,
  candidatesTokenCount: output,
  totalTokenCount: prompt + output + thoughts,
  ...(thoughts > 0 ? { thoughtsTokenCount: thoughts } : {}),
});
