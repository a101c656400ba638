#!/usr/bin/env node
/**
 * `npm run build`: TypeScript to dist/, the console (console/) to dist/console, then a stamp.
 * `--if-stale` (what `npm start` runs first) builds only when a source or setting changed since the
 * stamp (or dist/console is gone): TypeScript's own incremental mode still loads and checks the
 * whole program, seconds on every start with nothing to do.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stamp = path.join(root, 'dist', '.build-stamp');
const inputs = ['src', 'console', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];

const mtime = (file) => {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return null;
  }
};

/** The latest change under a file or folder (files and folders both: a deleted file changes its folder). */
function newest(p) {
  const here = mtime(p) ?? 0;
  let entries;
  try {
    entries = readdirSync(p, { withFileTypes: true });
  } catch {
    return here;
  }
  return entries.reduce(
    (latest, e) => Math.max(latest, e.isDirectory() ? newest(path.join(p, e.name)) : (mtime(path.join(p, e.name)) ?? 0)),
    here,
  );
}

const built = mtime(stamp);
const consoleMissing = existsSync(path.join(root, 'console')) && !existsSync(path.join(root, 'dist', 'console', 'index.html'));
const fresh = built !== null && !consoleMissing && inputs.every((p) => newest(path.join(root, p)) <= built);
if (process.argv.includes('--if-stale') && fresh) process.exit(0);

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const run = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (run.status !== 0) process.exit(run.status ?? 1);
chmodSync(path.join(root, 'dist', 'cli.js'), 0o755);
// The console's sources are not in every build context (an image built from src alone): no console then.
if (existsSync(path.join(root, 'console', 'build.mjs'))) {
  const { buildConsole } = await import('../console/build.mjs');
  const { initial, chunks } = await buildConsole(root);
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`console: dist/console (${kib(initial)} gzipped, and ${kib(chunks)} loaded with the overview)`);
}
writeFileSync(stamp, `${new Date().toISOString()}\n`);
