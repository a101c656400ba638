/**
 * The console at /console, in a real browser (Debian's Chromium, headless): a key, batches with
 * their progress, failed lines and downloads, a job's cancel, a dead letter's replay, files, usage,
 * and one tenant's batch out of another's sight. A screenshot of each page goes to test-artifacts/console/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { toFile } from 'openai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { consoleRouter } from '../src/api/console.js';
import { toErrorBody } from '../src/core/errors.js';
import { emit } from '../src/domain/webhooks.js';
import { createBatch, MODEL, requests, waitFinal } from './batch-helpers.js';
import { KEYS, eventually, jobWaitingForSlowFile, startFerry, type Ferry } from './harness.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(root, 'test-artifacts', 'console');

/** Chromium from the system packages, installed when missing; the reason when it cannot be. */
function ensureChromium(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const root = process.getuid?.() === 0;
  const sudo = !root && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (!root && !sudo) return `${CHROMIUM} is missing and apt-get needs root: run "apt-get install -y chromium" (or set CHROMIUM_PATH)`;
  const apt = (...args: string[]) =>
    spawnSync(sudo ? 'sudo' : 'apt-get', sudo ? ['-n', 'apt-get', ...args] : args, {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 600_000,
    }).status === 0;
  if (!apt('install', '-y', 'chromium') && apt('update')) apt('install', '-y', 'chromium');
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing and "apt-get install -y chromium" did not install it (or set CHROMIUM_PATH)`;
}

const skip = ensureChromium();
if (skip) process.stdout.write(`console tests skipped: ${skip}\n`);

/** A loopback receiver answering each path with its scripted statuses, then 200. */
function receiver() {
  const got: string[] = [];
  const script = new Map<string, number[]>();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      got.push(req.url ?? '');
      res.writeHead(script.get(req.url ?? '')?.shift() ?? 200).end();
    });
  });
  return { got, script, server };
}

test('without dist/console, /console answers an error naming npm run build', async () => {
  const app = express();
  app.use(consoleRouter(path.join(root, 'dist', 'no-console-here')));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { status, body } = toErrorBody(err);
    res.status(status).json(body);
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/console/`);
    assert.equal(res.status, 404);
    const { error } = await res.json();
    assert.equal(error.code, 'console_not_built');
    assert.match(error.message, /npm run build/);
  } finally {
    server.close();
  }
});

