/**
 * upload: how fast one large file goes through Ferry (API stages it, the
 * worker moves it to the Gemini emulator) compared with a plain streamed copy
 * of the same file to the same emulator, and how much memory each process
 * needs meanwhile.
 *
 *   BENCH_UPLOAD_BYTES   file size (default 1 GiB)
 *   BENCH_CPU_PROF=dir   run the emulator, API and worker with --cpu-prof, profiles in dir
 *                        (profiling slows them down: figures are then not comparable)
 *   BENCH_RUNTIME=tsx    run the sources through tsx instead of compiled JavaScript (see bench/lib.ts)
 *   BENCH_UPLOAD_ROUNDS  Ferry uploads, each followed by another plain copy (default 1); the
 *                        best of each kind is compared, which steadies figures on a busy machine
 *   BENCH_INGEST_ROUNDS  rounds of the ingest comparison (default 5): the openai SDK's files.create to
 *                        Ferry's API against the same call to a server that only drains the body,
 *                        alternating, medians compared (bench/ingest.ts); 0 skips it. With local
 *                        staging each round also sends it to a bare store (busboy, sha256, a file
 *                        on the staging disk): what storing the bytes costs here, apart from Ferry
 *   BENCH_OVERLAP_ROUNDS rounds of the overlap step (default 3; 0 skips it): with a wait before each
 *                        chunk request at the emulator (BENCH_OVERLAP_CHUNK_LATENCY_MS, default 50:
 *                        Gemini across a network), the file sent file first and fields first with its
 *                        length (the worker's upload to Gemini then begins while the API receives it),
 *                        each until processed, against the same request to a draining server
 *   BENCH_PARTED=0      skips the Uploads API step: the file in 64 MiB parts, 8 sent at a time by
 *                        the openai SDK, completed (the parts hashed in one pass) and uploaded; the
 *                        peak RSS targets cover it, as they come last
 *   BENCH_UPLOAD_STAGING=azure  staging in Azurite (FERRY_STAGING_CONTAINER) instead of a
 *                        directory; the worker leg's ceiling is then a plain copy of the staged
 *                        blob from the same Azurite, range by range, to the emulator, and a plain
 *                        range read of it is shown beside (bench/staging-azure.ts)
 *
 * The environment passes through to every process, so e.g. FERRY_UPLOAD_CHUNK_BYTES or
 * GLIBC_TUNABLES (malloc trimming, which decides how many page faults 1 MiB read buffers
 * cost) can be varied from the command line. CPU is reported per process and step as
 * total seconds, the kernel's share and minor page faults.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { geminiSha256Hex } from '../src/providers/gemini/files.js';
import {
  concatStream,
  envInt,
  fmtMB,
  fmtMs,
  fmtRate,
  httpRequest,
  mbps,
  now,
  round,
  settle,
  sleep,
  startStack,
  tempDir,
  verdict,
  waitFor,
  writeRandomFile,
  type Proc,
  type Section,
  type SectionContext,
  type SectionResult,
  type Stack,
} from './lib.js';
import { startAzureStaging, type AzureStaging } from './staging-azure.js';
import { measureIngest, measureParted, startDrain, type IngestRuns, type PartedRun } from './ingest.js';

const DEFAULT_BYTES = 1024 ** 3;
const WORKER_RATIO_TARGET = 0.9;
const INGEST_RATIO_TARGET = 0.9;
const OVERLAP_RATIO_TARGET = 0.9;
const RSS_TARGET_BYTES = 200e6;
/** Read size for both the plain copy and the multipart body (Ferry's staging reads use the same). */
const READ_HWM = 1 << 20;

const uploadBytes = () => envInt('BENCH_UPLOAD_BYTES', DEFAULT_BYTES);

type PlainRun = Awaited<ReturnType<typeof plainCopy>>;
type FerryRun = Awaited<ReturnType<typeof throughFerry>>;

type CpuSnapshot = Record<string, { user: number; sys: number; minorFaults: number } | null>;
/** CPU seconds used over a step: total, the part spent in the kernel, and minor page faults. */
type CpuUse = { total: number; sys: number; faults: number } | null;

const cpuOf = (procs: Proc[]): CpuSnapshot => Object.fromEntries(procs.map((p) => [p.name, p.cpuTimes()]));

function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): Record<string, CpuUse> {
  return Object.fromEntries(
    Object.keys(a).map((k) => {
      const x = a[k];
      const y = b[k];
      if (!x || !y) return [k, null];
      return [k, { total: round(y.user + y.sys - x.user - x.sys, 2), sys: round(y.sys - x.sys, 2), faults: y.minorFaults - x.minorFaults }];
    }),
  );
}

const fmtCpuUse = (c: CpuUse) =>
  c === null ? 'n/a' : `${c.total.toFixed(2)} s (sys ${c.sys.toFixed(2)}, ${(c.faults / 1000).toFixed(0)}k faults)`;

interface EmulatorRequest {
  method: string;
  path: string;
  status: string;
  ms: number;
  /** When the log line arrived here (≈ when the answer was complete). */
  at: number;
}

