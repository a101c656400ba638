/**
 * Where uploaded bytes wait for the worker. A local directory by default; the
 * interface is small so that a shared store can stand in for it when API and
 * workers run on different machines (a shared mount works as it is).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { SNIFF_BYTES } from './mime.js';
import { pipeline } from 'node:stream/promises';

export interface StagedObject {
  bytes: number;
  sha256: string;
  /** The first HEAD_BYTES (fewer if the object is smaller), for type detection. */
  head: Buffer;
}

/** How much of an object's start a write keeps (what file-type detection reads). */
export const HEAD_BYTES = SNIFF_BYTES;

export interface StagingStore {
  /** Where the bytes live, as every process names it (a directory and its host, or a container): what a file records as staged by. */
  readonly location: string;
  /**
   * Streams `source` into `key`, hashing and counting as it goes. Nothing is left behind on failure.
   * `followable`: another process may read the bytes while they are written (see `follow`).
   */
  write(key: string, source: Readable, opts?: { followable?: boolean }): Promise<StagedObject>;
  /** A stream of the bytes in [start, end] (inclusive, as fs ranges are). */
  read(key: string, range?: { start: number; end: number }): Readable;
  /** A reader of `key` for one sequential upload, reading into `buffer` (see SequentialReader). */
  reader(key: string, buffer: Buffer): SequentialReader;
  size(key: string): Promise<number | null>;
  /**
   * `key` read as it grows, while a followable write is still under way or after it: null if
   * there is nothing (yet) under that key, absent where a store cannot (a blob is readable only
   * once committed).
   */
  follow?(key: string, buffer: Buffer): Promise<FollowedObject | null>;
  delete(key: string): Promise<void>;
  /**
   * Removes writes that never finished (their process was killed mid-write) and have not grown for
   * `idleMs`; answers how many. Absent where unfinished writes leave nothing (a blob's uncommitted
   * blocks are dropped by the service).
   */
  sweepUnfinished?(idleMs: number): Promise<number>;
  /**
   * When the store is a blob container in storage account `account`: a read-only URL of `key`,
   * valid for `ttlMs`, for the account to copy it server-side (no byte through the worker). Absent
   * or null otherwise.
   */
  copySourceIn?(account: string, key: string): ((ttlMs: number) => Promise<string>) | null;
}

/**
 * Ranges of one staged object, read one after another into the same buffer
 * through one open file: each yielded slice is only valid until the next one
 * is asked for. For senders that finish with each slice first; it spares
 * allocating (and the kernel re-faulting) a fresh buffer per read on the
 * upload path. Once a range has been read, the first slice of the range that
 * follows it is read ahead, so the next chunk's first bytes are ready the
 * moment it is asked for.
 */
export interface SequentialReader {
  read(range: { start: number; end: number }): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

/** An object still being written: how much of it has landed, read as a SequentialReader. */
export interface FollowedObject extends SequentialReader {
  landed(): Promise<number>;
}

/**
 * Stores first make a directory or a container, then read: a source that fails meanwhile would
 * raise an unhandled error. Its error still reaches the reading that follows, and so the caller.
 */
export function holdEarlyErrors(source: Readable): Readable {
  return source.on('error', () => {});
}

/**
 * Counts and hashes the bytes of a stream as they are read, keeping its head, as a listener rather than a stream
 * in the pipe (one hop less for every chunk). Attach it in the same tick as the stream's reader:
 * a data listener starts the flow.
 */
export class ByteTally {
  private readonly hash = createHash('sha256');
  private readonly headParts: Buffer[] = [];
  private bytes = 0;
  readonly add = (data: Buffer | string) => {
    // A source of strings (a Readable of text) reaches the file as their UTF-8 bytes.
    const chunk = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.bytes < HEAD_BYTES) this.headParts.push(Buffer.from(chunk.subarray(0, HEAD_BYTES - this.bytes)));
    this.bytes += chunk.length;
    this.hash.update(chunk);
  };
  result(): StagedObject {
    return { bytes: this.bytes, sha256: this.hash.digest('hex'), head: Buffer.concat(this.headParts) };
  }
}

