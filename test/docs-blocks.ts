/**
 * The documentation as test material: the fenced code blocks of README.md and docs/**\/*.md (those
 * whose info string says `run` are examples the docs test runs), the relative links between the
 * pages, and a Python with the `openai` package to run the Python examples with.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '..');

/** A fenced code block of a Markdown file. */
export interface CodeBlock {
  /** The file, relative to the repository root. */
  file: string;
  /** The line of the opening fence (1-based). */
  line: number;
  /** The first word of the info string (`js`, `python`, `sh`, …). */
  lang: string;
  /** The info string's other words (`run` marks an example to run). */
  flags: string[];
  code: string;
}

/** README.md and every Markdown file under docs/, relative to the root, in a stable order. */
export function markdownFiles(): string[] {
  const found: string[] = ['README.md'];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.md')) found.push(rel);
    }
  };
  if (existsSync(path.join(root, 'docs'))) walk('docs');
  return found;
}

// An opening fence: up to any indentation (a block inside a list item), three or more backticks,
// and an info string without backticks (CommonMark: with one, the line is inline code, not a fence).
const OPENING = /^(\s*)(`{3,})([^`]*)$/;

/** The fenced code blocks of one file; a block's lines lose the indentation of its fence. */
export function codeBlocks(file: string, text: string): CodeBlock[] {
  const lines = text.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = OPENING.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, info] = open;
    const closing = new RegExp(`^\\s*\`{${fence.length},}\\s*$`);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !closing.test(lines[j]); j++) {
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j].trimStart());
    }
    if (j >= lines.length) throw new Error(`${file}:${i + 1}: a code block is never closed`);
    const [lang = '', ...flags] = info.trim().split(/\s+/).filter(Boolean);
    blocks.push({ file, line: i + 1, lang, flags, code: `${body.join('\n')}\n` });
    i = j;
  }
  return blocks;
}

/** Every block of the README and the docs whose info string says `run`. */
export function runnableBlocks(): CodeBlock[] {
  return markdownFiles().flatMap((f) => codeBlocks(f, readFileSync(path.join(root, f), 'utf8')).filter((b) => b.flags.includes('run')));
}

/** A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown file's headings (outside code blocks), a repeated one numbered as GitHub does. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of withoutCode(text, false).split('\n')) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = anchorOf(h[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The text with its fenced blocks blanked (line numbers kept) and, if `inline`, its inline code removed. */
function withoutCode(text: string, inline = true): string {
  const lines = text.split('\n');
  let fence: string | null = null;
  return lines
    .map((line) => {
      const open = OPENING.exec(line);
      if (fence === null && open) {
        fence = open[2];
        return '';
      }
      if (fence !== null) {
        if (new RegExp(`^\\s*\`{${fence.length},}\\s*$`).test(line)) fence = null;
        return '';
      }
      return inline ? line.replace(/(`+)[^`]*?\1/g, '') : line;
    })
    .join('\n');
}

/** Each relative link of the README and the docs whose file or heading does not exist, as `file:line: target`. */
export function brokenLinks(): string[] {
  const problems: string[] = [];
  const texts = new Map(markdownFiles().map((f) => [f, readFileSync(path.join(root, f), 'utf8')]));
  for (const [file, text] of texts) {
    withoutCode(text)
      .split('\n')
      .forEach((line, i) => {
        for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
          const target = m[1];
          if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
          const [p, anchor] = target.split('#');
          const to = p ? path.normalize(path.join(path.dirname(file), p)) : file;
          const where = `${file}:${i + 1}: ${target}`;
          if (!existsSync(path.join(root, to))) problems.push(`${where} (no such file)`);
          else if (anchor !== undefined) {
            const body = texts.get(to) ?? (to.endsWith('.md') ? readFileSync(path.join(root, to), 'utf8') : null);
            if (body === null || !anchors(body).has(anchor)) problems.push(`${where} (no such heading in ${to})`);
          }
        }
      });
  }
  return problems;
}

export { run, pythonWithOpenAI } from './python-sdk.js';