/** Collects the emulator's request log lines ("[gemini-emulator] POST /path 200 12.3 ms") until stopped. */
function watchEmulator(stack: Stack) {
  const seen: EmulatorRequest[] = [];
  const stop = stack.emulator.onLine((line) => {
    const m = /^\[gemini-emulator\] (\S+) (\S+) (\S+) ([\d.]+) ms$/.exec(line.trim());
    if (m) seen.push({ method: m[1], path: m[2], status: m[3], ms: Number(m[4]), at: now() });
  });
  return {
    async stop(): Promise<EmulatorRequest[]> {
      await sleep(300); // the last lines are written as the answers close
      stop();
      return seen;
    },
  };
}

/** Where the time of an upload went, as the emulator saw its requests. */
function requestSummary(reqs: EmulatorRequest[]) {
  const chunks = reqs.filter((r) => r.path.includes('upload_id='));
  const sum = (rs: EmulatorRequest[]) => round(rs.reduce((t, r) => t + r.ms, 0));
  return {
    requests: reqs.length,
    chunk_requests: chunks.length,
    in_chunk_requests_ms: sum(chunks),
    in_requests_ms: sum(reqs),
    slowest_chunk_ms: chunks.length ? Math.max(...chunks.map((r) => r.ms)) : null,
    /** Between the end of one chunk request and the start of the next, as seen from here. */
    gap_ms: gaps(chunks),
    non_200: reqs.filter((r) => r.status !== '200').length,
  };
}

function gaps(chunks: EmulatorRequest[]): { median: number; p90: number; max: number } | null {
  const g: number[] = [];
  for (let i = 1; i < chunks.length; i++) g.push(chunks[i].at - chunks[i].ms - chunks[i - 1].at);
  if (g.length === 0) return null;
  g.sort((x, y) => x - y);
  const at = (q: number) => round(g[Math.min(g.length - 1, Math.floor(q * g.length))]);
  return { median: at(0.5), p90: at(0.9), max: round(g[g.length - 1]) };
}

/** The ceiling: start a resumable session, then one `upload, finalize` POST of the whole `body`. */
async function plainCopy(stack: Stack, body: () => Readable, size: number, sha256: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const before = cpuOf([stack.emulator]);
  const client = process.cpuUsage();
  const faults = process.resourceUsage().minorPageFault;
  const watch = watchEmulator(stack);
  try {
    const t0 = now();
    const start = await httpRequest(`${stack.emulatorUrl}/upload/v1beta/files`, {
      method: 'POST',
      agent,
      headers: {
        'x-goog-api-key': 'bench',
        'X-Goog-Upload-Protocol': 'resumable',
        'X-Goog-Upload-Command': 'start',
        'X-Goog-Upload-Header-Content-Length': String(size),
        'X-Goog-Upload-Header-Content-Type': 'video/mp4',
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ file: { displayName: 'bench-plain-copy.mp4', mimeType: 'video/mp4', sizeBytes: String(size) } }),
    });
    const sessionUrl = start.headers['x-goog-upload-url'];
    if (start.status !== 200 || typeof sessionUrl !== 'string') {
      throw new Error(`plain copy: start answered ${start.status} without an upload URL: ${start.text().slice(0, 300)}`);
    }
    const fin = await httpRequest(sessionUrl, {
      method: 'POST',
      agent,
      headers: {
        'x-goog-api-key': 'bench',
        'X-Goog-Upload-Command': 'upload, finalize',
        'X-Goog-Upload-Offset': '0',
        'Content-Length': String(size),
      },
      body: body(),
    });
    const ms = now() - t0;
    if (fin.status !== 200 || fin.headers['x-goog-upload-status'] !== 'final') {
      throw new Error(`plain copy: finalize answered ${fin.status}: ${fin.text().slice(0, 300)}`);
    }
    const f = fin.json<{ file: { sizeBytes: string; sha256Hash?: string } }>().file;
    if (Number(f.sizeBytes) !== size) throw new Error(`plain copy: the emulator holds ${f.sizeBytes} bytes, not ${size}`);
    if (geminiSha256Hex(f.sha256Hash) !== sha256) throw new Error('plain copy: the emulator holds different bytes');
    const used = process.cpuUsage(client);
    const seen = requestSummary(await watch.stop());
    return {
      ms,
      emulatorCpu: cpuDelta(before, cpuOf([stack.emulator])).emulator,
      clientCpu: {
        total: round((used.user + used.system) / 1e6, 2),
        sys: round(used.system / 1e6, 2),
        faults: process.resourceUsage().minorPageFault - faults,
      } as CpuUse,
      emulatorMs: seen.in_chunk_requests_ms,
    };
  } finally {
    await watch.stop();
    agent.destroy();
  }
}

interface FileObject {
  id: string;
  bytes: number;
  status: string;
  status_details: string | null;
  sha256: string;
  mime_type: string;
  provider_state: string;
}

/**
 * A multipart body of the file with `purpose` and `fields`: after the file part, as the openai
 * Node SDK sends them, or before it (`fieldsFirst`), as the Python SDK and curl do; with its length.
 */
