/**
 * Development defaults, so `npm start` works on a fresh machine: a local
 * redis-server when none answers, a generated API key, and the in-process
 * Gemini emulator when no key is set. None of this applies in production.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from './core/config.js';
import type { Logger } from './core/logger.js';

export class StartupError extends Error {}

export async function redisAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.ping();
    return true;
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

const HOW_TO_GET_REDIS = [
  'Ferry keeps its queues and records in Redis, and none answers at REDIS_URL.',
  'Get one with any of:',
  '  docker compose up -d redis          (from this folder)',
  '  sudo apt-get install redis-server   (Debian/Ubuntu; then run npm start again)',
  '  brew install redis                  (macOS)',
  'or point REDIS_URL at a Redis you already run.',
].join('\n');

/** Makes sure Redis answers; in development starts a local redis-server (AOF on, under the data dir) if needed. */
export async function ensureRedis(config: Config, logger: Logger): Promise<ChildProcess | null> {
  // A cluster is reached through its nodes, and its client waits for them: nothing to start here.
  if (config.redisClusterNodes) return null;
  if (await redisAnswers(config.redisUrl)) return null;
  if (config.production || !config.redisUrlDefaulted) {
    throw new StartupError(`Redis does not answer at ${config.redisUrl}.\n${HOW_TO_GET_REDIS}`);
  }
  if (spawnSync('redis-server', ['--version']).status !== 0) throw new StartupError(HOW_TO_GET_REDIS);
  const dir = path.join(config.dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = new URL(config.redisUrl).port || '6379';
  const child = spawn('redis-server', ['--port', port, '--bind', '127.0.0.1', '--appendonly', 'yes', '--dir', dir, '--save', ''], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers(config.redisUrl, 500)) {
      logger.info({ dir, port }, 'started a local redis-server (append-only file on)');
      return child;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new StartupError(`A local redis-server was started but does not answer on port ${port}.\n${HOW_TO_GET_REDIS}`);
}

/** A development key, generated once and kept under the data dir so restarts keep it. */
export function devApiKey(config: Config): string {
  const file = path.join(config.dataDir, 'dev-api-key');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(config.dataDir, { recursive: true });
    const key = `sk-ferry-dev-${randomBytes(18).toString('base64url')}`;
    writeFileSync(file, `${key}\n`, { mode: 0o600 });
    return key;
  }
}

/** The banner's width: an 80-column terminal shows it unwrapped. */
const BANNER_COLUMNS = 80;

export function banner(lines: string[]): void {
  process.stderr.write(bannerText(lines));
}

/** Lines boxed within BANNER_COLUMNS; a long line wraps at spaces, under its label ("API:     …"). */
export function bannerText(lines: string[]): string {
  const inner = BANNER_COLUMNS - 4;
  const wrapped = lines.flatMap((l) => wrapLine(l, inner));
  const width = Math.max(...wrapped.map((l) => l.length));
  const bar = '─'.repeat(width + 2);
  return `┌${bar}┐\n${wrapped.map((l) => `│ ${l.padEnd(width)} │`).join('\n')}\n└${bar}┘\n`;
}

function wrapLine(line: string, width: number): string[] {
  if (line.length <= width) return [line];
  const indent = ' '.repeat(/^[A-Za-z ]+:\s+/.exec(line)?.[0].length ?? 2);
  const out: string[] = [];
  let current = '';
  for (const word of line.split(' ')) {
    const next = current ? `${current} ${word}` : word;
    if (next.length <= width || !current.trim()) current = next;
    else {
      out.push(current);
      current = `${indent}${word}`;
    }
  }
  out.push(current);
  // A word longer than the line (a URL, a path) is cut where it must be.
  return out.flatMap((l) => (l.length <= width ? [l] : (l.match(new RegExp(`.{1,${width}}`, 'g')) ?? [l])));
}
