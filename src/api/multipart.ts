/**
 * Streams a multipart upload (busboy) straight into the staging store while
 * collecting the form fields, whichever order they come in (the openai SDK
 * sends the file part first and the fields after it).
 */
import busboy from 'busboy';
import type { Request } from 'express';
import { Transform } from 'node:stream';
import { BadRequestError, PayloadTooLargeError } from '../core/errors.js';
import { SNIFF_BYTES } from '../core/mime.js';
import type { StagedObject, StagingStore } from '../core/staging.js';

export type FieldValue = string | string[] | Record<string, string>;

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

export function parseUpload(req: Request, opts: { staging: StagingStore; stagingKey: string; maxBytes: number }): Promise<ParsedUpload> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(type)) {
    return Promise.reject(
      new BadRequestError('Expected a multipart/form-data body with a "file" part and a "purpose" field.', {
        code: 'invalid_content_type',
      }),
    );
  }
  return new Promise<ParsedUpload>((resolve, reject) => {
    const fields: Record<string, FieldValue> = {};
    let file: ParsedUpload['file'] = null;
    let writing: Promise<void> | null = null;
    let current: HeadCapture | null = null;
    let failure: Error | null = null;
    let bb: busboy.Busboy;
    const fail = (err: Error) => {
      failure ??= err;
    };
    try {
      bb = busboy({
        headers: req.headers,
        defParamCharset: 'utf8',
        limits: { fileSize: opts.maxBytes, files: 2, fields: 200, fieldSize: 64 * 1024, parts: 210 },
      });
    } catch (err) {
      reject(new BadRequestError(`Malformed multipart request: ${(err as Error).message}`, { code: 'invalid_multipart' }));
      return;
    }
    bb.on('file', (name, stream, info) => {
      if (name !== 'file' || writing) {
        stream.resume();
        fail(
          new BadRequestError(
            name === 'file' ? 'Send exactly one file part.' : `Unexpected file part "${name}"; the file goes in the "file" part.`,
            { param: name },
          ),
        );
        return;
      }
      const capture = new HeadCapture();
      current = capture;
      capture.on('error', () => {}); // reported through the staging write's promise
      // Errors end the staging pipeline through `capture`; the part itself is drained by busboy.
      stream.on('error', (err: Error) => capture.destroy(err));
      stream.on('limit', () => {
        const err = new PayloadTooLargeError(`The file is larger than the maximum of ${opts.maxBytes} bytes.`);
        fail(err);
        stream.unpipe(capture);
        capture.destroy(err);
        stream.resume();
      });
      writing = opts.staging.write(opts.stagingKey, stream.pipe(capture)).then(
        (staged) => {
          file = { ...staged, filename: info.filename ?? 'file', partType: info.mimeType ?? '', head: capture.head() };
        },
        (err: Error) => fail(err instanceof PayloadTooLargeError ? err : (failure ?? err)),
      );
    });
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) fail(new BadRequestError(`Field "${name}" is too long.`, { param: name }));
      else addField(fields, name, value);
    });
    bb.on('partsLimit', () => fail(new BadRequestError('Too many parts in the multipart body.')));
    bb.on('fieldsLimit', () => fail(new BadRequestError('Too many fields in the multipart body.')));
    bb.on('filesLimit', () => fail(new BadRequestError('Send exactly one file part.', { param: 'file' })));
    const abort = (err: Error) => {
      fail(err);
      current?.destroy(err);
      void finish();
    };
    bb.on('error', (err: Error) =>
      abort(new BadRequestError(`Malformed multipart request: ${err.message}`, { code: 'invalid_multipart' })),
    );
    let finished = false;
    const finish = async () => {
      if (finished) return;
      finished = true;
      await writing;
      if (failure) {
        await opts.staging.delete(opts.stagingKey).catch(() => {});
        reject(failure);
      } else resolve({ fields, file });
    };
    bb.on('close', () => void finish());
    req.on('close', () => {
      if (!req.complete) abort(new BadRequestError('The request was aborted before the upload completed.'));
    });
    req.pipe(bb);
  });
}
