/**
 * The floor of the jobs benchmark: the least an HTTP-in, BullMQ, Gemini-SDK-out
 * pipeline costs on this machine. `floor.ts api` is a bare node:http server that
 * parses the JSON body, adds one BullMQ job and answers 202 (`floor.ts api-express`:
 * the same as one Express route with express.json()); `floor.ts worker`
 * runs each job with `@google/genai`'s generateContent against the emulator
 * (configured as Ferry configures it).
 * No auth, records, validation, mapping, events or logging: what is left is
 * the work any such service must do. bench/jobs.ts drives it exactly as it
 * drives Ferry, so the two figures compare like for like.
 *
 * Environment: REDIS_URL, FLOOR_PREFIX, PORT (api, api-express), GEMINI_BASE_URL and FLOOR_CONCURRENCY (worker).
 */
import http from 'node:http';
import { Queue, Worker } from 'bullmq';
import express from 'express';
import { createGenAI } from '../src/providers/gemini/client.js';

const connection = { url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', maxRetriesPerRequest: null };
const prefix = process.env.FLOOR_PREFIX ?? 'ferry-floor';
const removeOnComplete = { age: 3600, count: 10_000 };

if (process.argv[2] === 'api') {
  const queue = new Queue('floor', { connection, prefix, defaultJobOptions: { removeOnComplete } });
  await queue.waitUntilReady();
  http
    .createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        void (async () => {
          try {
            const body = JSON.parse(Buffer.concat(parts).toString('utf8'));
            const job = await queue.add('generate', body);
            res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ id: job.id, status: 'queued' }));
          } catch (err) {
            res.writeHead(400).end(String(err));
          }
        })();
      });
    })
    .listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'));
} else if (process.argv[2] === 'api-express') {
  // The same, through Express and its JSON parser: what the framework Ferry's API is built on costs.
  const queue = new Queue('floor', { connection, prefix, defaultJobOptions: { removeOnComplete } });
  await queue.waitUntilReady();
  const app = express();
  app.set('etag', false);
  app.post('/', express.json(), async (req, res) => {
    const job = await queue.add('generate', req.body);
    res.status(202).json({ id: job.id, status: 'queued' });
  });
  app.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'));
} else if (process.argv[2] === 'worker') {
  // The SDK as Ferry configures it (with its lean fetch), so the floor is the cheapest known way.
  const { ai } = createGenAI({ apiKey: 'bench', baseUrl: process.env.GEMINI_BASE_URL });
  const worker = new Worker(
    'floor',
    async (job) => {
      const { model, messages } = job.data as { model: string; messages: { content: string }[] };
      const res = await ai.models.generateContent({
        model,
        contents: messages.map((m) => ({ role: 'user', parts: [{ text: m.content }] })),
      });
      return { text: res.text, usage: res.usageMetadata };
    },
    { connection, prefix, concurrency: Number(process.env.FLOOR_CONCURRENCY ?? 16) },
  );
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
} else {
  process.stderr.write('usage: floor.ts api|api-express|worker\n');
  process.exit(2);
}
