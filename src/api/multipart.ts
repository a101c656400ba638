/**
 * Streams a multipart upload (busboy) straight into the staging store while
 * collecting the form fields, whichever order they come in (the openai SDK
 * sends the file part first and the fields after it).
 */
import busboy from 'busboy';
import type { Request } from 'express';
import type { Readable } from 'node:stream';
import { BadRequestError, PayloadTooLargeError } from '../core/errors.js';
import type { StagedObject, StagingStore } from '../core/staging.js';

import type { FieldValue } from '../openai/files.js';

export interface ParsedUpload {
  fields: Record<string, FieldValue>;
  file: (StagedObject & { filename: string; partType: string }) | null;
}

/** `a` → a; `a[]` → array; `a[k]` → object (how SDKs encode arrays and objects in forms). */
function addField(fields: Record<string, FieldValue>, name: string, value: string) {
  const m = /^([^[\]]+)\[([^[\]]*)\]$/.exec(name);
  if (!m) {
    const prev = fields[name];
    if (prev === undefined) fields[name] = value;
    else fields[name] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    return;
  }
  const [, base, key] = m;
  if (key === '' || /^\d+$/.test(key)) {
    const prev = fields[base];
    fields[base] = Array.isArray(prev) ? [...prev, value] : prev === undefined ? [value] : [String(prev), value];
  } else {
    const prev = fields[base];
    fields[base] = { ...(typeof prev === 'object' && !Array.isArray(prev) ? prev : {}), [key]: value };
  }
}

export interface UploadOptions {
  staging: StagingStore;
  stagingKey: string;
  maxBytes: number;
  /** The name of the file's part: "file" (Files API) unless given ("data" for an upload's part). */
  filePart?: string;
  /**
   * Called as the file's bytes begin, with the fields before it and the file's size where the
   * request's length tells it; the file is then staged so that it can be read while it arrives.
   */
  onFileStart?: (start: FileStart) => void;
}

export interface FileStart {
  fields: Record<string, FieldValue>;
  filename: string;
  partType: string;
  /** Null unless the request has a Content-Length and the file is its last part (checked once it has arrived). */
  bytes: number | null;
}

/** How much of the body's start is kept to find where the file's bytes begin. */
const PREFIX_BYTES = 64 * 1024;

/**
 * The size of the file whose part begins in `prefix`, were it the body's last part: the body's
 * length less what comes before its bytes and the closing delimiter. Null when the part's headers
 * are not within `prefix`.
 */
export function lastPartSize(prefix: Buffer, boundary: string, part: string, contentLength: number): number | null {
  const delimiter = `--${boundary}\r\n`;
  for (let at = prefix.indexOf(delimiter); at >= 0; at = prefix.indexOf(delimiter, at + 1)) {
    if (at > 0 && prefix.toString('latin1', at - 2, at) !== '\r\n') continue;
    const headersEnd = prefix.indexOf('\r\n\r\n', at);
    if (headersEnd < 0) return null;
    const headers = prefix.toString('latin1', at + delimiter.length, headersEnd);
    if (!/filename\*?=/i.test(headers) || !new RegExp(`[;\\s]name="${part}"`, 'i').test(headers)) continue;
    const size = contentLength - (headersEnd + 4) - Buffer.byteLength(`\r\n--${boundary}--\r\n`);
    return size >= 0 ? size : null;
  }
  return null;
}

function boundaryOf(type: string): string | null {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  return m ? (m[1] ?? m[2]) : null;
}

/** The form's fields and its one file, staged under `stagingKey`; nothing is left staged when it fails. */
export async function parseUpload(req: Request, opts: UploadOptions): Promise<ParsedUpload> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(type)) {
    throw new BadRequestError('Expected a multipart/form-data body with a "file" part and a "purpose" field.', {
      code: 'invalid_content_type',
    });
  }
  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      // Busboy signals its limit when the size reaches it: one byte more, so that a file of exactly
      // the maximum (a 64 MiB part, the SDKs' default) is accepted.
      limits: { fileSize: opts.maxBytes + 1, files: 2, fields: 200, fieldSize: 64 * 1024, parts: 210 },
    });
  } catch (err) {
    throw new BadRequestError(`Malformed multipart request: ${(err as Error).message}`, { code: 'invalid_multipart' });
  }
  return new UploadReader(req, bb, opts).done;
}

/**
 * One upload being read. The first error is kept and answered once the staging write has
 * settled, so a refused upload never leaves bytes behind; later errors are its consequences.
 */