function multipartBody(file: string, size: number, fields: Record<string, string>, fieldsFirst: boolean) {
  const boundary = `----ferrybench${randomBytes(12).toString('hex')}`;
  const field = ([name, value]: [string, string]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const all = Object.entries({ purpose: 'user_data', ...fields });
  const head = Buffer.from(
    (fieldsFirst ? all.map(field).join('') : '') +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench-upload.mp4"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n${fieldsFirst ? '' : all.map(field).join('')}--${boundary}--\r\n`);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length: head.length + size + tail.length,
    stream: () => concatStream([head, { file, highWaterMark: READ_HWM }, tail]),
  };
}

/** The same request as `throughFerry` makes, to a server that only drains it: the client's ceiling. */
async function postToDrain(url: string, file: string, size: number, fieldsFirst: boolean): Promise<number> {
  const body = multipartBody(file, size, {}, fieldsFirst);
  const agent = new http.Agent({ keepAlive: false });
  const t0 = now();
  const res = await httpRequest(url, {
    method: 'POST',
    agent,
    headers: { 'Content-Type': body.contentType, 'Content-Length': String(body.length) },
    body: body.stream(),
  });
  agent.destroy();
  if (res.status !== 200) throw new Error(`the drain server answered ${res.status}`);
  return now() - t0;
}

/**
 * Multipart POST of the file to /v1/files, then long-polls until it is processed. Fields after
 * the file unless `fieldsFirst` (the order that lets the API start the Gemini upload early).
 */
export async function throughFerry(
  stack: Stack,
  file: string,
  size: number,
  sha256: string,
  fields: Record<string, string> = {},
  fieldsFirst = false,
) {
  const auth = { Authorization: `Bearer ${stack.apiKey}` };
  const body = multipartBody(file, size, fields, fieldsFirst);
  const agent = new http.Agent({ keepAlive: false });
  const c0 = cpuOf(stack.procs);
  // The API never calls Gemini: every emulator request from here on is the worker's.
  const watch = watchEmulator(stack);
  const t0 = now();
  const posted = await httpRequest(`${stack.apiUrl}/v1/files`, {
    method: 'POST',
    agent,
    headers: { ...auth, 'Content-Type': body.contentType, 'Content-Length': String(body.length) },
    body: body.stream(),
  });
  const tAnswer = now();
  const c1 = cpuOf(stack.procs);
  agent.destroy();
  if (posted.status !== 200) throw new Error(`POST /v1/files answered ${posted.status}: ${posted.text().slice(0, 500)}`);
  const created = posted.json<FileObject>();
  if (created.bytes !== size || created.sha256 !== sha256) {
    throw new Error(`POST /v1/files staged ${created.bytes} bytes with sha256 ${created.sha256}; expected ${size} / ${sha256}`);
  }

  let rec: FileObject = created;
  const deadline = Date.now() + Math.max(600_000, (size / 1e6) * 1000); // at least 1 MB/s
  while (rec.status === 'uploaded') {
    stack.procs.forEach((p) => p.assertAlive());
    if (Date.now() > deadline) throw new Error(`file ${created.id} still "${rec.status}" (${rec.provider_state}) after the deadline`);
    const res = await httpRequest(`${stack.apiUrl}/v1/files/${created.id}?wait=60`, { headers: auth });
    if (res.status !== 200) throw new Error(`GET /v1/files/${created.id} answered ${res.status}: ${res.text().slice(0, 300)}`);
    rec = res.json<FileObject>();
  }
  const tDone = now();
  const c2 = cpuOf(stack.procs);
  if (rec.status !== 'processed') throw new Error(`file ${created.id} ended "${rec.status}": ${rec.status_details ?? ''}`);

  // The worker's own view: BullMQ stamps when the job was taken and when it finished (ms, same clock).
  const jobKey = `${stack.prefix}:upload:upload-${created.id}`;
  const job = await waitFor(
    'the upload job to be marked finished',
    async () => {
      const [timestamp, processedOn, finishedOn] = await stack.redis.hmget(jobKey, 'timestamp', 'processedOn', 'finishedOn');
      return finishedOn ? { timestamp: Number(timestamp), processedOn: Number(processedOn), finishedOn: Number(finishedOn) } : null;
    },
    { timeoutMs: 10_000 },
  ).catch(() => null);
  const attempts = Number(JSON.parse((await stack.redis.hget(`${stack.prefix}:file:${created.id}`, 'attempts')) ?? '0'));
  const upstream = requestSummary(await watch.stop());

  return {
    id: created.id,
    mimeType: created.mime_type,
    apiMs: tAnswer - t0,
    workerMs: tDone - tAnswer,
    e2eMs: tDone - t0,
    jobMs: job ? job.finishedOn - job.processedOn : null,
    queueWaitMs: job ? job.processedOn - job.timestamp : null,
    attempts,
    upstream,
    cpu: { apiLeg: cpuDelta(c0, c1), workerLeg: cpuDelta(c1, c2) },
  };
}

const loadAverage = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** What every step shares: the source file, the stack and the means to pace the steps. */
interface UploadRig {
  log: (line?: string) => void;
  size: number;
  file: string;
  sha256: string;
  stack: Stack;
  azureStaging: AzureStaging | null;
  chunkBytes: number;
  /** Waits for the processes to fall idle, so that one step's tail does not run into the next. */
  quiet: () => Promise<void>;
  loadBefore: string;
  /** Peak RSS after start-up, before any upload. */
  idle: Record<'api' | 'worker' | 'emulator', number | null>;
}

/** Every run of each kind, in the order they ran. */
interface Runs {
  plains: PlainRun[];
  ferries: FerryRun[];
  rangeReads: number[];
  azuritePlains: PlainRun[];
}

/** Writes the source file and starts the stack (staging in Azurite with BENCH_UPLOAD_STAGING=azure). */
async function setUp({ scope, log }: SectionContext, size: number, profDir: string | null): Promise<UploadRig> {
  if (profDir) await mkdir(profDir, { recursive: true });
  const loadBefore = loadAverage();
  log(`machine: ${os.cpus().length} CPUs, load average ${loadBefore} (other work on the machine skews the figures)`);
  const data = await tempDir(scope, 'ferry-bench-data-');
  const file = path.join(data, 'source.mp4');
  const tw = now();
  const sha256 = await writeRandomFile(file, size);
  log(`source file: ${fmtMB(size)} (${size} bytes) of random bytes, written in ${fmtMs(now() - tw)}; sha256 ${sha256.slice(0, 16)}…`);

  const azureStaging = process.env.BENCH_UPLOAD_STAGING?.trim() === 'azure' ? await startAzureStaging(scope) : null;
  if (azureStaging) log('staging: Azurite (BENCH_UPLOAD_STAGING=azure), FERRY_STAGING_CONTAINER set for the API and the worker');
  const stack = await startStack(scope, {
    env: azureStaging?.env,
    nodeArgs: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    // The emulator's request log (info) is what the chunk timings below are read from.
    emulatorEnv: { FERRY_LOG_LEVEL: 'info' },
  });
  const chunkBytes = Number(stack.env.FERRY_UPLOAD_CHUNK_BYTES ?? process.env.FERRY_UPLOAD_CHUNK_BYTES ?? 8 * 1024 * 1024);
  const rt = stack.runtime;
  log(
    `runtime: ${rt.kind === 'tsx' ? 'node --import tsx src/cli.ts' : `node <compiled>/cli.js${rt.typeErrors ? ' (src/ has type errors; tsc emitted anyway)' : ''}`}` +
      ' (BENCH_RUNTIME=tsx|dist)',
  );
  log(
    `processes: emulator pid ${stack.emulator.pid}, api pid ${stack.api.pid}, worker pid ${stack.worker.pid}; redis prefix ${stack.prefix}`,
  );
  if (profDir) log(`CPU profiles go to ${profDir} (profiling slows the processes down)`);
  const quiet = async () => {
    if (!(await settle(stack.procs))) log('  (the processes did not fall idle before the next step)');
  };
  await quiet();
  const idle = { api: stack.api.peakRss(), worker: stack.worker.peakRss(), emulator: stack.emulator.peakRss() };
  return { log, size, file, sha256, stack, azureStaging, chunkBytes, quiet, loadBefore, idle };
}

function logRow(rig: UploadRig, label: string, ms: number, note: string): void {
  rig.log(`${label.padEnd(20)} ${fmtMs(ms).padStart(9)}  ${fmtRate(mbps(rig.size, ms)).padStart(10)}   ${note}`);
}

const plainNote = (p: PlainRun) =>
  `CPU: client ${fmtCpuUse(p.clientCpu)}, emulator ${fmtCpuUse(p.emulatorCpu)}; the emulator's view of the upload request ${fmtMs(p.emulatorMs)}`;

const fmtCpu = (c: Record<string, CpuUse>) =>
  `CPU: api ${fmtCpuUse(c.api)}, worker ${fmtCpuUse(c.worker)}, emulator ${fmtCpuUse(c.emulator)}`;

/** A plain copy, then `rounds` Ferry uploads, each followed by Azurite's copies (when staging there) and another plain copy. */
async function measureRounds(rig: UploadRig, rounds: number): Promise<Runs> {
  const runs: Runs = { plains: [], ferries: [], rangeReads: [], azuritePlains: [] };
  await measurePlainCopy(rig, runs);
  for (let r = 1; r <= rounds; r++) {
    const f = await throughFerry(rig.stack, rig.file, rig.size, rig.sha256);
    runs.ferries.push(f);
    logFerryRun(rig, f, rounds > 1 ? ` #${r}` : '');
    await rig.quiet();
    if (rig.azureStaging) await measureAzuriteCopies(rig, rig.azureStaging, f.id, runs);
    await measurePlainCopy(rig, runs);
  }
  return runs;
}

async function measurePlainCopy(rig: UploadRig, runs: Runs): Promise<void> {
  const p = await plainCopy(rig.stack, () => createReadStream(rig.file, { highWaterMark: READ_HWM }), rig.size, rig.sha256);
  runs.plains.push(p);
  logRow(rig, `plain copy #${runs.plains.length}`, p.ms, plainNote(p));
  await rig.quiet();
}

/** A Ferry upload's legs and where its worker leg's time went; `n` marks the round when there are several. */
function logFerryRun(rig: UploadRig, f: FerryRun, n: string): void {
  const { log, size, chunkBytes } = rig;
  logRow(rig, `ferry API leg${n}`, f.apiMs, `POST start → 200 (bytes staged); ${fmtCpu(f.cpu.apiLeg)}`);
  logRow(rig, `ferry worker leg${n}`, f.workerMs, `200 → processed; ${fmtCpu(f.cpu.workerLeg)}`);
  logRow(rig, `ferry end-to-end${n}`, f.e2eMs, '');
  if (f.jobMs !== null) {
    log(
      `  worker job (BullMQ processedOn → finishedOn) ${fmtMs(f.jobMs)} = ${fmtRate(mbps(size, f.jobMs))}; queue wait ${fmtMs(f.queueWaitMs!)}`,
    );
  }
  const up = f.upstream;
  log(
    `  ${up.chunk_requests} chunk requests of up to ${fmtMB(chunkBytes)} (attempts ${f.attempts}, type ${f.mimeType}); ` +
      `the emulator spent ${fmtMs(up.in_chunk_requests_ms)} inside them (slowest ${up.slowest_chunk_ms ?? 'n/a'} ms)`,
  );
  log(
    `  ${fmtMs(f.workerMs - up.in_requests_ms)} of the worker leg passed outside its ${up.requests} upstream requests` +
      (up.gap_ms ? `; gap between chunk requests median ${up.gap_ms.median} ms, p90 ${up.gap_ms.p90} ms, max ${up.gap_ms.max} ms` : ''),
  );
}

/** The staged blob `id` read from Azurite alone, then copied from there to the emulator. */
async function measureAzuriteCopies(rig: UploadRig, azureStaging: AzureStaging, id: string, runs: Runs): Promise<void> {
  const { stack, size, sha256, chunkBytes } = rig;
  runs.rangeReads.push(await azureStaging.readRanges(id, size, chunkBytes));
  logRow(
    rig,
    `Azurite read #${runs.rangeReads.length}`,
    runs.rangeReads[runs.rangeReads.length - 1],
    `the staged blob, ${fmtMB(chunkBytes)} ranges one after another`,
  );
  await rig.quiet();
  const stream = () => azureStaging.rangeStream(id, size, chunkBytes);
  runs.azuritePlains.push(await plainCopy(stack, stream, size, sha256));
  logRow(
    rig,
    `Azurite→emulator #${runs.azuritePlains.length}`,
    runs.azuritePlains[runs.azuritePlains.length - 1].ms,
    'the same ranges piped into one plain upload',
  );
  await rig.quiet();
}

/** The best run of each kind against each other, and every process's peak RSS. */
function compareRuns(rig: UploadRig, runs: Runs) {
  const { stack, size } = rig;
  const rss = { api: stack.api.peakRss(), worker: stack.worker.peakRss(), emulator: stack.emulator.peakRss() };
  const bestMs = Math.min(...runs.plains.map((p) => p.ms));
  const ferry = runs.ferries.reduce((a, b) => (b.workerMs < a.workerMs ? b : a));
  const bestE2eMs = Math.min(...runs.ferries.map((f) => f.e2eMs));
  const ceiling = mbps(size, bestMs);
  const workerRatio = bestMs / ferry.workerMs;
  const e2eRatio = bestMs / bestE2eMs;
  // With Azurite in the path its own copy is the ceiling; the local-file copy is then informative.
  const bestAzuritePlainMs = runs.azuritePlains.length ? Math.min(...runs.azuritePlains.map((p) => p.ms)) : null;
  const azuritePlainRatio = bestAzuritePlainMs === null ? null : bestAzuritePlainMs / ferry.workerMs;
  const workerOk = (azuritePlainRatio ?? workerRatio) >= WORKER_RATIO_TARGET;
  const bestReadMs = runs.rangeReads.length ? Math.min(...runs.rangeReads) : null;
  const readRatio = bestReadMs === null ? null : bestReadMs / ferry.workerMs;
  return { rss, bestMs, ferry, ceiling, workerRatio, e2eRatio, bestAzuritePlainMs, azuritePlainRatio, workerOk, bestReadMs, readRatio };
}

type Comparison = ReturnType<typeof compareRuns>;

const rssOk = (b: number | null) => (b === null ? null : b < RSS_TARGET_BYTES);

function logComparison(rig: UploadRig, runs: Runs, c: Comparison): void {
  const { log, size } = rig;
  const best = (n: number) => (n > 1 ? ` (best of ${n})` : '');
  log(`ceiling: plain copy${best(runs.plains.length)}      ${fmtRate(c.ceiling)}`);
  log(`ferry worker leg${best(runs.ferries.length)}          ${fmtRate(mbps(size, c.ferry.workerMs))}`);
  log(
    `worker leg / plain copy     ${c.workerRatio.toFixed(2)}   ` +
      (c.azuritePlainRatio === null
        ? `target ≥ ${WORKER_RATIO_TARGET}   ${verdict(c.workerOk)}`
        : '(informative: this copy reads a local file, the worker reads Azurite)'),
  );
  log(`end-to-end / plain copy     ${c.e2eRatio.toFixed(2)}   (informative: the API stages the whole file before the worker starts)`);
  if (c.bestReadMs !== null && c.readRatio !== null) {
    log(`Azurite range read${best(runs.rangeReads.length)}     ${fmtRate(mbps(size, c.bestReadMs))}`);
    log(`worker leg / Azurite read   ${c.readRatio.toFixed(2)}   (informative: reading alone, nothing sent)`);
  }
  if (c.bestAzuritePlainMs !== null && c.azuritePlainRatio !== null) {
    log(`Azurite→emulator copy${best(runs.azuritePlains.length)}  ${fmtRate(mbps(size, c.bestAzuritePlainMs))}`);
    log(
      `worker leg / that copy      ${c.azuritePlainRatio.toFixed(2)}   target ≥ ${WORKER_RATIO_TARGET}   ${verdict(c.azuritePlainRatio >= WORKER_RATIO_TARGET)}   (the ceiling with Azurite in the path)`,
    );
  }
  const rssRow = (name: keyof typeof c.rss, target: boolean) =>
    log(
      `peak RSS ${name.padEnd(19)}${fmtMB(c.rss[name]).padStart(9)}` +
        (target ? `   target < ${fmtMB(RSS_TARGET_BYTES)}   ${verdict(rssOk(c.rss[name]))}` : '') +
        `   (after start-up: ${fmtMB(rig.idle[name])})`,
    );
  rssRow('api', true);
  rssRow('worker', true);
  rssRow('emulator', false);
}

function ferryRunJson(size: number, f: FerryRun) {
  return {
    file_id: f.id,
    api_ms: round(f.apiMs),
    api_mbps: round(mbps(size, f.apiMs)),
    worker_ms: round(f.workerMs),
    worker_mbps: round(mbps(size, f.workerMs)),
    e2e_ms: round(f.e2eMs),
    e2e_mbps: round(mbps(size, f.e2eMs)),
    job_ms: f.jobMs,
    queue_wait_ms: f.queueWaitMs,
    attempts: f.attempts,
    upstream: f.upstream,
    outside_requests_ms: round(f.workerMs - f.upstream.in_requests_ms),
    cpu_s: f.cpu,
  };
}

function resultJson(
  rig: UploadRig,
  runs: Runs,
  c: Comparison,
  { profiled, loadAfter }: { profiled: boolean; loadAfter: string },
): SectionResult {
  const { size, idle } = rig;
  const { plains, ferries, rangeReads, azuritePlains } = runs;
  const { rss, bestReadMs, bestAzuritePlainMs, readRatio, azuritePlainRatio } = c;
  const toMB = (b: number | null) => (b === null ? null : round(b / 1e6, 1));
  return {
    bytes: size,
    chunk_bytes: rig.chunkBytes,
    plain_copy: {
      runs_ms: plains.map((p) => round(p.ms)),
      runs_mbps: plains.map((p) => round(mbps(size, p.ms))),
      cpu_s: plains.map((p) => ({ client: p.clientCpu, emulator: p.emulatorCpu })),
      best_ms: round(c.bestMs),
      best_mbps: round(c.ceiling),
    },
    ferry: ferryRunJson(size, c.ferry),
    ...(ferries.length > 1 ? { ferry_runs: ferries.map((f) => ferryRunJson(size, f)) } : {}),
    ratios: {
      worker_vs_plain: round(c.workerRatio, 3),
      e2e_vs_plain: round(c.e2eRatio, 3),
      ...(readRatio !== null ? { worker_vs_azurite_read: round(readRatio, 3) } : {}),
      ...(azuritePlainRatio !== null ? { worker_vs_azurite_plain_copy: round(azuritePlainRatio, 3) } : {}),
    },
    ...(bestReadMs !== null
      ? {
          staging: 'azure',
          azurite_range_read: {
            runs_ms: rangeReads.map((ms) => round(ms)),
            best_ms: round(bestReadMs),
            best_mbps: round(mbps(size, bestReadMs)),
          },
          azurite_plain_copy: {
            runs_ms: azuritePlains.map((p) => round(p.ms)),
            best_ms: round(bestAzuritePlainMs!),
            best_mbps: round(mbps(size, bestAzuritePlainMs!)),
          },
        }
      : {}),
    peak_rss_mb: { api: toMB(rss.api), worker: toMB(rss.worker), emulator: toMB(rss.emulator) },
    startup_peak_rss_mb: { api: toMB(idle.api), worker: toMB(idle.worker), emulator: toMB(idle.emulator) },
    targets: {
      worker_vs_plain_min: WORKER_RATIO_TARGET,
      rss_max_mb: RSS_TARGET_BYTES / 1e6,
      worker_ratio: verdict(c.workerOk),
      rss_api: verdict(rssOk(rss.api)),
      rss_worker: verdict(rssOk(rss.worker)),
    },
    runtime: rig.stack.runtime.kind,
    profiled,
    cpus: os.cpus().length,
    loadavg: { before: rig.loadBefore, after: loadAfter },
  };
}

/** The SDK's files.create into Ferry against the same call into a draining server, alternating. */
async function ingestComparison(ctx: SectionContext, rig: UploadRig): Promise<IngestRuns | null> {
  const rounds = envInt('BENCH_INGEST_ROUNDS', 5, 0);
  if (rounds <= 0) return null;
  rig.log(`ingest: the openai SDK's files.create (${rounds} rounds, each: a draining server, then Ferry until processed)`);
  const drain = await startDrain(ctx.scope);
  // With local staging, the bare store writes to the staging disk; with blob staging its reference is the Azure SDK's own stage.
  const bare = rig.azureStaging ? null : await startDrain(ctx.scope, rig.stack.env.FERRY_STAGING_DIR);
  try {
    const stagePlain = rig.azureStaging ? (file: string) => rig.azureStaging!.stagePlain(file) : null;
    return await measureIngest(rig.stack, drain.url, bare?.url ?? null, rig.file, rig.size, rounds, rig.quiet, rig.log, stagePlain);
  } finally {
    await drain.proc.stop();
    await bare?.proc.stop();
  }
}

interface OverlapRuns {
  latencyMs: number;
  drainMs: number[];
  /** File first, as the Node SDK sends it: the worker's upload starts at the 200. */
  sequential: FerryRun[];
  /** Fields first: the worker's upload runs while the API receives. */
  overlappedMs: number[];
}

async function setChunkLatency(stack: Stack, latencyMs: number): Promise<void> {
  const rules = latencyMs > 0 ? [{ route: 'upload.chunk', kind: 'latency', latencyMs }] : [];
  const res = await httpRequest(`${stack.emulatorUrl}/_emulator/faults`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rules),
  });
  if (res.status !== 200) throw new Error(`PUT /_emulator/faults answered ${res.status}: ${res.text().slice(0, 200)}`);
}