describe('console', { skip: skip ?? false }, () => {
  let ferry: Ferry;
  let browser: Browser;
  let page: Page;
  const rx = receiver();
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const go = async (hash: string) => {
    await page.goto(`${ferry.url}/console/${hash}`);
    await page.locator('header .who').waitFor();
  };
  const signIn = async (key: string) => {
    await page.goto(`${ferry.url}/console/`);
    await page.locator('#key, header .who').first().waitFor();
    if (await page.locator('header .who').count()) await page.click('header button');
    await page.fill('#key', key);
    await page.click('form button[type=submit]');
    await page.locator('header .who').waitFor();
  };

  before(async () => {
    const { buildConsole } = await import(pathToFileURL(path.join(root, 'console', 'build.mjs')).href);
    await buildConsole(root);
    mkdirSync(SHOTS, { recursive: true });
    await new Promise<void>((r) => rx.server.listen(0, '127.0.0.1', () => r()));
    ferry = await startFerry({ env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: '1', FERRY_WEBHOOK_RETRY_SCHEDULE: '0,0.2,0.2' } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
    page.on('dialog', (d) => void d.accept());
    page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
  });
  after(async () => {
    await browser?.close();
    await ferry?.close();
    rx.server.closeAllConnections();
    await new Promise((r) => rx.server.close(r));
  });

  test('the static files are served without a key; an unknown key is refused on the page', async () => {
    const res = await fetch(`${ferry.url}/console/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const bare = await fetch(`${ferry.url}/console`, { redirect: 'manual' });
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.get('location'), '/console/');
    await page.goto(`${ferry.url}/console`);
    await page.fill('#key', 'sk-not-a-key');
    await page.click('form button[type=submit]');
    await page.locator('.login .error', { hasText: 'does not know this key' }).waitFor();
    await shot('login');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
  });

  test('a tenant key: the header names its tenant, the key stays in sessionStorage, never in the URL', async () => {
    await ferry.client(KEYS.a).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello' }] });
    await signIn(KEYS.a);
    assert.match(await page.locator('#tenant').innerText(), /tenant-a/);
    assert.ok(!page.url().includes(KEYS.a));
    assert.equal(await page.evaluate(() => Object.values(sessionStorage).join()), KEYS.a);
  });

  test("a 200-line batch's progress bar reaches completed", { timeout: 60_000 }, async () => {
    await go('#/batches');
    const b = await createBatch(ferry.client(KEYS.a), requests(200, 'p'));
    const row = page.locator(`tr[data-id="${b.id}"]`);
    await row.waitFor();
    await row.locator('.status', { hasText: 'completed' }).waitFor({ timeout: 50_000 });
    await page.waitForFunction(
      (id) => document.querySelector(`tr[data-id="${id}"] [role=progressbar]`)?.getAttribute('aria-valuenow') === '200',
      b.id,
    );
    assert.match(await row.locator('.progress em').innerText(), /200 \/ 200/);
    await shot('batches');
  });

  test("a batch with failing lines: its page lists them, a line's error opens, the output downloads", { timeout: 60_000 }, async () => {
    const client = ferry.client(KEYS.a);
    ferry.emulator.setFaults([{ route: 'generate', kind: '400', count: 3 }]);
    const b = await waitFinal(client, (await createBatch(client, requests(20, 'e'))).id, 50);
    ferry.emulator.setFaults([]);
    assert.deepEqual(b.request_counts, { total: 20, completed: 17, failed: 3 });
    await go(`#/batches/${b.id}`);
    await page.locator('#failed-lines tbody tr').nth(2).waitFor();
    assert.equal(await page.locator('#failed-lines tbody tr').count(), 3);
    await page.locator('#failed-lines tbody tr').first().click();
    const detail = await page.locator('#failed-lines tr.detail pre').innerText();
    assert.match(detail, /upstream_400/);
    assert.match(await page.locator('#failed-lines tbody tr').first().innerText(), /upstream_400/);
    assert.match(await page.locator('#timeline').innerText(), /created[\s\S]*in progress[\s\S]*finalizing[\s\S]*completed/);
    await shot('batch');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-output')]);
    assert.equal(download.suggestedFilename(), `${b.id}-output.jsonl`);
    const saved = path.join(SHOTS, 'output.jsonl');
    await download.saveAs(saved);
    const lines = readFileSync(saved, 'utf8').split('\n').filter(Boolean);
    assert.equal(lines.length, 17);
    assert.equal(JSON.parse(lines[0]).response.status_code, 200);
  });

  test("a batch refused at validation lists its lines' errors", { timeout: 30_000 }, async () => {
    const client = ferry.client(KEYS.a);
    const b = await waitFinal(client, (await createBatch(client, [...requests(1, 'v'), 'not json'])).id, 20);
    assert.equal(b.status, 'failed');
    await go(`#/batches/${b.id}`);
    const errors = page.locator('h3:has-text("Validation errors") + table tbody tr');
    await errors.first().waitFor();
    assert.match(await errors.first().innerText(), /2\s+\S+/);
  });

  test('a dead-lettered delivery is replayed from the webhooks page and delivered', { timeout: 30_000 }, async () => {
    const port = (rx.server.address() as AddressInfo).port;
    rx.script.set('/dead', [500, 500, 500]);
    const ep = await (
      await ferry.fetch('/v1/webhook_endpoints', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: `http://127.0.0.1:${port}/dead` }),
      })
    ).json();
    await emit(ferry.services, { type: 'job.failed', tenant: 'tenant-a', objectId: 'job-dead', data: { id: 'job-dead' } });
    const dead = await eventually(
      async () => {
        const list = (await (await ferry.fetch(`/v1/webhook_deliveries?status=failed&endpoint_id=${ep.id}`)).json()).data;
        return list[0];
      },
      15_000,
      'a dead letter',
    );
    await go('#/webhooks');
    const row = page.locator(`tr[data-id="${dead.id}"]`);
    await row.locator('.status', { hasText: 'failed' }).waitFor();
    assert.equal(await row.locator('.attempt.bad').count(), 3);
    await shot('webhooks-dead-letter');
    await row.locator('button', { hasText: 'Replay' }).click();
    await row.locator('.status', { hasText: 'succeeded' }).waitFor({ timeout: 15_000 });
    assert.equal(await row.locator('.attempt.ok').count(), 1);
    assert.equal(rx.got.filter((p) => p === '/dead').length, 4);
    await shot('webhooks');
  });

  test('a waiting job is cancelled from its page', { timeout: 30_000 }, async () => {
    const { jobId } = await jobWaitingForSlowFile(ferry, 6000);
    await go(`#/jobs/${jobId}`);
    await page.click('#cancel-job');
    await page.locator('h2 .status', { hasText: 'cancelled' }).waitFor();
    assert.equal((await (await ferry.fetch(`/v1/jobs/${jobId}`)).json()).status, 'cancelled');
    await shot('job');
    await go('#/jobs');
    await page.locator('#jobs tbody tr').first().waitFor();
    await shot('jobs');
    ferry.emulator.setFaults([]);
  });

  test('files: status, storage and expiry listed; a file is deleted', async () => {
    const client = ferry.client(KEYS.a);
    const f = await client.files.create({ file: await toFile(Buffer.from('to delete'), 'delete-me.txt'), purpose: 'user_data' });
    await go('#/files');
    const row = page.locator(`tr[data-id="${f.id}"]`);
    await row.waitFor();
    await shot('files');
    await row.locator('button', { hasText: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
    assert.equal((await ferry.fetch(`/v1/files/${f.id}`)).status, 404);
  });

  test('usage and cost per model, exported as CSV', async () => {
    await go('#/usage');
    await page.locator('#usage tbody tr', { hasText: MODEL }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
    const saved = path.join(SHOTS, 'usage.csv');
    await download.saveAs(saved);
    const csv = readFileSync(saved, 'utf8').trim().split('\n');
    assert.equal(csv[0], 'tenant,model,service_tier,requests,input_tokens,cached_input_tokens,output_tokens,cost_usd');
    assert.ok(csv.some((l) => l.startsWith(`tenant-a,${MODEL},default,`)));
    await page.waitForFunction(() => Number(document.querySelector('#chart-requests')?.getAttribute('data-points')) > 0);
    await shot('usage');
  });

  test('the overview: counts, and the last hour drawn from the activity (work, calls against the admitted rate, uploads)', async () => {
    await go('#/overview');
    await page.locator('#overview .card').first().waitFor();
    await page.locator('.chart .uplot canvas').nth(4).waitFor();
    assert.equal(await page.locator('.chart .uplot').count(), 5);
    // Each of these charts holds buckets above zero: the lines and completions of the tests before, their calls, their uploads.
    for (const id of ['work', 'quota', 'uploads']) {
      await page.waitForFunction((id) => Number(document.querySelector(`#chart-${id}`)?.getAttribute('data-points')) > 0, id, {
        timeout: 15_000,
      });
    }
    // The admitted rate is sampled by a worker every 10 s: its line appears in the legend.
    await page.locator('#chart-quota .u-legend', { hasText: 'admitted' }).waitFor();
    // Drawn, not only laid out: the work chart's canvas has coloured pixels of its lines.
    const coloured = await page.evaluate(() => {
      const c = document.querySelector('#chart-work canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.abs(d[i] - d[i + 1]) + Math.abs(d[i + 1] - d[i + 2]) > 60) n++;
      return n;
    });
    assert.ok(coloured > 50, `${coloured} coloured pixels in the work chart`);
    await shot('overview');
  });

  test('a hidden tab gives up its long-poll and asks nothing; shown again, it asks at once', async () => {
    await go('#/batches');
    await page.locator('#batches tbody tr').first().waitFor();
    const asked: string[] = [];
    const ended: string[] = [];
    const onRequest = (r: any) => r.url().includes('/v1/') && asked.push(r.url());
    const onFailed = (r: any) => r.url().includes('/v1/') && ended.push(r.url());
    page.on('request', onRequest);
    page.on('requestfailed', onFailed);
    const setShown = (shown: boolean) =>
      page.evaluate((shown) => {
        Object.defineProperty(document, 'visibilityState', { value: shown ? 'visible' : 'hidden', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }, shown);
    try {
      await setShown(false);
      await page.waitForTimeout(300);
      assert.ok(
        ended.some((u) => u.includes('wait=')),
        'the held long-poll was given up',
      );
      const before = asked.length;
      await page.waitForTimeout(3000);
      assert.equal(asked.length, before, 'nothing asked while hidden');
      await setShown(true);
      await page.waitForTimeout(500);
      assert.ok(asked.length > before, 'asked again once shown');
    } finally {
      page.off('request', onRequest);
      page.off('requestfailed', onFailed);
      await setShown(true);
    }
  });

  test('responses are listed with the jobs; a response shows what was asked and its answer', async () => {
    const r = await ferry.client(KEYS.a).responses.create({ model: MODEL, input: 'What does a ferry carry?' });
    const jobId = `job-${r.id.slice('resp_'.length)}`;
    await go('#/jobs');
    await page.selectOption('#job-type', 'response');
    // Only responses once the filter has answered (the chat jobs of the tests before are gone).
    await page.waitForFunction(
      (id) => {
        const rows = [...document.querySelectorAll('#jobs tbody tr')];
        return rows.some((r) => r.getAttribute('data-id') === id) && rows.every((r) => r.children[1]?.textContent === 'response');
      },
      jobId,
      { timeout: 10_000 },
    );
    await page.click(`#jobs tr[data-id="${jobId}"] a`);
    await page.locator('#answer').waitFor();
    assert.equal(await page.locator('#asked').innerText(), 'What does a ferry carry?');
    assert.equal(await page.locator('#answer').innerText(), r.output_text);
    assert.match(await page.locator('h2').innerText(), new RegExp(r.id));
    await shot('response');
  });

  test("a webhook endpoint's secret is rotated from the page; the new one is shown once", async () => {
    await go('#/webhooks');
    const row = page.locator('#endpoints tbody tr').first();
    await row.locator('button', { hasText: 'Rotate secret' }).click();
    const notice = await page.locator('#rotated-secret').innerText();
    assert.match(notice, /whsec_/);
  });

  test("a tenant key cannot see another tenant's batch; the admin key's header says admin", { timeout: 30_000 }, async () => {
    const theirs = await createBatch(ferry.client(KEYS.b), requests(2, 'b'));
    await go('#/batches');
    await page.locator('#batches tbody tr').first().waitFor();
    assert.equal(await page.locator(`tr[data-id="${theirs.id}"]`).count(), 0);
    await go(`#/batches/${theirs.id}`);
    await page.locator('[role=alert]').waitFor();
    assert.equal(await page.locator('h2', { hasText: theirs.id }).count(), 1);
    assert.equal(await page.locator('.progress').count(), 0, 'nothing of the batch is shown');
    await shot('other-tenant-batch');
    await signIn(KEYS.b);
    await go(`#/batches/${theirs.id}`);
    await page.locator('h2 .status').waitFor();
  });

  test("the admin key sees every tenant's batches, and one tenant's with the filter", { timeout: 30_000 }, async () => {
    const bs = await createBatch(ferry.client(KEYS.b), requests(1, 'admin-b'));
    const as = await createBatch(ferry.client(KEYS.a), requests(1, 'admin-a'));
    await signIn(KEYS.admin);
    await go('#/batches');
    await page.locator(`tr[data-id="${bs.id}"]`).waitFor();
    await page.locator(`tr[data-id="${as.id}"]`).waitFor();
    // Every tenant's, each named.
    assert.equal(await page.locator(`tr[data-id="${bs.id}"] .owner`).innerText(), 'tenant tenant-b');
    assert.equal(await page.locator(`tr[data-id="${as.id}"] .owner`).innerText(), 'tenant tenant-a');
    await page.selectOption('#tenant-filter', 'tenant-b');
    await page.waitForFunction(
      ([a, b]) => !document.querySelector(`tr[data-id="${a}"]`) && document.querySelector(`tr[data-id="${b}"]`),
      [as.id, bs.id],
      { timeout: 10_000 },
    );
    await shot('admin-tenant-filter');
    // The filter holds across pages: the jobs are tenant b's too.
    await go('#/jobs');
    await page.locator('#jobs tbody tr').first().waitFor();
    const jobIds = await page.locator('#jobs tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    const theirs = new Set(((await (await ferry.fetch('/v1/jobs?limit=100', { key: KEYS.b })).json()) as any).data.map((j: any) => j.id));
    assert.ok(
      jobIds.every((id) => theirs.has(id)),
      'only tenant b’s jobs',
    );
  });
});
