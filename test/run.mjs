#!/usr/bin/env node
// Runs the test suite against a real Redis: REDIS_URL if set, else 127.0.0.1:6379 when one
// answers, else a container (testcontainers) where Docker runs, else a redis-server spawned
// on a free port. Each test file isolates itself under its own key prefix and cleans up.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

function answers(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => done(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH')));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function findRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, how: 'REDIS_URL', stop: async () => {} };
  if (await answers('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', how: 'local 127.0.0.1:6379', stop: async () => {} };
  if (spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 }).status === 0) {
    const { GenericContainer } = await import('testcontainers');
    const c = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
    return { url: `redis://${c.getHost()}:${c.getMappedPort(6379)}`, how: 'testcontainers', stop: () => c.stop() };
  }
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0) {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100 && !(await answers('127.0.0.1', port, 200)); i++) await new Promise((r) => setTimeout(r, 100));
    return { url: `redis://127.0.0.1:${port}`, how: `redis-server spawned on ${port}`, stop: async () => void child.kill() };
  }
  throw new Error('The tests need Redis: set REDIS_URL, run one on 127.0.0.1:6379, run Docker, or install redis-server.');
}

const filter = process.argv.slice(2);
const files = readdirSync(path.join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)))
  .map((f) => path.join('test', f));

const redis = await findRedis();
process.stdout.write(`Redis for tests: ${redis.how}\n`);
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, REDIS_URL: redis.url },
});
const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
await redis.stop();
process.exit(code);