/**
 * Overlap, with Gemini across a network rather than on this machine's other core: every chunk
 * request waits BENCH_OVERLAP_CHUNK_LATENCY_MS at the emulator first. Each round sends the file
 * to a draining server (the client's ceiling), then to Ferry file first (the upload to Gemini
 * starts at the 200), then fields first with its length (it starts as the bytes arrive), each
 * until processed. The target compares the overlapped time with the slower of the client's
 * ceiling and the worker leg, the best an overlapped upload can do.
 */
async function overlapComparison(ctx: SectionContext, rig: UploadRig): Promise<OverlapRuns | null> {
  const rounds = envInt('BENCH_OVERLAP_ROUNDS', 3, 0);
  if (rounds <= 0) return null;
  const latencyMs = envInt('BENCH_OVERLAP_CHUNK_LATENCY_MS', 50, 0);
  rig.log(
    `overlap: ${rounds} rounds, ${latencyMs} ms before each chunk request at the emulator (Gemini across a network); each round: ` +
      'a draining server, Ferry with the file first, Ferry with the fields first and its length (as the Python SDK and curl send it)',
  );
  const drain = await startDrain(ctx.scope);
  const runs: OverlapRuns = { latencyMs, drainMs: [], sequential: [], overlappedMs: [] };
  const remove = (id: string) =>
    httpRequest(`${rig.stack.apiUrl}/v1/files/${id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${rig.stack.apiKey}` } });
  await setChunkLatency(rig.stack, latencyMs);
  try {
    for (let r = 1; r <= rounds; r++) {
      runs.drainMs.push(await postToDrain(`${drain.url}/files`, rig.file, rig.size, true));
      logRow(rig, `→ drain #${r}`, runs.drainMs[r - 1], 'fields first');
      await sleep(500);
      const seq = await throughFerry(rig.stack, rig.file, rig.size, rig.sha256);
      runs.sequential.push(seq);
      logRow(rig, `file first #${r}`, seq.e2eMs, `200 after ${fmtMs(seq.apiMs)}, processed ${fmtMs(seq.workerMs)} later`);
      await remove(seq.id);
      await rig.quiet();
      const early = await throughFerry(rig.stack, rig.file, rig.size, rig.sha256, {}, true);
      runs.overlappedMs.push(early.e2eMs);
      logRow(rig, `fields first #${r}`, early.e2eMs, `200 after ${fmtMs(early.apiMs)}, processed ${fmtMs(early.workerMs)} later`);
      await remove(early.id);
      await rig.quiet();
    }
  } finally {
    await setChunkLatency(rig.stack, 0);
    await drain.proc.stop();
  }
  return runs;
}

