/**
 * The response object as OpenAI shapes it, built from Ferry's job record at every stage (queued,
 * in progress, final), its stream events and its webhook events. A response's id is its job's
 * (`job-X` is `resp_X`), so /v1/jobs lists responses beside completions and nothing maps ids.
 */
import type { JobRecord, JobStatus } from '../core/records/jobs.js';
import type { InputItem, ResponseRequest } from './responses.js';

export interface OutputText {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs: unknown[];
}
export interface OutputMessage {
  type: 'message';
  id: string;
  status: 'in_progress' | 'completed';
  role: 'assistant';
  content: OutputText[];
}
export interface OutputFunctionCall {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: 'in_progress' | 'completed';
}
export type OutputItem = OutputMessage | OutputFunctionCall;

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/** What a finished call produced: the part of the response the model decides. */
export interface ResponseOutcome {
  status: 'completed' | 'incomplete';
  output: OutputItem[];
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null;
  usage: ResponseUsage | null;
  /** The tier the call ran at (`default` when a Flex call fell back); absent in answers stored before it was kept. */
  service_tier?: string;
}

export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled';

const JOB_PREFIX = 'job-';
const RESPONSE_PREFIX = 'resp_';

export const responseIdOf = (jobId: string) => RESPONSE_PREFIX + jobId.slice(JOB_PREFIX.length);
/** The job id a `resp_` id names, or null for an id that is not a response's. */
export const jobIdOfResponse = (id: string) => (id.startsWith(RESPONSE_PREFIX) ? JOB_PREFIX + id.slice(RESPONSE_PREFIX.length) : null);

const STATUS: Record<JobStatus, ResponseStatus> = {
  queued: 'queued',
  waiting_for_files: 'queued',
  waiting_for_quota: 'queued',
  running: 'in_progress',
  succeeded: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

const responseRequestOf = (rec: JobRecord) => rec.request as ResponseRequest;

/** The status a response shows: its job's, or for a finished call the outcome's (completed or incomplete). */
export function responseStatus(rec: JobRecord): ResponseStatus {
  const outcome = rec.result as ResponseOutcome | null;
  return rec.status === 'succeeded' && outcome ? outcome.status : STATUS[rec.status];
}

/** The response object for a record, as it stands (or as `status` and `outcome` say, for a stream's events). */
export function responseObject(rec: JobRecord, status = responseStatus(rec), outcome = rec.result as ResponseOutcome | null) {
  const body = responseRequestOf(rec);
  const final = status === 'completed' || status === 'incomplete';
  return {
    id: responseIdOf(rec.id),
    object: 'response' as const,
    created_at: rec.created_at,
    status,
    background: body.background === true,
    error: status === 'failed' && rec.error ? { code: rec.error.code ?? 'server_error', message: rec.error.message } : null,
    incomplete_details: final ? (outcome?.incomplete_details ?? null) : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: null,
    model: rec.model,
    output: final ? (outcome?.output ?? []) : [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    service_tier: outcome?.service_tier ?? (body.service_tier && body.service_tier !== 'auto' ? body.service_tier : 'default'),
    store: body.store !== false,
    temperature: body.temperature ?? 1,
    text: { format: body.text?.format ?? { type: 'text' }, verbosity: 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: (body.tools ?? []).map((t) => ({ ...t, strict: t.strict ?? true })),
    top_p: body.top_p ?? 1,
    truncation: 'disabled',
    usage: final ? (outcome?.usage ?? null) : null,
    user: body.user ?? null,
    safety_identifier: body.safety_identifier ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    metadata: rec.metadata ?? {},
  };
}

export type ResponseObject = ReturnType<typeof responseObject>;

/** A stream event before it is numbered: the type and its fields. */
export type ResponseEvent = { type: string } & Record<string, unknown>;

/** Final statuses' webhook and stream event types. */
export const FINAL_EVENT: Record<'completed' | 'incomplete' | 'failed' | 'cancelled', string> = {
  completed: 'response.completed',
  incomplete: 'response.incomplete',
  failed: 'response.failed',
  cancelled: 'response.cancelled',
};

/**
 * The webhook event of a background response that has ended, in OpenAI's thin shape: the event
 * names the response, which the receiver retrieves.
 */
export function responseEvent(rec: JobRecord) {
  const status = responseStatus(rec);
  const type = FINAL_EVENT[status as keyof typeof FINAL_EVENT] as
    'response.completed' | 'response.incomplete' | 'response.failed' | 'response.cancelled';
  return { type, tenant: rec.tenant, objectId: rec.id, data: { id: responseIdOf(rec.id) }, webhookUrl: null };
}

/** An input item as input_items lists it (with the status OpenAI shows on every item). */
export function inputItemObject(item: InputItem): InputItem & { status: string } {
  return { status: 'completed', ...item };
}
