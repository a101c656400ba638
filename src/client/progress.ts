/**
 * Progress on stderr (stdout may carry the results): on a terminal one line
 * redrawn in place, otherwise a plain line whenever it changes, at most once
 * a second, so that logs of pipelines stay readable.
 */
const MB = 1e6;

export class ProgressLine {
  private last = '';
  private lastAt = 0;
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY);
  }

  update(text: string, force = false): void {
    if (text === this.last) return;
    const now = Date.now();
    if (!this.tty && !force && now - this.lastAt < 1000) return;
    this.last = text;
    this.lastAt = now;
    this.out.write(this.tty ? `\r\x1b[K${text}` : `${text}\n`);
  }

  /** The final state of this line, then a new line. */
  done(text: string): void {
    this.update(text, true);
    if (this.tty) this.out.write('\n');
    this.last = '';
  }
}

export function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** Below this many bytes in all, progress counts files: a few small files say more by count than by MB. */
const BY_SIZE_FROM = 10 * MB;

export function uploadLine(bytes: number, totalBytes: number, files: number, totalFiles: number): string {
  const fraction = totalBytes >= BY_SIZE_FROM ? bytes / totalBytes : totalFiles ? files / totalFiles : 1;
  const pct = Math.floor(100 * Math.min(1, fraction));
  return `Uploading ${bar(fraction)} ${pct}%  ${files}/${totalFiles} files  ${size(bytes, totalBytes)}`;
}

function size(bytes: number, total: number): string {
  if (total >= MB) return `${(bytes / MB).toFixed(1)}/${(total / MB).toFixed(1)} MB`;
  return `${Math.ceil(bytes / 1000)}/${Math.ceil(total / 1000)} kB`;
}

export function batchLine(b: {
  id: string;
  status: string;
  request_counts?: { total: number; completed: number; failed: number };
}): string {
  const c = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
  const done = c.completed + c.failed;
  return `Batch ${b.id} ${b.status} ${bar(c.total ? done / c.total : 0)} ${c.completed} completed, ${c.failed} failed, ${c.total} total`;
}
