/**
 * Named points between the Redis writes of a step that accepts or finishes work, where the process
 * can be made to die: `FERRY_CRASH_AT=<point>[:<n>]` SIGKILLs it the n-th time (default 1st) it
 * passes that point. This is how the tests prove that a crash between any two writes loses and
 * doubles nothing, instead of hoping that a kill from outside lands there. Unset, a point costs one
 * comparison.
 */
const spec = parse(process.env.FERRY_CRASH_AT);
let passes = 0;

function parse(raw: string | undefined): { point: string; nth: number } | null {
  if (!raw) return null;
  const [point, n] = raw.split(':');
  const nth = n === undefined ? 1 : Number(n);
  if (!point || !Number.isInteger(nth) || nth < 1) throw new Error(`FERRY_CRASH_AT must be <point> or <point>:<n> (n ≥ 1), not "${raw}".`);
  return { point, nth };
}

export function crashPoint(point: string): void {
  if (spec === null || spec.point !== point || ++passes < spec.nth) return;
  // Like a power cut: no handler, no flush, no further line runs.
  process.kill(process.pid, 'SIGKILL');
}