export class LocalStagingStore implements StagingStore {
  readonly location: string;

  constructor(readonly dir: string) {
    this.location = `${hostname()}:${dir}`;
  }

  private pathOf(key: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(key)) throw new Error(`invalid staging key ${key}`);
    return path.join(this.dir, key);
  }

  /** Where a followable write of `key` lands until it is complete (its key is new: one writer). */
  private followablePathOf(key: string): string {
    return `${this.pathOf(key)}.live.part`;
  }

  async write(key: string, source: Readable, opts: { followable?: boolean } = {}): Promise<StagedObject> {
    holdEarlyErrors(source);
    await mkdir(this.dir, { recursive: true });
    const final = this.pathOf(key);
    const tmp = opts.followable ? this.followablePathOf(key) : `${final}.${randomBytes(6).toString('hex')}.part`;
    const tally = new ByteTally();
    try {
      const done = pipeline(source, createWriteStream(tmp, { highWaterMark: 1 << 20 }));
      source.on('data', tally.add);
      await done;
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return tally.result();
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.pathOf(key), { ...range, highWaterMark: 1 << 20 });
  }

  reader(key: string, buffer: Buffer): SequentialReader {
    return new FileReader(this.pathOf(key), buffer);
  }

  async follow(key: string, buffer: Buffer): Promise<FollowedObject | null> {
    // The write renames its file when complete; an open handle reads on through the rename.
    const final = this.pathOf(key);
    for (const file of [final, this.followablePathOf(key), final]) {
      const fh = await open(file, 'r').catch(() => null);
      if (!fh) continue;
      const reader = new FileReader(file, buffer, fh);
      return Object.assign(reader, { landed: async () => (await fh.stat()).size });
    }
    return null;
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

  async sweepUnfinished(idleMs: number): Promise<number> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names.filter((n) => n.endsWith('.part'))) {
      const file = path.join(this.dir, name);
      const idle = await stat(file).then(
        (st) => Date.now() - st.mtimeMs > idleMs,
        () => false,
      );
      if (idle) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

/** SequentialReader over a local file. */
class FileReader implements SequentialReader {
  private handle: Promise<FileHandle> | null = null;
  /** The read ahead: where it starts and how many bytes it put in the buffer (0 if none or it failed). */
  private ahead: { pos: number; bytes: Promise<number> } | null = null;

  /** `opened`: a handle to read through (and close) instead of opening `file`. */
  constructor(
    private readonly file: string,
    private readonly buffer: Buffer,
    opened?: FileHandle,
  ) {
    if (opened) this.handle = Promise.resolve(opened);
  }

  async *read(range: { start: number; end: number }): AsyncGenerator<Buffer> {
    const fh = await (this.handle ??= open(this.file, 'r'));
    // A read ahead holds the buffer until it ends; one of another position is dropped.
    const ahead = this.ahead;
    this.ahead = null;
    let ready = ahead ? await ahead.bytes : 0;
    if (ahead?.pos !== range.start) ready = 0;
    for (let pos = range.start; pos <= range.end;) {
      const want = Math.min(this.buffer.length, range.end - pos + 1);
      const bytesRead = ready > 0 ? Math.min(ready, want) : (await fh.read(this.buffer, 0, want, pos)).bytesRead;
      ready = 0;
      if (bytesRead === 0) throw new Error(`staged bytes of ${this.file} end before ${range.end + 1}`);
      pos += bytesRead;
      yield this.buffer.subarray(0, bytesRead);
    }
    // Asked for more after the last slice: the sender is done with it, so the buffer is free.
    const next = range.end + 1;
    this.ahead = {
      pos: next,
      bytes: fh.read(this.buffer, 0, this.buffer.length, next).then(
        (r) => r.bytesRead,
        () => 0,
      ),
    };
  }

  async close(): Promise<void> {
    await this.ahead?.bytes;
    this.ahead = null;
    const fh = this.handle;
    this.handle = null;
    if (fh) await (await fh).close();
  }
}
