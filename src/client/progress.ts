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

export function uploadLine(bytes: number, totalBytes: number, files: number, totalFiles: number): string {
  const pct = totalBytes ? Math.floor((100 * bytes) / totalBytes) : 100;
  return `Uploading ${bar(totalBytes ? bytes / totalBytes : 1)} ${pct}%  ${(bytes / MB).toFixed(1)}/${(totalBytes / MB).toFixed(1)} MB  ${files}/${totalFiles} files`;
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
