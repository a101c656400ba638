/**
 * The rules of a response's life beyond a job's: which records a `resp_` id may name for a tenant,
 * the conversation a `previous_response_id` continues, and deleting.
 */
import { BadRequestError, NotFoundError } from '../core/errors.js';
import { isFinalJob, type JobRecord } from '../core/records/jobs.js';
import type { Services } from '../core/services.js';
import { jobIdOfResponse, responseStatus, type ResponseOutcome } from '../openai/response-object.js';
import type { InputItem } from '../openai/responses.js';
import { cancelJob, responseRequestOf } from './jobs.js';

/**
 * The response a tenant names by `resp_` id, or 404 naming `param`: another tenant's, a chat
 * job's, and a finished `store: false` response are not there for it (as OpenAI keeps those only
 * while they run).
 */
export async function ownedResponse(
  services: Services,
  id: string,
  tenant: string,
  admin: boolean,
  param = 'response_id',
): Promise<JobRecord> {
  const missing = () => new NotFoundError(`No response with id '${id}'.`, { param, code: 'response_not_found' });
  const jobId = jobIdOfResponse(id);
  if (!jobId) throw missing();
  const rec = await services.jobs.get(jobId);
  if (!rec || rec.type !== 'response' || (!admin && rec.tenant !== tenant)) throw missing();
  if (responseRequestOf(rec).store === false && isFinalJob(rec)) throw missing();
  return rec;
}

/**
 * The turns a new response continues from `previous_response_id`: the earlier response's own
 * context, its input and its output, in order. Copied into the new record, so a conversation
 * holds even when an earlier response in it expires or is deleted.
 */
export async function conversationOf(services: Services, previousId: string | null | undefined, tenant: string): Promise<InputItem[]> {
  if (!previousId) return [];
  const prev = await ownedResponse(services, previousId, tenant, false, 'previous_response_id');
  const status = responseStatus(prev);
  if (status !== 'completed' && status !== 'incomplete') {
    throw new BadRequestError(
      `Previous response '${previousId}' is ${status}: continue a conversation from a completed response (wait for it with GET /v1/responses/${previousId}?wait=30).`,
      { param: 'previous_response_id', code: 'previous_response_not_completed' },
    );
  }
  const output = (prev.result as ResponseOutcome | null)?.output ?? [];
  return [...(prev.context ?? []), ...(prev.input_items ?? []), ...output.map(asInputItem)];
}

function asInputItem(item: ResponseOutcome['output'][number]): InputItem {
  if (item.type === 'function_call')
    return { type: 'function_call', id: item.id, call_id: item.call_id, name: item.name, arguments: item.arguments };
  return { type: 'message', id: item.id, role: 'assistant', content: item.content.map((c) => ({ type: 'output_text', text: c.text })) };
}

/** Deletes a response: one still open is cancelled first, so no worker answers it afterwards. */
export async function deleteResponse(services: Services, rec: JobRecord): Promise<void> {
  if (!isFinalJob(rec)) await cancelJob(services, rec);
  await services.jobs.remove(rec.id);
}
