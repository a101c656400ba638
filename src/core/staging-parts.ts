/**
 * A staged object made of parts (an Upload's parts, sent one by one, in parallel, through any API
 * process), read as one object in the order the client completed it with: no pass copies the
 * parts into one. Its key ends in PARTS_SUFFIX and names a small manifest stored beside the parts;
 * every other key passes straight to the store, so whoever reads staged bytes (the upload to
 * Gemini or Azure, batch input) reads a composed file as any other.
 */
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FollowedObject, SequentialReader, StagedObject, StagingStore } from './staging.js';

export const PARTS_SUFFIX = '.parts';

export interface StagedPart {
  key: string;
  bytes: number;
}

/** The key of an object composed of parts. */
export const composedKey = (id: string) => `${id}${PARTS_SUFFIX}`;

const isComposed = (key: string) => key.endsWith(PARTS_SUFFIX);

export class PartedStaging implements StagingStore {
  constructor(readonly inner: StagingStore) {}

  get location(): string {
    return this.inner.location;
  }

  /** Records `parts`, in order, as the object `key` (a composedKey). */
  async compose(key: string, parts: StagedPart[]): Promise<StagedObject> {
    if (!isComposed(key)) throw new Error(`a composed key ends in ${PARTS_SUFFIX}: ${key}`);
    return this.inner.write(key, Readable.from([Buffer.from(JSON.stringify(parts))]));
  }

  /** Drops the manifest of `key`, keeping its parts (a completion refused after composing them). */
  async decompose(key: string): Promise<void> {
    if (isComposed(key)) await this.inner.delete(key);
  }

  write(key: string, source: Readable, opts?: { followable?: boolean }): Promise<StagedObject> {
    return this.inner.write(key, source, opts);
  }

  async sweepUnfinished(idleMs: number): Promise<number> {
    return (await this.inner.sweepUnfinished?.(idleMs)) ?? 0;
  }

  /** Plain keys, where the store can follow a write (an Upload's parts are never followed). */
  async follow(key: string, buffer: Buffer): Promise<FollowedObject | null> {
    if (isComposed(key) || !this.inner.follow) return null;
    return this.inner.follow(key, buffer);
  }

  read(key: string, range?: { start: number; end: number }): Readable {
    if (!isComposed(key)) return this.inner.read(key, range);
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    void this.pipeParts(key, out, range).catch((err: Error) => out.destroy(err));
    return out;
  }

  private async pipeParts(key: string, out: PassThrough, range?: { start: number; end: number }) {
    for (const slice of slices(await this.manifest(key), range)) {
      await pipeline(this.inner.read(slice.key, slice.range), out, { end: false });
    }
    out.end();
  }

  reader(key: string, buffer: Buffer): SequentialReader {
    if (!isComposed(key)) return this.inner.reader(key, buffer);
    return new PartsReader(this.inner, this.manifest(key), buffer);
  }

  async size(key: string): Promise<number | null> {
    if (!isComposed(key)) return this.inner.size(key);
    const parts = await this.manifest(key).catch(() => null);
    if (!parts) return null;
    // Every part still there, whole: otherwise the object is not.
    const sizes = await Promise.all(parts.map((p) => this.inner.size(p.key)));
    return sizes.every((s, i) => s === parts[i].bytes) ? parts.reduce((n, p) => n + p.bytes, 0) : null;
  }

  async delete(key: string): Promise<void> {
    if (isComposed(key)) {
      const parts = await this.manifest(key).catch(() => []);
      await Promise.all(parts.map((p) => this.inner.delete(p.key)));
    }
    await this.inner.delete(key);
  }

  copySourceIn(account: string, key: string): ((ttlMs: number) => Promise<string>) | null {
    // Parts are not one blob: the service cannot copy them as one.
    if (isComposed(key)) return null;
    return this.inner.copySourceIn?.(account, key) ?? null;
  }

  private async manifest(key: string): Promise<StagedPart[]> {
    const chunks: Buffer[] = [];
    for await (const c of this.inner.read(key)) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as StagedPart[];
  }
}

/** The parts' ranges that make up [start, end] of the whole (inclusive), in order. */
function slices(parts: StagedPart[], range?: { start: number; end: number }) {
  const total = parts.reduce((n, p) => n + p.bytes, 0);
  const start = range?.start ?? 0;
  const end = Math.min(range?.end ?? total - 1, total - 1);
  const out: Array<{ key: string; range: { start: number; end: number } }> = [];
  let at = 0;
  for (const p of parts) {
    const from = Math.max(start, at);
    const to = Math.min(end, at + p.bytes - 1);
    if (from <= to) out.push({ key: p.key, range: { start: from - at, end: to - at } });
    at += p.bytes;
  }
  return out;
}

/**
 * SequentialReader over parts: each range is read from the parts it spans, one part's reader open
 * at a time (they share the caller's buffer, which a reader also reads ahead into).
 */
class PartsReader implements SequentialReader {
  private current: { key: string; reader: SequentialReader } | null = null;

  constructor(
    private readonly inner: StagingStore,
    private readonly parts: Promise<StagedPart[]>,
    private readonly buffer: Buffer,
  ) {}

  async *read(range: { start: number; end: number }): AsyncGenerator<Buffer> {
    for (const slice of slices(await this.parts, range)) {
      if (this.current?.key !== slice.key) {
        await this.close();
        this.current = { key: slice.key, reader: this.inner.reader(slice.key, this.buffer) };
      }
      yield* this.current.reader.read(slice.range);
    }
  }

  async close(): Promise<void> {
    const open = this.current;
    this.current = null;
    await open?.reader.close();
  }
}
