/**
 * The sequential reader of a staged blob (see SequentialReader in
 * core/staging.ts), for the upload to Gemini: each range is served from
 * downloads of fixed-size segments, and the segment after the one being read
 * is already downloading, so the next range's first bytes are usually in
 * memory when the sender asks for them (it asks only after Gemini has
 * acknowledged the previous chunk). Memory stays at two segments and the
 * caller's buffer, whatever the blob's size.
 */
import type { Readable } from 'node:stream';
import type { SequentialReader } from '../../core/staging.js';

/** One download of bytes [start, end], kept as it arrives until handed out: at most its own length in memory. */
class Segment {
  /** The next byte to hand out. */
  pos: number;
  private chunks: Buffer[] = [];
  private ended = false;
  private error: unknown = null;
  private wake: (() => void) | null = null;
  private body: Readable | null = null;
  private cancelled = false;

  constructor(
    open: () => Promise<Readable>,
    readonly start: number,
    readonly end: number,
  ) {
    this.pos = start;
    open().then(
      (body) => {
        if (this.cancelled) return void body.destroy();
        this.body = body;
        body.on('data', (c: Buffer) => {
          this.chunks.push(c);
          this.notify();
        });
        body.on('end', () => {
          this.ended = true;
          this.notify();
        });
        body.on('error', (err) => this.fail(err));
      },
      (err: unknown) => this.fail(err),
    );
  }

  private fail(err: unknown) {
    this.error ??= err;
    this.notify();
  }

  private notify() {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** The next piece, at most `max` bytes; null once the whole segment has been handed out. */
  async next(max: number): Promise<Buffer | null> {
    for (;;) {
      if (this.pos > this.end) return null;
      const head = this.chunks[0];
      if (head) {
        const piece = head.length <= max ? head : head.subarray(0, max);
        if (piece === head) this.chunks.shift();
        else this.chunks[0] = head.subarray(max);
        this.pos += piece.length;
        return piece;
      }
      if (this.error) throw this.error;
      if (this.ended) throw new Error(`the download of bytes ${this.start}-${this.end} ended at ${this.pos}`);
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  cancel() {
    this.cancelled = true;
    this.chunks = [];
    this.body?.destroy();
  }
}

export interface BlobReaderSource {
  /** The blob's name, for messages. */
  name: string;
  /** The blob's size, or null when it does not exist. */
  size(): Promise<number | null>;
  /** A download of `count` bytes from `offset`. */
  open(offset: number, count: number): Promise<Readable>;
}

export class BlobReader implements SequentialReader {
  /** Contiguous: the first is being read, the one after it downloads ahead. */
  private segments: Segment[] = [];
  private size: number | null = null;

  constructor(
    private readonly source: BlobReaderSource,
    private readonly buffer: Buffer,
    private readonly segmentBytes: number,
    private readonly segmentsAhead: number,
  ) {}

  async *read(range: { start: number; end: number }): AsyncGenerator<Buffer> {
    const size = (this.size ??= await this.source.size());
    if (size === null) throw new Error(`no staged bytes under ${this.source.name}`);
    if (range.end >= size) throw new Error(`staged bytes of ${this.source.name} end before ${range.end + 1}`);
    // Read ahead from elsewhere (a resumed upload starts again at the offset the session holds): dropped.
    if (this.segments[0]?.pos !== range.start) this.drop();
    try {
      for (let pos = range.start; pos <= range.end;) {
        let filled = 0;
        // Pieces are copied into the caller's buffer so the sender writes a few large slices, not many small ones.
        while (filled < this.buffer.length && pos <= range.end) {
          const piece = await this.current(pos, size).next(Math.min(this.buffer.length - filled, range.end - pos + 1));
          if (piece === null) {
            this.segments.shift();
            continue;
          }
          piece.copy(this.buffer, filled);
          filled += piece.length;
          pos += piece.length;
        }
        yield this.buffer.subarray(0, filled);
      }
    } catch (err) {
      this.drop();
      throw err;
    }
  }

  /** The segment holding `pos`, with the next ones started behind it. */
  private current(pos: number, size: number): Segment {
    if (this.segments.length === 0) this.segments.push(this.segment(pos, size));
    for (let last = this.segments[this.segments.length - 1]; this.segments.length <= this.segmentsAhead && last.end + 1 < size;) {
      last = this.segment(last.end + 1, size);
      this.segments.push(last);
    }
    return this.segments[0];
  }

  private segment(start: number, size: number): Segment {
    const end = Math.min(start + this.segmentBytes, size) - 1;
    return new Segment(() => this.source.open(start, end - start + 1), start, end);
  }

  private drop() {
    for (const s of this.segments) s.cancel();
    this.segments = [];
  }

  async close(): Promise<void> {
    this.drop();
  }
}
