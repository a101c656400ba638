import type { ChangeWaiter } from '../core/events.js';
import type { BlockingReaders } from '../core/redis.js';
import type { Services } from '../core/services.js';
import type { KeyRing } from './auth.js';

/** What the routers need: the shared services, long-poll waiter, stream readers, keys, and a readiness probe for workers. */
export interface ApiDeps {
  services: Services;
  waiter: ChangeWaiter;
  readers: BlockingReaders;
  ring: KeyRing;
  workersReady: () => Promise<boolean>;
  /** Aborted when the API shuts down: waits answer with what they have, streams say where the job goes on. */
  stopping: AbortSignal;
}
