/**
 * `npm run bench` runs every section; `npm run bench -- upload [other…]` runs the named ones.
 * Each section prints a readable report as it goes; one JSON line per section follows at the end.
 * Targets are reported as PASS/MISS and never change the exit code; a section that cannot
 * measure (it threw) makes the exit code 1.
 */
import { closeAllScopes, Scope, type Section, type SectionResult } from './lib.js';

/** Sections, in running order. Adding one is one line here. */
const SECTIONS: Record<string, () => Promise<{ default: Section }>> = {
  upload: () => import('./upload.js'),
  jobs: () => import('./jobs.js'),
  azure: () => import('./azure.js'),
  batch: () => import('./batch.js'),
  quota: () => import('./quota.js'),
  machines: () => import('./machines.js'),
  recovery: () => import('./recovery.js'),
  cost: () => import('./cost.js'),
  console: () => import('./console.js'),
  start: () => import('./start.js'),
};

const USAGE = `Usage: npm run bench [-- <section>...]\nSections: ${Object.keys(SECTIONS).join(', ')}`;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('-h') || args.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const unknown = args.filter((a) => !(a in SECTIONS));
  if (unknown.length) {
    process.stderr.write(`Unknown section(s): ${unknown.join(', ')}\n${USAGE}\n`);
    return 2;
  }
  const names = args.length ? Object.keys(SECTIONS).filter((n) => args.includes(n)) : Object.keys(SECTIONS);

  const lines: string[] = [];
  let failed = false;
  for (const name of names) {
    if (interrupted) break;
    const section = (await SECTIONS[name]()).default;
    process.stdout.write(`\n=== ${section.name}: ${section.title} ===\n`);
    const scope = new Scope();
    const started = Date.now();
    let result: SectionResult;
    try {
      result = { ok: true, ...(await section.run({ scope, log: (l = '') => process.stdout.write(`${l}\n`) })) };
    } catch (err) {
      failed = true;
      const message = interrupted ? 'interrupted' : ((err as Error)?.message ?? String(err));
      process.stdout.write(`FAILED: ${message}\n`);
      result = { ok: false, error: message };
    }
    const cleanup = await scope.close();
    for (const e of cleanup) process.stdout.write(`cleanup problem: ${e}\n`);
    lines.push(JSON.stringify({ section: section.name, ...result, seconds: Math.round((Date.now() - started) / 100) / 10 }));
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
  return failed ? 1 : 0;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${signal}: cleaning up…\n`);
    void closeAllScopes().finally(() => process.exit(130));
  });
}

main().then(
  // Interrupted: the signal handler exits once the cleanup it started is done.
  (code) => (interrupted ? undefined : process.exit(code)),
  (err) => {
    process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
    void closeAllScopes().finally(() => process.exit(1));
  },
);
