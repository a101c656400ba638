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
import { QUEUES, queueAddresses, queuePrefix, shardOf, upstreamJobOptions, type QueueData, type QueueName } from './queues.js';
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
import { ActivityLog } from './activity.js';

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
  /** The last hour's counts in 10-second buckets (the console's overview). */
  activity: ActivityLog;
  queues: Queues;
  /** Adds parent jobs with their children (a batch and its lines). */
  flows: FlowProducer;
  close(): Promise<void>;
}

/** A queue spread over shards (FERRY_QUEUE_SHARDS): work goes to the shard its id hashes to. */
export class QueueShards<Q extends QueueName> {
  constructor(readonly all: Queue<QueueData[Q]>[]) {}
  of(id: string): Queue<QueueData[Q]> {
    return this.all[shardOf(id, this.all.length)];
  }
}

export type Queues = { [Q in Exclude<QueueName, 'generate' | 'deliver'>]: Queue<QueueData[Q]> } & {
  generate: QueueShards<'generate'>;
  deliver: QueueShards<'deliver'>;
};

/** Every queue handle, each with the queue it is (a shard of it, for the sharded ones). */
export function eachQueue(queues: Queues): Array<{ queue: QueueName; handle: Queue }> {
  return Object.entries(queues).flatMap(([queue, q]) =>
    (q instanceof QueueShards ? q.all : [q as Queue]).map((handle) => ({ queue: queue as QueueName, handle })),
  );
}

function createShards<Q extends QueueName>(queue: Q, config: Config, connection: Redis): QueueShards<Q> {
  return new QueueShards(
    queueAddresses(config, queue).map(
      ({ name, prefix }) => new Queue<QueueData[Q]>(name, { connection, prefix, defaultJobOptions: upstreamJobOptions(config) }),
    ),
  );
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
  const queues: Queues = {
    upload: createQueue(QUEUES.upload, config, queueRedis),
    generate: createShards(QUEUES.generate, config, queueRedis),
    deliver: createShards(QUEUES.deliver, config, queueRedis),
    maintenance: createQueue(QUEUES.maintenance, config, queueRedis),
    batch: createQueue(QUEUES.batch, config, queueRedis),
    early: createQueue(QUEUES.early, config, queueRedis),
  };
  // Flows are batches (finalize, expand, gate): they live under the batch queue's prefix (its slot on a cluster).
  const flows = new FlowProducer({ connection: queueRedis, prefix: queuePrefix(config, QUEUES.batch) });
  // Without a listener BullMQ writes each connection error to stderr with its stack.
  for (const { handle } of eachQueue(queues)) logErrors(handle, logger, `${handle.name} queue`);
  const activity = new ActivityLog(redis, keys);
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
    activity,
    endpoints: new EndpointStore(redis, keys),
    deliveries: new DeliveryStore(redis, keys, config.jobRetentionSeconds),
    staging: new PartedStaging(opts.staging ?? new LocalStagingStore(config.stagingDir)),
    queues,
    flows,
    async close() {
      await Promise.all([...eachQueue(queues).map(({ handle }) => handle.close()), flows.close(), activity.close()]);
      await Promise.all([redis, queueRedis].map((r) => r.quit().catch(() => r.disconnect())));
    },
  };
}
