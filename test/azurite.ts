/**
 * Azurite for tests: the blob service from the `azurite` npm package (a
 * devDependency, so no Docker is needed) on a free port, in memory: nothing
 * is written to disk, and the process runs in a temporary directory. Plus a
 * small proxy that can delay answers, so a test can stop a worker in the
 * middle of an upload, and that logs every request with the bytes it carried
 * each way, so a test can see which bytes passed between Ferry and the service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Azurite's well-known development account (the key as Azurite itself defines it). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  /** The blob service URL, account included: http://127.0.0.1:PORT/devstoreaccount1 */
  endpoint: string;
  connectionString: string;
  stop(): Promise<void>;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = http.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

function describe(host: string, port: number, stop: () => Promise<void>): Azurite {
  const endpoint = `http://${host}:${port}/${AZURITE_ACCOUNT}`;
  return {
    endpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
    stop,
  };
}

export async function startAzurite(): Promise<Azurite> {
  const port = await freePort();
  const cwd = await mkdtemp(path.join(os.tmpdir(), 'ferry-azurite-'));
  const args = [
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(port),
    '--inMemoryPersistence',
    '--skipApiVersionCheck',
    '--loose',
    '--disableTelemetry',
  ];
  // Azurite refuses --location together with --inMemoryPersistence; running in a temporary directory keeps the repository clean.
  const child: ChildProcess = spawn(path.join(root, 'node_modules/.bin/azurite-blob'), args, { cwd, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    await rm(cwd, { recursive: true, force: true });
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    if (await answers(`http://127.0.0.1:${port}/`)) return describe('127.0.0.1', port, stop);
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error('Azurite (node_modules/.bin/azurite-blob) did not start');
}

/** One request through the proxy, logged once its answer is complete. */
export interface ProxiedRequest {
  method: string;
  /** The decoded path: /{account}/{container}/{blob}. */
  path: string;
  /** The `comp` query parameter (block, blocklist, metadata, …), '' without one. */
  comp: string;
  /** The x-ms-copy-source header (a copy by the service), '' without one. */
  copySource: string;
  status: number;
  /** Body bytes sent to the service, and answered by it. */
  sentBytes: number;
  receivedBytes: number;
}

export interface DelayProxy {
  /** The target endpoint's URL form through the proxy (same path). */
  endpoint: string;
  /** Delay added to answers of Put Block (stageBlock) requests. */
  delayMs: number;
  /** How many of the next Put Block requests are answered 503 ServerBusy instead of being forwarded. */
  failBlocks: number;
  /** How many of the next Put Block List (commit) requests are forwarded, then answered 400 as if the commit had failed. */
  failCommits: number;
  /** Every request answered so far, in the order the answers completed. */
  log: ProxiedRequest[];
  close(): Promise<void>;
}

/** Forwards everything to `endpoint`; answers to Put Block requests wait `delayMs` first, or fail while `failBlocks` lasts. */
export async function startDelayProxy(endpoint: string): Promise<DelayProxy> {
  const target = new URL(endpoint);
  const proxy: DelayProxy = { endpoint: '', delayMs: 0, failBlocks: 0, failCommits: 0, log: [], close: async () => {} };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', target);
    const comp = url.searchParams.get('comp') ?? '';
    const putBlock = comp === 'block';
    const entry: ProxiedRequest = {
      method: req.method ?? '',
      path: decodeURIComponent(url.pathname),
      comp,
      copySource: String(req.headers['x-ms-copy-source'] ?? ''),
      status: 0,
      sentBytes: 0,
      receivedBytes: 0,
    };
    req.on('data', (c: Buffer) => (entry.sentBytes += c.length));
    res.on('finish', () => {
      entry.status = res.statusCode;
      proxy.log.push(entry);
    });
    const failCommit = comp === 'blocklist' && req.method === 'PUT' && proxy.failCommits > 0;
    if (failCommit) proxy.failCommits--;
    if (putBlock && proxy.failBlocks > 0) {
      proxy.failBlocks--;
      req.resume();
      req.on('end', () => res.writeHead(503, { 'x-ms-error-code': 'ServerBusy' }).end());
      return;
    }
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        // Counted only once the answer is forwarded: a listener attached earlier would start the flow before the pipe.
        const count = () => answer.on('data', (c: Buffer) => (entry.receivedBytes += c.length));
        if (failCommit) {
          count();
          answer.resume();
          answer.on('end', () => res.writeHead(400, { 'x-ms-error-code': 'InvalidBlockList' }).end());
          return;
        }
        setTimeout(
          () => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            count();
            answer.pipe(res);
          },
          putBlock ? proxy.delayMs : 0,
        );
      },
    );
    up.on('error', () => res.destroy());
    req.on('aborted', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  proxy.endpoint = `http://127.0.0.1:${port}${target.pathname}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return proxy;
}
