/** The documents of a `ferry submit`: found on disk, then uploaded (streamed) with a progress bar of bytes and files. */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type OpenAI from 'openai';
import { toStreamingFile } from 'openai';
import { ProgressLine, uploadLine } from './progress.js';
import { UsageError } from './target.js';

export interface Document {
  /** The batch line's custom_id: a file's path as given, or a folder's name and the path under it. */
  name: string;
  file: string;
  bytes: number;
}

export type Uploaded = Document & ({ fileId: string; error?: undefined } | { fileId?: undefined; error: string });

const posix = (p: string) => p.split(path.sep).join('/');

/** Files given, and every file under folders given (recursively, hidden ones skipped), each once, sorted by name. */
export async function findDocuments(args: string[]): Promise<Document[]> {
  const found = new Map<string, Document>();
  const names = new Set<string>();
  const add = async (file: string, name: string) => {
    const abs = path.resolve(file);
    if (found.has(abs)) return;
    let unique = name;
    for (let n = 2; names.has(unique); n++) unique = `${name}#${n}`;
    names.add(unique);
    found.set(abs, { name: unique, file: abs, bytes: (await stat(abs)).size });
  };
  const walk = async (dir: string, prefix: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p, `${prefix}/${e.name}`);
      else if (e.isFile()) await add(p, `${prefix}/${e.name}`);
    }
  };
  for (const arg of args) {
    const s = await stat(arg).catch(() => null);
    if (!s) throw new UsageError(`no such file or folder: ${arg}`);
    if (s.isDirectory()) await walk(arg, path.basename(path.resolve(arg)));
    else await add(arg, posix(path.normalize(arg)));
  }
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface UploadOptions {
  model: string;
  storage?: string;
  concurrency?: number;
}

/**
 * Uploads every document (a few at once), never reading one whole into
 * memory. A document the service refuses (say, a type Gemini cannot take)
 * is reported and kept with its error, so that the results still name it.
 */
export async function uploadDocuments(client: OpenAI, docs: Document[], opts: UploadOptions): Promise<Uploaded[]> {
  const totalBytes = docs.reduce((s, d) => s + d.bytes, 0);
  const progress = new ProgressLine();
  const sent = new Array<number>(docs.length).fill(0);
  let finished = 0;
  const show = (force = false) =>
    progress.update(
      uploadLine(
        sent.reduce((a, b) => a + b, 0),
        totalBytes,
        finished,
        docs.length,
      ),
      force,
    );
  const out = new Array<Uploaded>(docs.length);
  let next = 0;

  async function one(i: number): Promise<Uploaded> {
    const doc = docs[i];
    async function* counted() {
      for await (const chunk of createReadStream(doc.file, { highWaterMark: 1 << 20 })) {
        sent[i] += (chunk as Buffer).length;
        show();
        yield chunk as Buffer;
      }
    }
    try {
      const extra = { target_model_names: [opts.model], ...(opts.storage ? { target_storage: opts.storage } : {}) };
      const file = await client.files.create({
        file: toStreamingFile(counted(), path.basename(doc.file)),
        purpose: 'user_data',
        ...extra,
      } as never);
      return { ...doc, fileId: file.id };
    } catch (err) {
      process.stderr.write(`\nferry: ${doc.name} was not uploaded: ${(err as Error).message}\n`);
      return { ...doc, error: (err as Error).message };
    } finally {
      sent[i] = doc.bytes;
      finished++;
      show(true);
    }
  }

  show(true);
  const workers = Array.from({ length: Math.min(opts.concurrency ?? 4, docs.length) }, async () => {
    while (next < docs.length) {
      const i = next++;
      out[i] = await one(i);
    }
  });
  await Promise.all(workers);
  progress.done(uploadLine(totalBytes, totalBytes, finished, docs.length));
  return out;
}
