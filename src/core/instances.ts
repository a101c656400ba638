/**
 * The processes that run on one Redis prefix announce themselves and where they stage, so that a
 * process starting beside one that stages elsewhere (a second checkout given the same prefix, a
 * worker on another host without shared staging) says so at once, rather than after uploads fail.
 */
import { hostname } from 'node:os';
import type { Services } from './services.js';

export interface Instance {
  name: string;
  command: string;
  staging: string;
  seenAt: number;
}

const REFRESH_MS = 60_000;
/** An entry older than this is a process that stopped without saying so (killed). */
const STALE_MS = 3 * REFRESH_MS;

/**
 * Announces this process (and keeps announcing it) and answers the live processes whose staging
 * differs from its own. The returned stop removes the announcement.
 */
export async function announce(services: Services, command: string): Promise<{ others: Instance[]; stop: () => Promise<void> }> {
  const key = services.keys.instances();
  const name = `${hostname()}:${process.pid}`;
  const write = () =>
    services.redis.hset(
      key,
      name,
      JSON.stringify({ name, command, staging: services.staging.location, seenAt: Date.now() } satisfies Instance),
    );
  await write();
  const timer = setInterval(() => void write().catch(() => {}), REFRESH_MS);
  timer.unref();
  const all = Object.values(await services.redis.hgetall(key)).map((v) => JSON.parse(v) as Instance);
  const stale = all.filter((i) => Date.now() - i.seenAt > STALE_MS).map((i) => i.name);
  if (stale.length) await services.redis.hdel(key, ...stale);
  const others = all.filter((i) => i.name !== name && !stale.includes(i.name) && i.staging !== services.staging.location);
  return {
    others,
    stop: async () => {
      clearInterval(timer);
      await services.redis.hdel(key, name);
    },
  };
}
