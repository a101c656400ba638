/**
 * The Python openai SDK for tests: a virtualenv under node_modules/.cache made on first use (from
 * this machine's package index when it has one), and a runner for commands and scripts.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

/** Runs a command; answers its exit code and output (never throws). A timeout kills it (code null). */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? root, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: `${stderr}${err.message}`, timedOut });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

const VENV = path.join(root, 'node_modules', '.cache', 'ferry-python');
const PYTHON = path.join(VENV, 'bin', 'python');
const LOCAL_INDEX = '/opt/pypi/simple';

/** The venv's python with `openai` importable, made if missing; an Error saying what failed otherwise. */
export async function pythonWithOpenAI(): Promise<string> {
  if (existsSync(PYTHON) && (await run(PYTHON, ['-c', 'import openai'])).code === 0) return PYTHON;
  if (!existsSync(PYTHON)) {
    const venv = await run('python3', ['-m', 'venv', VENV]);
    if (venv.code !== 0) throw new Error(`could not create the Python venv at ${VENV} (python3 -m venv): ${venv.stderr || venv.stdout}`);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' };
  if (existsSync(LOCAL_INDEX)) env.PIP_INDEX_URL = `file://${LOCAL_INDEX}`;
  const pip = await run(PYTHON, ['-m', 'pip', 'install', '--quiet', 'openai'], { env, timeoutMs: 300_000 });
  if (pip.code !== 0)
    throw new Error(`could not install the Python openai SDK into ${VENV} (pip install openai): ${pip.stderr || pip.stdout}`);
  const check = await run(PYTHON, ['-c', 'import openai']);
  if (check.code !== 0) throw new Error(`the Python openai SDK does not import after installing it: ${check.stderr}`);
  return PYTHON;
}
