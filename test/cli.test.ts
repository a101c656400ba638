import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KEYS, startFerry, type Ferry } from './harness.js';
import { uploadLine } from '../src/client/progress.js';

const ROOT = path.resolve(import.meta.dirname, '..');

/** `ferry <args>` as a separate process talking to the service over HTTP. */
function ferryCli(
  ferry: Ferry,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, FERRY_BASE_URL: ferry.url, FERRY_API_KEY: KEYS.a, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('ferry submit and ferry status', () => {
  let ferry: Ferry;
  let docs: string;
  before(async () => {
    ferry = await startFerry();
    docs = path.join(ferry.tmp, 'docs');
    await mkdir(path.join(docs, 'notes'), { recursive: true });
    await writeFile(path.join(docs, 'report.pdf'), Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(300_000)]));
    await writeFile(path.join(docs, 'photo.png'), Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(50_000)]));
    await writeFile(path.join(docs, 'scan.jpg'), Buffer.concat([Buffer.from('ffd8ffe000104a464946', 'hex'), randomBytes(80_000)]));
    await writeFile(path.join(docs, 'notes', 'minutes.md'), '# Minutes\n\nThe ferry sails at nine.\n');
    await writeFile(path.join(docs, 'notes', 'figures.csv'), 'month,passengers\njan,120\nfeb,98\n');
    await writeFile(path.join(docs, '.DS_Store'), 'hidden');
  });
  after(() => ferry.close());

  test('a folder of mixed documents: uploaded with progress, one batch, results JSONL in document order', { timeout: 60_000 }, async () => {
    const out = path.join(ferry.tmp, 'results.jsonl');
    const run = await ferryCli(ferry, ['submit', docs, '--prompt', 'Summarise this document.', '--out', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Uploading \[#+\] 100% {2}5\/5 files {2}\d+\/\d+ kB/);
    assert.match(run.stderr, /Batch batch_\S+ completed \[#+\] 5 completed, 0 failed, 5 total/);
    // Ends with what the batch used and cost, from the usage ledger.
    const spent = /Used (\d+) input tokens \(0 cached\), (\d+) output; cost \$(\d+\.\d+) at the configured prices\./.exec(run.stderr);
    assert.ok(spent, run.stderr);
    assert.ok(Number(spent[1]) > 0 && Number(spent[2]) > 0);
    const results = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      results.map((r) => r.custom_id),
      ['docs/notes/figures.csv', 'docs/notes/minutes.md', 'docs/photo.png', 'docs/report.pdf', 'docs/scan.jpg'],
    );
    const types: Record<string, string> = {
      'docs/notes/figures.csv': 'text/csv',
      'docs/notes/minutes.md': 'text/markdown',
      'docs/photo.png': 'image/png',
      'docs/report.pdf': 'application/pdf',
      'docs/scan.jpg': 'image/jpeg',
    };
    for (const r of results) {
      assert.equal(r.error, null);
      const answer = r.response.body.choices[0].message.content as string;
      assert.match(answer, /files=files\/\S+\(/, 'the document reached the model as a file');
      assert.ok(answer.includes(`(${types[r.custom_id]},`), `${r.custom_id} went as ${types[r.custom_id]}: ${answer}`);
      assert.match(answer, /text=Summarise this document\.$/);
    }

    const batchId = /Batch (batch_\S+) created/.exec(run.stderr)![1];
    const status = await ferryCli(ferry, ['status', batchId]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`Batch ${batchId} completed .* 5 completed, 0 failed, 5 total`));
    const json = JSON.parse((await ferryCli(ferry, ['status', batchId, '--json'])).stdout);
    assert.equal(json.status, 'completed');
    assert.equal(json.metadata.source, 'ferry submit');
  });

  test('a document the service refuses is reported in the results; stdout carries them; exit code 3', { timeout: 60_000 }, async () => {
    const mixed = path.join(ferry.tmp, 'mixed');
    await mkdir(mixed);
    await writeFile(path.join(mixed, 'a.txt'), 'plain text');
    await writeFile(path.join(mixed, 'b.exe'), Buffer.concat([Buffer.from('4d5a', 'hex'), randomBytes(2000)]));
    const run = await ferryCli(ferry, ['submit', path.join(mixed, 'a.txt'), path.join(mixed, 'b.exe'), '-p', 'Read it.'], {
      FERRY_BASE_URL: `${ferry.url}/v1`,
    });
    assert.equal(run.code, 3, run.stderr);
    const results = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(results.length, 2);
    assert.match(results[0].response.body.choices[0].message.content, /text=Read it\.$/);
    assert.equal(results[1].error.code, 'upload_failed');
    assert.match(results[1].error.message, /415/);
  });

  test('usage errors exit with 2', async () => {
    const none = await ferryCli(ferry, ['submit', ferry.tmp]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--prompt/);
    const missing = await ferryCli(ferry, ['status', 'batch_nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404/);
    // A window the service would refuse is refused before anything is uploaded.
    const uploadsBefore = (await ferry.client().files.list({ limit: 1000 })).data.length;
    const window = await ferryCli(ferry, ['submit', ferry.tmp, '-p', 'x', '--completion-window', '48h']);
    assert.equal(window.code, 2);
    assert.match(window.stderr, /--completion-window: "completion_window" must be "24h"/);
    assert.equal((await ferry.client().files.list({ limit: 1000 })).data.length, uploadsBefore);
  });

  test('a service it cannot reach, or that refuses every document, exits with 1', async () => {
    const doc = path.join(ferry.tmp, 'alone.txt');
    await writeFile(doc, 'a document');
    const away = await ferryCli(ferry, ['submit', doc, '-p', 'x', '--base-url', 'http://127.0.0.1:1']);
    assert.equal(away.code, 1);
    assert.match(away.stderr, /no document was accepted: Connection error/);
    const wrongKey = await ferryCli(ferry, ['submit', doc, '-p', 'x'], { FERRY_API_KEY: 'sk-wrong' });
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /no document was accepted: 401/);
  });
});

test('upload progress of small files counts files and says kB, not 0.0 MB', () => {
  assert.equal(uploadLine(12_000, 240_000, 1, 21), 'Uploading [#.......................] 4%  1/21 files  12/240 kB');
  assert.equal(uploadLine(240_000, 240_000, 21, 21), 'Uploading [########################] 100%  21/21 files  240/240 kB');
  // Large uploads count bytes: one big file is most of the wait.
  assert.equal(uploadLine(50e6, 100e6, 1, 2), 'Uploading [############............] 50%  1/2 files  50.0/100.0 MB');
});