class UploadReader {
  readonly done: Promise<ParsedUpload>;
  private settle!: { resolve: (p: ParsedUpload) => void; reject: (err: Error) => void };
  private readonly fields: Record<string, FieldValue> = {};
  private file: ParsedUpload['file'] = null;
  private writing: Promise<void> | null = null;
  private current: Readable | null = null;
  private failure: Error | null = null;
  private finished = false;
  private refusing = false;
  /** The body's first bytes, kept while a file's start may still need them. */
  private prefix: Buffer[] | null = null;
  private stopKeeping = () => {};

  constructor(
    private readonly req: Request,
    private readonly bb: busboy.Busboy,
    private readonly opts: UploadOptions,
  ) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    bb.on('file', (name, stream, info) => this.onFile(name, stream, info));
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) this.fail(new BadRequestError(`Field "${name}" is too long.`, { param: name }));
      else addField(this.fields, name, value);
    });
    bb.on('partsLimit', () => this.fail(new BadRequestError('Too many parts in the multipart body.')));
    bb.on('fieldsLimit', () => this.fail(new BadRequestError('Too many fields in the multipart body.')));
    bb.on('filesLimit', () => this.fail(new BadRequestError('Send exactly one file part.', { param: 'file' })));
    bb.on('error', (err: Error) =>
      this.abort(new BadRequestError(`Malformed multipart request: ${err.message}`, { code: 'invalid_multipart' })),
    );
    bb.on('close', () => void this.finish());
    req.on('close', () => {
      if (!req.complete) this.abort(new BadRequestError('The request was aborted before the upload completed.'));
    });
    if (opts.onFileStart) this.keepPrefix();
    req.pipe(bb);
  }

  private fail(err: Error) {
    this.failure ??= err;
  }

  /** Listens before the parser does, so that a chunk is here by the time the parser finds a file in it. */
  private keepPrefix() {
    const parts: Buffer[] = (this.prefix = []);
    let kept = 0;
    const keep = (chunk: Buffer) => {
      parts.push(chunk);
      kept += chunk.length;
      if (kept >= PREFIX_BYTES) this.stopKeeping();
    };
    this.stopKeeping = () => this.req.off('data', keep);
    this.req.on('data', keep);
  }

  /** The file's size as the request's length tells it (see lastPartSize). */
  private declaredFileSize(part: string): number | null {
    const length = Number(this.req.headers['content-length']);
    const boundary = boundaryOf(this.req.headers['content-type'] ?? '');
    if (!this.prefix || !Number.isSafeInteger(length) || !boundary) return null;
    return lastPartSize(Buffer.concat(this.prefix), boundary, part, length);
  }

  private onFile(name: string, stream: Readable, info: busboy.FileInfo) {
    const part = this.opts.filePart ?? 'file';
    if (name !== part || this.writing) {
      stream.resume();
      const message =
        name === part ? 'Send exactly one file part.' : `Unexpected file part "${name}"; the file goes in the "${part}" part.`;
      this.fail(new BadRequestError(message, { param: name }));
      return;
    }
    // The part goes straight to the store: each stream between them costs every chunk of a large file.
    this.current = stream;
    stream.on('limit', () => {
      this.refuseRest(new PayloadTooLargeError(`The file is larger than the maximum of ${this.opts.maxBytes} bytes.`));
    });
    const onStart = this.opts.onFileStart;
    if (onStart) {
      const bytes = this.declaredFileSize(part);
      this.stopKeeping();
      this.prefix = null;
      // Best effort, and never a reason for the upload to fail.
      try {
        onStart({ fields: { ...this.fields }, filename: info.filename ?? 'file', partType: info.mimeType ?? '', bytes });
      } catch {
        // the file is received as ever
      }
    }
    this.writing = this.opts.staging.write(this.opts.stagingKey, stream, { followable: onStart !== undefined }).then(
      (staged) => {
        this.file = { ...staged, filename: info.filename ?? 'file', partType: info.mimeType ?? '' };
      },
      (err: Error) => this.refuseRest(this.failure ?? err),
    );
  }

  /**
   * The file will not be kept (over the limit, or the store failed): its write is ended with
   * `err` and nothing is committed. The rest of the body is read and dropped here, without the
   * parser, so that the client, still sending, gets the answer rather than a reset connection.
   */
  private refuseRest(err: Error) {
    this.fail(err);
    if (this.refusing) return;
    this.refusing = true;
    this.current?.destroy(err);
    this.req.unpipe(this.bb);
    if (this.req.complete) return void this.finish();
    this.req.on('end', () => void this.finish());
    this.req.resume();
  }

  private abort(err: Error) {
    this.fail(err);
    this.current?.destroy(err);
    void this.finish();
  }

  private async finish() {
    if (this.finished) return;
    this.finished = true;
    await this.writing;
    if (!this.failure) return this.settle.resolve({ fields: this.fields, file: this.file });
    await this.opts.staging.delete(this.opts.stagingKey).catch(() => {});
    this.settle.reject(this.failure);
  }
}
