/**
 * Streams a multipart upload (busboy) straight into the staging store while
 * collecting the form fields, whichever order they come in (the openai SDK
 * sends the file part first and the fields after it).
 */
import busboy from 'busboy';
import type { Request } from 'express';
import { Transform, type Readable } from 'node:stream';
import { BadRequestError, PayloadTooLargeError } from '../core/errors.js';
import { SNIFF_BYTES } from '../core/mime.js';
import type { StagedObject, StagingStore } from '../core/staging.js';

import type { FieldValue } from '../openai/files.js';

export interface ParsedUpload {
  fields: Record<string, FieldValue>;
  file: (StagedObject & { filename: string; partType: string; head: Buffer }) | null;
}

/** Passes bytes through, keeping the first few for type detection. */
class HeadCapture extends Transform {
  private parts: Buffer[] = [];
  private size = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void) {
    if (this.size < SNIFF_BYTES) {
      this.parts.push(chunk.subarray(0, SNIFF_BYTES - this.size));
      this.size += Math.min(chunk.length, SNIFF_BYTES - this.size);
    }
    cb(null, chunk);
  }
  head(): Buffer {
    return Buffer.concat(this.parts);
  }
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
      limits: { fileSize: opts.maxBytes, files: 2, fields: 200, fieldSize: 64 * 1024, parts: 210 },
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
  private current: HeadCapture | null = null;
  private failure: Error | null = null;
  private finished = false;

  constructor(
    req: Request,
    bb: busboy.Busboy,
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
    req.pipe(bb);
  }

  private fail(err: Error) {
    this.failure ??= err;
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
    const capture = new HeadCapture();
    this.current = capture;
    // Errors end the staging pipeline through `capture`; the part itself is drained by busboy.
    stream.on('error', (err: Error) => capture.destroy(err));
    stream.on('limit', () => {
      const err = new PayloadTooLargeError(`The file is larger than the maximum of ${this.opts.maxBytes} bytes.`);
      this.fail(err);
      stream.unpipe(capture);
      capture.destroy(err);
      stream.resume();
    });
    this.writing = this.opts.staging.write(this.opts.stagingKey, stream.pipe(capture)).then(
      (staged) => {
        this.file = { ...staged, filename: info.filename ?? 'file', partType: info.mimeType ?? '', head: capture.head() };
      },
      (err: Error) => this.fail(err instanceof PayloadTooLargeError ? err : (this.failure ?? err)),
    );
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