function logOverlap(rig: UploadRig, runs: OverlapRuns) {
  const mid = {
    drain: median(runs.drainMs),
    worker: median(runs.sequential.map((f) => f.workerMs)),
    sequential: median(runs.sequential.map((f) => f.e2eMs)),
    overlapped: median(runs.overlappedMs),
  };
  const boundMs = Math.max(mid.drain, mid.worker);
  const ratio = boundMs / mid.overlapped;
  const n = runs.drainMs.length;
  const row = (label: string, ms: number) => rig.log(`${label.padEnd(44)} ${fmtRate(mbps(rig.size, ms))}   ${fmtMs(ms)}`);
  rig.log(`overlap, ${runs.latencyMs} ms per chunk request (medians of ${n}):`);
  row('  client → drain', mid.drain);
  row('  worker leg (200 → processed, file first)', mid.worker);
  row('  file first → processed', mid.sequential);
  row('  fields first → processed', mid.overlapped);
  rig.log(
    `  processed / slower of drain and worker leg: fields first ${ratio.toFixed(2)}   target ≥ ${OVERLAP_RATIO_TARGET}   ${verdict(ratio >= OVERLAP_RATIO_TARGET)}; ` +
      `file first ${(boundMs / mid.sequential).toFixed(2)}`,
  );
  return {
    chunk_latency_ms: runs.latencyMs,
    drain_ms: runs.drainMs.map((ms) => round(ms)),
    file_first_processed_ms: runs.sequential.map((f) => round(f.e2eMs)),
    file_first_worker_leg_ms: runs.sequential.map((f) => round(f.workerMs)),
    fields_first_processed_ms: runs.overlappedMs.map((ms) => round(ms)),
    ratio: round(ratio, 3),
    file_first_ratio: round(boundMs / mid.sequential, 3),
    target: OVERLAP_RATIO_TARGET,
    verdict: verdict(ratio >= OVERLAP_RATIO_TARGET),
  };
}

