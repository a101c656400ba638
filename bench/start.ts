/**
 * start: the small waits of a first day, each the median of several runs on this machine:
 *
 *   npm start → ready   `npm start` (nothing changed since the last build) until /readyz answers 200
 *   build               `npm run build` after a change (the cost a start pays when sources changed)
 *   status              `node dist/cli.js status <batch>` and `npx ferry status <batch>`
 *   shutdown            SIGTERM to exit, idle
 *
 *   BENCH_START_DIR      the checkout to measure (default this one), built here first
 *   BENCH_START_ROUNDS   runs of each (default 5)
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { Redis } from 'ioredis';
import { deleteByPrefix } from '../test/redis-keys.js';
import { BENCH_API_KEY, envInt, freePort, httpRequest, now, ROOT, round, sleep, tempDir, type Section } from './lib.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const section: Section = {
  name: 'start',
  title: 'npm start to ready, the CLI, shutdown',
  async run({ scope, log }) {
    const dir = path.resolve(process.env.BENCH_START_DIR ?? ROOT);
    const rounds = envInt('BENCH_START_ROUNDS', 5);
    const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const redis = new Redis(redisUrl);
    scope.defer('close redis', () => redis.quit().then(() => undefined));
    const tmp = await tempDir(scope);
    const prefix = `ferry-bench-start-${process.pid}`;
    scope.defer(`delete ${prefix}`, () => deleteByPrefix(redis, prefix));
    const port = await freePort();
    const env = {
      ...process.env,
      REDIS_URL: redisUrl,
      FERRY_REDIS_PREFIX: prefix,
      FERRY_DATA_DIR: path.join(tmp, 'data'),
      FERRY_API_KEYS: `${BENCH_API_KEY}:bench`,
      PORT: String(port),
      HOST: '127.0.0.1',
      FERRY_METRICS_PORT: '0',
    };
    const base = `http://127.0.0.1:${port}`;

    const buildMs = timed(() => spawnSync('npm', ['run', 'build', '--silent'], { cwd: dir, env, stdio: 'ignore' }).status);
    log(`build after a change: ${buildMs.toFixed(0)} ms`);

    /** `npm start` until /readyz says ready; then SIGTERM and the time it took to exit. */
    const startOnce = async (): Promise<{ readyMs: number; stopMs: number }> => {
      const t0 = now();
      const child = spawn('npm', ['start', '--silent'], { cwd: dir, env, stdio: 'ignore', detached: true });
      try {
        for (;;) {
          const ready = await httpRequest(`${base}/readyz`)
            .then((r) => r.status === 200)
            .catch(() => false);
          if (ready) break;
          if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}`);
          if (now() - t0 > 60_000) throw new Error('npm start was not ready within 60 s');
          await sleep(10);
        }
        const readyMs = now() - t0;
        const t1 = now();
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(-child.pid!, 'SIGTERM');
        await exited;
        return { readyMs, stopMs: now() - t1 };
      } catch (err) {
        process.kill(-child.pid!, 'SIGKILL');
        throw err;
      }
    };
    const starts = [];
    for (let i = 0; i < rounds; i++) starts.push(await startOnce());
    const readyMs = median(starts.map((s) => s.readyMs));
    const stopMs = median(starts.map((s) => s.stopMs));
    log(`npm start → ready (nothing changed): median ${readyMs.toFixed(0)} ms of ${starts.map((s) => s.readyMs.toFixed(0)).join(', ')}`);
    log(`shutdown when idle (SIGTERM → exit): median ${stopMs.toFixed(0)} ms`);

    // One service for the client commands, with a small batch to ask about.
    const server = spawn(process.execPath, ['dist/cli.js', 'all'], { cwd: dir, env, stdio: 'ignore' });
    scope.defer('stop the service', async () => {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    });
    while (
      !(await httpRequest(`${base}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      ))
    )
      await sleep(50);
    const client = new OpenAI({ apiKey: BENCH_API_KEY, baseURL: `${base}/v1` });
    const line = (i: number) =>
      JSON.stringify({
        custom_id: `l${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `hi ${i}` }] },
      });
    const input = await client.files.create({
      file: await toFile(Buffer.from([0, 1, 2].map(line).join('\n')), 'in.jsonl'),
      purpose: 'batch',
    });
    const batch = await client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const cliEnv = { ...env, FERRY_BASE_URL: base, FERRY_API_KEY: BENCH_API_KEY };
    const statusRun = (cmd: string, args: string[]) =>
      timed(() => {
        const r = spawnSync(cmd, args, { cwd: dir, env: cliEnv, stdio: 'ignore' });
        if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}`);
        return r.status;
      });
    const nodeStatus = Array.from({ length: rounds }, () => statusRun(process.execPath, ['dist/cli.js', 'status', batch.id]));
    const npxStatus = Array.from({ length: rounds }, () => statusRun('npx', ['ferry', 'status', batch.id]));
    log(`node dist/cli.js status: median ${median(nodeStatus).toFixed(0)} ms; npx ferry status: median ${median(npxStatus).toFixed(0)} ms`);
    return {
      dir,
      rounds,
      build_ms: round(buildMs),
      npm_start_ready_ms: round(readyMs),
      shutdown_idle_ms: round(stopMs),
      node_status_ms: round(median(nodeStatus)),
      npx_status_ms: round(median(npxStatus)),
    };
  },
};

function timed(fn: () => unknown): number {
  const t0 = now();
  fn();
  return now() - t0;
}

export default section;
