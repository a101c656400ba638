/** Operations endpoints: liveness, readiness, Prometheus metrics and Bull Board. */
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import { storeUnavailable } from '../core/errors.js';
import { eachQueue } from '../core/services.js';
import { metricsRefusal, registerQueueDepth, registry } from '../core/metrics.js';
import { requireAdmin } from './auth.js';
import type { ApiDeps } from './deps.js';

const BOARD_PATH = '/admin/queues';

const STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized', 'waiting-children'] as const;

/** Bull Board answers its own 500 when Redis is down; Ferry's 503 says what is wrong and that a retry helps. */
function storeReachable(redis: Redis) {
  return (_req: Request, _res: Response, next: NextFunction) => {
    if (redis.status === 'ready') return next();
    next(storeUnavailable());
  };
}

export function opsRouter(deps: ApiDeps): { router: Router; close: () => void } {
  const { redis, queues } = deps.services;
  const r = Router();

  r.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  r.get('/readyz', async (_req, res) => {
    // A connection that is not ready answers at once; a ready one must also answer a ping.
    const redisOk =
      redis.status === 'ready' &&
      (await redis.ping().then(
        () => true,
        () => false,
      ));
    const workersOk = redisOk && (await deps.workersReady().catch(() => false));
    res
      .status(redisOk && workersOk ? 200 : 503)
      .json({ status: redisOk && workersOk ? 'ready' : 'not_ready', redis: redisOk, workers: workersOk });
  });

  const unregister = registerQueueDepth(async () => {
    // A sharded queue counts as one: dashboards read the queue, not where its shards live.
    const rows = new Map<string, { queue: string; state: string; count: number }>();
    for (const { queue, handle } of eachQueue(queues)) {
      const counts = await handle.getJobCounts(...STATES);
      for (const state of STATES) {
        const key = `${queue}/${state}`;
        const row = rows.get(key) ?? { queue, state, count: 0 };
        row.count += counts[state] ?? 0;
        rows.set(key, row);
      }
    }
    return [...rows.values()];
  });

  r.get('/metrics', async (req, res) => {
    const refusal = metricsRefusal(deps.services.config, req.headers.authorization);
    if (refusal) return void res.status(refusal.status).json(refusal.toBody());
    res.setHeader('Content-Type', registry.contentType);
    res.send(await registry.metrics());
  });

  let board: Promise<Router> | null = null;
  const boardRouter = () => (board ??= import('./queue-board.js').then((m) => m.queueBoard(queues, BOARD_PATH)));
  r.use(BOARD_PATH, requireAdmin(deps.ring), storeReachable(redis), (req, res, next) => {
    boardRouter().then((b) => b(req, res, next), next);
  });
  return { router: r, close: unregister };
}
