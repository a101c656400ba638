/**
 * The examples of README.md and docs/ run as a reader runs them: every code block whose info string
 * says `run` (```js run, ```python run, ```sh run) against a freshly started `ferry all` with what
 * `npm start` gives a reader (the embedded emulator, a development key made in its data directory,
 * log level info), in a directory holding the documents the examples name. Each block gets the
 * service's address and key as the docs tell the reader to set them (OPENAI_BASE_URL and
 * OPENAI_API_KEY; the command line finds the development key through FERRY_DATA_DIR) and must exit
 * 0; a failure names the block's file and line. The one setting beyond `npm start`'s is
 * WEBHOOK_ALLOW_PRIVATE_NETWORKS=1, which the webhook example says it needs for a receiver on this
 * machine. Also: every relative link of the docs leads to a file and heading that exist.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brokenLinks, pythonWithOpenAI, root, run, runnableBlocks, type CodeBlock } from './docs-blocks.js';
import { cleanUpSpawned, freePort, spawnFerry } from './harness.js';

const BLOCK_TIMEOUT_MS = 120_000;
const blocks = runnableBlocks();

/** A small PDF whose one page says `text` (the emulator counts its pages; Gemini would read it). */
function pdf(text: string, padding = 0): Buffer {
  const content = `BT /F1 12 Tf 72 720 Td (${text}) Tj ET`;
  const head = [
    '%PDF-1.4',
    '1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj',
    '2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj',
    '3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >> endobj',
    `4 0 obj << /Length ${content.length} >> stream`,
    content,
    'endstream endobj',
  ].join('\n');
  // A scan is large: its bulk as a stream of bytes nothing refers to.
  const bulk =
    padding > 0
      ? Buffer.concat([Buffer.from(`\n5 0 obj << /Length ${padding} >> stream\n`), randomBytes(padding), Buffer.from('\nendstream endobj')])
      : Buffer.alloc(0);
  return Buffer.concat([Buffer.from(head), bulk, Buffer.from('\ntrailer << /Root 1 0 R >>\n%%EOF\n')]);
}

/** The documents the examples name, as a reader would have them beside the example. */
function writeDocuments(dir: string) {
  writeFileSync(path.join(dir, 'report.pdf'), pdf('Quarterly report: revenue rose 12% to 4.1M.'));
  writeFileSync(path.join(dir, 'contract.pdf'), pdf('Supply contract between Acme and Beta; either may end it with 90 days notice.'));
  writeFileSync(path.join(dir, 'scan.pdf'), pdf('A scanned ledger.', 12 * 1024 * 1024));
  mkdirSync(path.join(dir, 'contracts'));
  writeFileSync(path.join(dir, 'contracts', 'lease.pdf'), pdf('Lease between Acme and Gamma, ending 2027.'));
  writeFileSync(path.join(dir, 'contracts', 'supply.pdf'), pdf('Supply contract between Acme and Beta.'));
}

/** The command that runs a block, written to a file in `dir`. */
function command(block: CodeBlock, dir: string, python: string | Error): { cmd: string; args: string[] } | { skip: string } {
  const name = `${block.file.replace(/[^\w]+/g, '-')}-${block.line}`;
  if (block.lang === 'js') {
    // An ES module inside the checkout: `import OpenAI from 'openai'` resolves from its node_modules.
    const file = path.join(dir, `${name}.mjs`);
    writeFileSync(file, block.code);
    return { cmd: process.execPath, args: [file] };
  }
  if (block.lang === 'python') {
    if (python instanceof Error) return { skip: `the Python openai SDK is not available: ${python.message}` };
    const file = path.join(dir, `${name}.py`);
    writeFileSync(file, block.code);
    return { cmd: python, args: [file] };
  }
  if (block.lang === 'sh') {
    const file = path.join(dir, `${name}.sh`);
    writeFileSync(file, block.code);
    // A failing command fails the block, as it would stop a reader.
    return { cmd: 'bash', args: ['-e', '-o', 'pipefail', file] };
  }
  throw new Error(`${block.file}:${block.line}: a block marked run must be js, python or sh, not "${block.lang}"`);
}

