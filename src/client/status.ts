/**
 * `ferry status <batch>`: one read, run often from scripts and loops, so it is one plain HTTP GET
 * (node:http) rather than through the openai SDK, whose modules alone take longer to load than
 * the whole command should (about 0.25 s of 0.5 s, measured with `npm run bench -- start`).
 */
import http from 'node:http';
import https from 'node:https';
import type { Batch } from 'openai/resources/batches';
import { batchLine } from './progress.js';
import type { Target } from './target.js';

/** The batch as `GET /v1/batches/{id}` answers it; a refusal throws with its status and Ferry's message. */
export function readBatch(t: Target, id: string): Promise<Batch> {
  const url = new URL(`${t.baseUrl}/v1/batches/${encodeURIComponent(id)}`);
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(url, { headers: { authorization: `Bearer ${t.apiKey}`, accept: 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: { error?: { message?: string } } | undefined;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        if (res.statusCode === 200 && body) return resolve(body as Batch);
        reject(new Error(`${res.statusCode} ${body?.error?.message ?? text.slice(0, 200)}`));
      });
    });
    req.on('error', (err) => reject(new Error(`${url.origin} does not answer (${err.message}); is Ferry running there?`)));
  });
}

/** What `ferry status` prints of a batch. */
export function statusLines(b: Batch): string[] {
  const at = (t?: number | null) => (t ? new Date(t * 1000).toISOString() : '-');
  return [
    batchLine(b as never),
    `created ${at(b.created_at)}, expires ${at(b.expires_at)}, ended ${at(b.completed_at ?? b.failed_at ?? b.expired_at ?? b.cancelled_at)}`,
    `input ${b.input_file_id}, output ${b.output_file_id ?? '-'}, errors ${b.error_file_id ?? '-'}`,
    ...(b.errors?.data ?? []).map((e) => `error: ${e.message}`),
  ];
}