const PART_BYTES = 64 * 1024 * 1024;
const PART_CONCURRENCY = 8;

async function partedUpload(rig: UploadRig): Promise<PartedRun> {
  rig.log(`Uploads API: ${fmtMB(PART_BYTES)} parts, ${PART_CONCURRENCY} at a time (the openai SDK), then complete, then processed`);
  const run = await measureParted(rig.stack, rig.file, rig.size, PART_BYTES, PART_CONCURRENCY);
  logRow(rig, 'parts sent', run.partsMs, `${run.parts} parts, ${run.concurrency} at a time`);
  logRow(rig, 'complete', run.completeMs, 'the parts read once in order for the sha256');
  logRow(rig, 'worker leg', run.workerMs, 'completed → processed, the parts read in order');
  logRow(rig, 'Uploads API total', run.totalMs, '');
  await rig.quiet();
  return run;
}

function partedJson(rig: UploadRig, run: PartedRun) {
  return {
    parts: run.parts,
    concurrency: run.concurrency,
    parts_ms: round(run.partsMs),
    parts_mbps: round(mbps(rig.size, run.partsMs)),
    complete_ms: round(run.completeMs),
    complete_mbps: round(mbps(rig.size, run.completeMs)),
    worker_ms: round(run.workerMs),
    total_ms: round(run.totalMs),
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * The verdict is on the medians: the client's own time for the same call varies by a quarter
 * from round to round here, so one lucky drain round decides a best-of comparison.
 */
function logIngest(rig: UploadRig, runs: IngestRuns) {
  const best = { drain: Math.min(...runs.drainMs), ferry: Math.min(...runs.ferryMs) };
  const mid = { drain: median(runs.drainMs), ferry: median(runs.ferryMs) };
  const n = runs.drainMs.length;
  rig.log(`SDK → drain (median of ${n})    ${fmtRate(mbps(rig.size, mid.drain))}   (best ${fmtRate(mbps(rig.size, best.drain))})`);
  rig.log(`SDK → Ferry API (median of ${n}) ${fmtRate(mbps(rig.size, mid.ferry))}   (best ${fmtRate(mbps(rig.size, best.ferry))})`);
  // With blob staging the store is the ceiling: the SDK client and the Azure SDK's own staging of the same bytes.
  const stageMid = runs.plainStageMs.length ? median(runs.plainStageMs) : null;
  const ceilingMs = stageMid === null ? mid.drain : Math.max(mid.drain, stageMid);
  if (stageMid !== null) rig.log(`Azure SDK → Azurite (median)  ${fmtRate(mbps(rig.size, stageMid))}   (the store's own ceiling)`);
  const ratio = ceilingMs / mid.ferry;
  rig.log(
    `ingest / ${stageMid === null ? 'drain' : 'slower of drain and Azurite stage'} (medians)  ${ratio.toFixed(2)}   target ≥ ${INGEST_RATIO_TARGET}   ${verdict(ratio >= INGEST_RATIO_TARGET)}   (best against best ${(best.drain / best.ferry).toFixed(2)})`,
  );
  // How far the target is from what storing the bytes costs on this machine at all.
  const bareMid = runs.bareMs.length ? median(runs.bareMs) : null;
  if (bareMid !== null) {
    rig.log(
      `SDK → bare store (median)      ${fmtRate(mbps(rig.size, bareMid))}   (busboy, sha256, a file on the staging disk; nothing else)`,
    );
    rig.log(
      `bare store / drain (medians)   ${(mid.drain / bareMid).toFixed(2)}   (the most any service that stores the bytes reaches here)`,
    );
    rig.log(`ingest / bare store (medians)  ${(bareMid / mid.ferry).toFixed(2)}   (Ferry's own overhead; 1.00 is none)`);
  }
  return {
    drain_ms: runs.drainMs.map((ms) => round(ms)),
    ferry_ms: runs.ferryMs.map((ms) => round(ms)),
    ...(stageMid !== null ? { azurite_plain_stage_ms: runs.plainStageMs.map((ms) => round(ms)) } : {}),
    ...(bareMid !== null
      ? {
          bare_store_ms: runs.bareMs.map((ms) => round(ms)),
          bare_store_vs_drain: round(mid.drain / bareMid, 3),
          ferry_vs_bare_store: round(bareMid / mid.ferry, 3),
        }
      : {}),
    drain_median_mbps: round(mbps(rig.size, mid.drain)),
    ferry_median_mbps: round(mbps(rig.size, mid.ferry)),
    ratio: round(ratio, 3),
    best_ratio: round(best.drain / best.ferry, 3),
    target: INGEST_RATIO_TARGET,
    verdict: verdict(ratio >= INGEST_RATIO_TARGET),
  };
}

const section: Section = {
  name: 'upload',
  title: 'one large file through Ferry (API stages, worker uploads to the Gemini emulator) vs a plain copy',
  async run(ctx) {
    const size = uploadBytes();
    const rounds = envInt('BENCH_UPLOAD_ROUNDS', 1);
    const profDir = process.env.BENCH_CPU_PROF?.trim() ? path.resolve(process.env.BENCH_CPU_PROF.trim()) : null;
    const rig = await setUp(ctx, size, profDir);
    const runs = await measureRounds(rig, rounds);
    const ingest = await ingestComparison(ctx, rig);
    const overlap = await overlapComparison(ctx, rig);
    const parted = process.env.BENCH_PARTED === '0' ? null : await partedUpload(rig);
    const comparison = compareRuns(rig, runs);
    const loadAfter = loadAverage();
    ctx.log(`load average at the end ${loadAfter}`);
    ctx.log('');
    logComparison(rig, runs, comparison);
    const ingestResult = ingest ? logIngest(rig, ingest) : null;
    const overlapResult = overlap ? logOverlap(rig, overlap) : null;
    return {
      ...resultJson(rig, runs, comparison, { profiled: profDir !== null, loadAfter }),
      ...(ingestResult ? { ingest: ingestResult } : {}),
      ...(overlapResult ? { overlap: overlapResult } : {}),
      ...(parted ? { uploads_api: partedJson(rig, parted) } : {}),
    };
  },
};

export default section;
