/**
 * The console's build: console/src bundled and minified by esbuild into dist/console (app.js,
 * app.css, index.html, and chunks/ loaded later). Everything comes from node_modules: nothing is fetched at run time.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export async function buildConsole(root) {
  const { build } = await import('esbuild');
  const src = path.join(root, 'console');
  const out = path.join(root, 'dist', 'console');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const { metafile } = await build({
    metafile: true,
    absWorkingDir: root,
    entryPoints: { app: path.join(src, 'src', 'main.js') },
    bundle: true,
    minify: true,
    format: 'esm',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    target: ['es2020'],
    outdir: out,
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(path.join(src, 'index.html'), path.join(out, 'index.html'));
  // What a page load fetches (the page, the script and what it imports, its styles), and what loads later (the overview's uPlot).
  const gz = (f) => gzipSync(readFileSync(path.isAbsolute(f) ? f : path.join(out, f))).length;
  const loaded = new Set([path.join(out, 'index.html'), path.join(out, 'app.css')]);
  const follow = (file) => {
    if (loaded.has(file)) return;
    loaded.add(file);
    for (const i of metafile.outputs[path.relative(root, file)]?.imports ?? []) {
      if (i.kind === 'import-statement') follow(path.resolve(root, i.path));
    }
  };
  follow(path.join(out, 'app.js'));
  const all = Object.keys(metafile.outputs)
    .filter((f) => !f.endsWith('.map'))
    .map((f) => path.resolve(root, f))
    .concat(path.join(out, 'index.html'));
  const initial = [...loaded].reduce((a, f) => a + gz(f), 0);
  const chunks = all.filter((f) => !loaded.has(f)).reduce((a, f) => a + gz(f), 0);
  writeFileSync(path.join(out, 'size.json'), `${JSON.stringify({ gzipped_bytes: { initial, chunks, total: initial + chunks } })}\n`);
  return { initial, chunks };
}
