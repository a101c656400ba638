/**
 * Where uploaded bytes wait for the worker. A local directory by default; the
 * interface is small so that a shared store can stand in for it when API and
 * workers run on different machines (a shared mount works as it is).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface StagedObject {
  bytes: number;
  sha256: string;
}

export interface StagingStore {
  /** Streams `source` into `key`, hashing and counting as it goes. Nothing is left behind on failure. */
  write(key: string, source: Readable): Promise<StagedObject>;
  /** A stream of the bytes in [start, end] (inclusive, as fs ranges are). */
  read(key: string, range?: { start: number; end: number }): Readable;
  /**
   * The bytes in [start, end] read into `buffer` again and again: each yielded
   * slice is only valid until the next one is asked for. For senders that
   * finish with each slice first; it spares allocating (and the kernel
   * re-faulting) a fresh buffer per read on the upload path.
   */
  readInto(key: string, range: { start: number; end: number }, buffer: Buffer): AsyncIterable<Buffer>;
  size(key: string): Promise<number | null>;
  delete(key: string): Promise<void>;
}

/** Counts and hashes bytes flowing through it. */
export class HashingCounter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void) {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

export class LocalStagingStore implements StagingStore {
  constructor(readonly dir: string) {}

  private pathOf(key: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(key)) throw new Error(`invalid staging key ${key}`);
    return path.join(this.dir, key);
  }

  async write(key: string, source: Readable): Promise<StagedObject> {
    await mkdir(this.dir, { recursive: true });
    const final = this.pathOf(key);
    const tmp = `${final}.${randomBytes(6).toString('hex')}.part`;
    const counter = new HashingCounter();
    try {
      await pipeline(source, counter, createWriteStream(tmp, { highWaterMark: 1 << 20 }));
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return { bytes: counter.bytes, sha256: counter.hash.digest('hex') };
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.pathOf(key), { ...range, highWaterMark: 1 << 20 });
  }

  async *readInto(key: string, range: { start: number; end: number }, buffer: Buffer): AsyncGenerator<Buffer> {
    const fh = await open(this.pathOf(key), 'r');
    try {
      for (let pos = range.start; pos <= range.end; ) {
        const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.length, range.end - pos + 1), pos);
        if (bytesRead === 0) throw new Error(`staged bytes of ${key} end before ${range.end + 1}`);
        pos += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await stat(this.pathOf(key))).size;
    } catch {
      return null;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }
}
