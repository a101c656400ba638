/**
 * Bull Board over every queue (each shard of the sharded ones), for the admin key. Loaded on its
 * first request: few processes are ever asked for it, and its modules cost every start-up.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Router } from 'express';
import { eachQueue, type Queues } from '../core/services.js';

export function queueBoard(queues: Queues, basePath: string): Router {
  const board = new ExpressAdapter();
  board.setBasePath(basePath);
  createBullBoard({ queues: eachQueue(queues).map(({ handle }) => new BullMQAdapter(handle)), serverAdapter: board });
  return board.getRouter() as Router;
}
