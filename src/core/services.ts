/**
 * The shared pieces every process builds once from the configuration: Redis,
 * key names, records, staging and queue handles. API and workers keep no
 * state of their own beyond these.
 */
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { Keys } from './keys.js';
import { createRedis, logErrors } from './redis.js';
import { QUEUES, queuePrefix, upstreamJobOptions, type QueueData, type QueueName } from './queues.js';
import { FileStore } from './records/files.js';
import { JobStore } from './records/jobs.js';
import { BatchStore } from './records/batches.js';
import { Idempotency } from './idempotency.js';
import { ModelCatalog } from './models.js';
import { DeliveryStore, EndpointStore } from './records/webhooks.js';
import { LocalStagingStore, type StagingStore } from './staging.js';
import { PartedStaging } from './staging-parts.js';
import { UPLOAD_TTL_SECONDS, UploadStore } from './records/uploads.js';
import { UsageLedger } from './records/usage.js';

export interface Services {
  config: Config;
  logger: Logger;
  redis: Redis;
  keys: Keys;
  files: FileStore;
  jobs: JobStore;
  batches: BatchStore;
  idempotency: Idempotency;
  models: ModelCatalog;
  endpoints: EndpointStore;
  deliveries: DeliveryStore;
  staging: PartedStaging;
  uploads: UploadStore;
  /** Every Gemini call's tokens and cost (the usage and costs reports, a batch's usage). */
  usage: UsageLedger;
  queues: { [Q in QueueName]: Queue<QueueData[Q]> };
  /** Adds parent jobs with their children (a batch and its lines). */
  flows: FlowProducer;
  close(): Promise<void>;
}

export function createQueue<Q extends QueueName>(name: Q, config: Config, connection: Redis): Queue<QueueData[Q]> {
  return new Queue<QueueData[Q]>(name, {
    connection,
    prefix: queuePrefix(config, name),
    defaultJobOptions: upstreamJobOptions(config),
  });
}

/** `staging`: where uploaded bytes wait (a blob container, built above core); a local directory by default. */
export async function createServices(config: Config, logger: Logger, opts: { staging?: StagingStore } = {}): Promise<Services> {
  const redis = createRedis(config, 'client');
  logErrors(redis, logger, 'records connection');
  const keys = new Keys(config.prefix, config.redisClusterNodes !== null);
  const queueRedis = createRedis(config, 'queue');
  logErrors(queueRedis, logger, 'queue connection');
  const queues = {
    upload: createQueue(QUEUES.upload, config, queueRedis),
    generate: createQueue(QUEUES.generate, config, queueRedis),
    deliver: createQueue(QUEUES.deliver, config, queueRedis),
    maintenance: createQueue(QUEUES.maintenance, config, queueRedis),
    batch: createQueue(QUEUES.batch, config, queueRedis),
    early: createQueue(QUEUES.early, config, queueRedis),
  };
  // Flows are batches: their jobs live under the batch queue's prefix (its slot on a cluster).
  const flows = new FlowProducer({ connection: queueRedis, prefix: queuePrefix(config, QUEUES.batch) });
  // Without a listener BullMQ writes each connection error to stderr with its stack.
  for (const [name, q] of Object.entries(queues)) logErrors(q, logger, `${name} queue`);
  logErrors(flows, logger, 'flow producer');
  return {
    config,
    logger,
    redis,
    keys,
    files: new FileStore(redis, keys, config.fileRetentionSeconds),
    // An upload lives an hour; its record is kept a day more, so a late call learns it expired.
    uploads: new UploadStore(redis, keys, UPLOAD_TTL_SECONDS + 86400),
    jobs: new JobStore(redis, keys, config.jobRetentionSeconds, config.responseRetentionSeconds),
    batches: new BatchStore(redis, keys, config.jobRetentionSeconds),
    idempotency: new Idempotency(redis, keys, config.idempotencyLeaseMs),
    models: new ModelCatalog(redis, keys),
    usage: new UsageLedger(redis, keys),
    endpoints: new EndpointStore(redis, keys),
    deliveries: new DeliveryStore(redis, keys, config.jobRetentionSeconds),
    staging: new PartedStaging(opts.staging ?? new LocalStagingStore(config.stagingDir)),
    queues,
    flows,
    async close() {
      await Promise.all([...Object.values(queues).map((q) => q.close()), flows.close()]);
      await Promise.all([redis, queueRedis].map((r) => r.quit().catch(() => r.disconnect())));
    },
  };
}
