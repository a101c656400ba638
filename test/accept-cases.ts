/**
 * One request of each kind, accepted the way the API accepts it (domain/accept.ts), for the tests
 * that kill a process between acceptance's steps: the same builder runs in the child that dies and
 * in the test that sends the request again.
 */
import { Readable } from 'node:stream';
import { enqueueBatch, enqueueGenerate, enqueueUpload } from '../src/core/enqueue.js';
import { newId } from '../src/core/ids.js';
import { newFileRecord } from '../src/core/records/files.js';
import type { Services } from '../src/core/services.js';
import { nowSeconds } from '../src/core/time.js';
import { acceptOnce, type Accepted } from '../src/domain/accept.js';
import { newBatchRecord } from '../src/domain/batches.js';
import { newEmbeddingRecord, newJobRecord, newResponseRecord } from '../src/domain/jobs.js';
import { validateEmbeddingRequest } from '../src/openai/embeddings.js';
import { validateResponseRequest } from '../src/openai/responses.js';
import { validateChatRequest } from '../src/openai/chat.js';

export type Kind = 'job' | 'response' | 'embedding' | 'file' | 'batch';

const CHAT = { model: 'gemini-2.0-flash', messages: [{ role: 'user', content: 'Summarise the report.' }] };
const RESPONSE = { model: 'gemini-2.5-flash', input: 'Summarise the report.', background: true };
const EMBEDDING = { model: 'gemini-embedding-001', input: ['the report', 'its summary'] };
export const FILE_BYTES = Buffer.from('%PDF-1.4\nthe same bytes each time\n%%EOF\n');

/** Accepts one request of `kind` under `key`; a file's bytes are staged first under a key of their own, as the API does. */
export async function acceptRequest(
  services: Services,
  r: { kind: Kind; tenant: string; key: string; batchInput: string },
): Promise<Accepted<{ id: string; status: string; tenant: string }>> {
  const { kind, key, batchInput } = r;
  const TENANT = r.tenant;
  if (kind === 'job') {
    return acceptOnce(services, {
      store: services.jobs,
      record: newJobRecord({ id: newId('job'), tenant: TENANT, chat: validateChatRequest(CHAT) }),
      idempotencyKey: key,
      fingerprintOf: [CHAT],
      enqueue: (job) => enqueueGenerate(services, job),
    });
  }
  if (kind === 'response' || kind === 'embedding') {
    const id = newId('job');
    const record =
      kind === 'response'
        ? newResponseRecord({ id, tenant: TENANT, response: validateResponseRequest(RESPONSE) })
        : newEmbeddingRecord({ id, tenant: TENANT, embedding: validateEmbeddingRequest(EMBEDDING) });
    return acceptOnce(services, {
      store: services.jobs,
      record,
      idempotencyKey: key,
      fingerprintOf: [kind === 'response' ? RESPONSE : EMBEDDING],
      enqueue: (job) => enqueueGenerate(services, job),
    });
  }
  if (kind === 'file') {
    const id = newId('file');
    const staged = await services.staging.write(id, Readable.from([FILE_BYTES]));
    const record = newFileRecord({
      id,
      tenant: TENANT,
      filename: 'report.pdf',
      purpose: 'user_data',
      bytes: staged.bytes,
      sha256: staged.sha256,
      mime_type: 'application/pdf',
      storage: 'gemini',
      contentRetentionSeconds: 3600,
    });
    const accepted = await acceptOnce(services, {
      store: services.files,
      record,
      idempotencyKey: key,
      fingerprintOf: [staged.sha256],
      enqueue: (f) => enqueueUpload(services, f.id),
    });
    if (!accepted.created) await services.staging.delete(id);
    return accepted;
  }
  const body = { input_file_id: batchInput, endpoint: '/v1/chat/completions', completion_window: '24h' };
  return acceptOnce(services, {
    store: services.batches,
    record: newBatchRecord({
      id: newId('batch', Date.now(), '_'),
      tenant: TENANT,
      params: { ...body, windowSeconds: 86400, metadata: null, execution: 'direct', outputExpiresAfterSeconds: null },
      createdAt: nowSeconds(),
    }),
    idempotencyKey: key,
    fingerprintOf: [body],
    enqueue: (batch) => enqueueBatch(services, batch),
  });
}