describe('the examples of README.md and docs/, run against a fresh `ferry all`', () => {
  let child: ChildProcess;
  let base = '';
  let devKey = '';
  let tmp = '';
  let work = '';
  let prefix = '';
  let banner = '';
  const errorLines: string[] = [];
  let python: string | Error;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ferry-docs-'));
    // The examples' directory is inside the checkout, so that node finds `openai` and `npx ferry` the project.
    work = path.join(root, 'node_modules', '.cache', `ferry-docs-${randomBytes(4).toString('hex')}`);
    mkdirSync(work, { recursive: true });
    writeDocuments(work);
    prefix = `ferry-docs-${randomBytes(4).toString('hex')}`;
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const venv = pythonWithOpenAI().catch((err: Error) => err);
    child = spawnFerry(
      'all',
      {
        PORT: String(port),
        HOST: '127.0.0.1',
        REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
        FERRY_REDIS_PREFIX: prefix,
        FERRY_DATA_DIR: path.join(tmp, 'data'),
        FERRY_STAGING_DIR: path.join(tmp, 'staging'),
        FERRY_LOG_LEVEL: 'info',
        // What `npm start` leaves unset (an empty value is unset): the development key, the embedded emulator.
        FERRY_API_KEYS: '',
        FERRY_API_KEYS_FILE: '',
        FERRY_ADMIN_KEY: '',
        GEMINI_API_KEY: '',
        GEMINI_BASE_URL: '',
        NODE_ENV: '',
        // The webhook example's receiver listens on this machine, as the example says.
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1',
      },
      { logs: true },
    );
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (/^\{.*"level":(5|6)\d/.test(line)) errorLines.push(line);
    });
    child.stderr!.on('data', (d: Buffer) => (banner += d));
    const deadline = Date.now() + 90_000;
    for (;;) {
      assert.equal(child.exitCode, null, `ferry all exited early:\n${banner}`);
      const ok = await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      assert.ok(Date.now() < deadline, `ferry all did not become ready:\n${banner}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    devKey = readFileSync(path.join(tmp, 'data', 'dev-api-key'), 'utf8').trim();
    python = await venv;
  });

  after(() => cleanUpSpawned({ child, prefix, dirs: [tmp, work], graceMs: 15_000 }));

  test('the docs mark their examples, the quickstarts among them', () => {
    const where = (b: CodeBlock) => `${b.file}:${b.line}`;
    for (const lang of ['js', 'python', 'sh'])
      assert.ok(
        blocks.some((b) => b.lang === lang),
        `no ${lang} block is marked run`,
      );
    assert.ok(
      blocks.some((b) => b.file === 'README.md' && b.lang === 'js') && blocks.some((b) => b.file === 'README.md' && b.lang === 'python'),
      `the README's quickstarts are marked run (found: ${blocks.map(where).join(', ')})`,
    );
  });

  test('the banner shows the base URL and the development key the quickstart tells the reader to export', () => {
    assert.match(devKey, /^sk-ferry-dev-/);
    // The banner's text, its box and line wrapping aside.
    const text = banner.replace(/[┌┐└┘─│]/g, ' ').replace(/\s+/g, ' ');
    assert.ok(text.includes(`(OpenAI base URL: ${base}/v1)`), banner);
    assert.ok(text.includes(`API key: ${devKey}`), banner);
  });

  for (const block of blocks) {
    test(`${block.file}:${block.line} (${block.lang})`, { timeout: BLOCK_TIMEOUT_MS + 10_000 }, async (t) => {
      const how = command(block, work, python);
      if ('skip' in how) return t.skip(how.skip);
      const env: NodeJS.ProcessEnv = {};
      // The reader's shell, without settings of the test run that would steer the SDKs or the command line.
      for (const [k, v] of Object.entries(process.env)) if (!/^(OPENAI_|FERRY_|NODE_TEST_CONTEXT$)/.test(k)) env[k] = v;
      Object.assign(env, {
        OPENAI_BASE_URL: `${base}/v1`,
        OPENAI_API_KEY: devKey,
        // `npx ferry` against a service elsewhere than its default address, its key found where `ferry all` keeps it.
        FERRY_BASE_URL: base,
        FERRY_DATA_DIR: path.join(tmp, 'data'),
      });
      const r = await run(how.cmd, how.args, { cwd: work, env, timeoutMs: BLOCK_TIMEOUT_MS });
      // What the example printed last, shown beside the test's name.
      for (const line of r.stdout.trim().split('\n').slice(-3)) if (line) t.diagnostic(line.slice(0, 160));
      assert.equal(
        r.code,
        0,
        `The ${block.lang} example at ${block.file}:${block.line} ${r.timedOut ? `did not end within ${BLOCK_TIMEOUT_MS / 1000} s` : `exited ${r.code}`}.\n--- stderr ---\n${r.stderr.slice(-4000)}\n--- stdout ---\n${r.stdout.slice(-4000)}`,
      );
    });
  }

  test('every relative link of the README and the docs leads to a file and heading that exist', () => {
    assert.deepEqual(brokenLinks(), []);
  });

  test('afterwards the service is alive, with no error in its log', async () => {
    assert.equal(child.exitCode, null, `ferry all exited:\n${banner}`);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.deepEqual(errorLines, [], 'no error-level log lines');
  });
});
