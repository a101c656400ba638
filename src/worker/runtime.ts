/**
 * The worker runtime: one BullMQ Worker per queue, sharing Ferry's backoff
 * policy, metrics and failure handling. Shutdown lets running jobs finish
 * (or, past the grace period, leaves them to be picked up again).
 */
import { keepModelCatalog } from './models.js';
import { failedForGood, retryPolicy } from '../core/attempts.js';
import { Worker, type Job, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis, logErrors } from '../core/redis.js';
import { jobDuration, registerAdmissionRates } from '../core/metrics.js';
import { Admission } from '../core/admission.js';
import { QUEUES, queueAddresses, type QueueAddress, type QueueName } from '../core/queues.js';
import { retryDelayMs } from '../core/retry.js';
import type { Services } from '../core/services.js';
import { createAzureProvider, missingAzureSettings, type AzureBlobStore } from '../providers/azure/index.js';
import { createGeminiProvider, type GeminiProvider } from '../providers/gemini/index.js';
import { maintainOnStart, maintenanceProcessor, scheduleMaintenance } from './maintenance.js';
import { onUploadJobFailedForGood, uploadProcessor } from './upload.js';
import { earlyUploadProcessor } from './early-upload.js';
import { generateProcessor, onGenerateJobFailedForGood } from './generate.js';
import { deliverProcessor, onDeliveryFailedForGood, webhookBackoffMs } from './deliver.js';
import { batchProcessor, onBatchJobFailedForGood } from './batch.js';
import { ensureGeminiCopy } from './gemini-copy.js';
import { sampleActivity } from './activity.js';

export interface WorkerRuntime {
  workers: Worker[];
  /** Jobs this process is running now, by queue (what a shutdown waits for). */
  inFlight(): Partial<Record<QueueName, number>>;
  gemini: GeminiProvider;
  /** Null when the Azure settings are incomplete. */
  azure: AzureBlobStore | null;
  running(): boolean;
  close(): Promise<void>;
}

/** Batch validations and finalizations one worker process runs at once (the lines run on the generate queue). */
const BATCH_JOB_CONCURRENCY = 4;

export interface GeminiTarget {
  apiKey: string;
  baseUrl?: string;
}

type FailureHandler = (job: Job, err: Error) => Promise<void>;

/**
 * The BullMQ Workers of one queue, one per shard, with Ferry's backoff policy, job-duration
 * metrics and a handler for jobs failed for good. The process's concurrency for the queue is
 * shared out over its shards (work hashes evenly over them), so a setting means the same with
 * any number of shards.
 */
function queueWorkers(
  services: Services,
  connection: Redis,
  spec: { queue: QueueName; processor: Processor; concurrency: number; onFailedForGood?: FailureHandler },
  running: Partial<Record<QueueName, number>>,
): Worker[] {
  const shards = queueAddresses(services.config, spec.queue);
  const concurrency = Math.ceil(spec.concurrency / shards.length);
  const { queue } = spec;
  const processor: Processor = async (job, token) => {
    running[queue] = (running[queue] ?? 0) + 1;
    try {
      return await spec.processor(job, token);
    } finally {
      running[queue]! -= 1;
    }
  };
  return shards.map((address) => queueWorker(services, connection, { ...spec, processor, address, concurrency }));
}

function queueWorker(
  services: Services,
  connection: Redis,
  spec: { queue: QueueName; address: QueueAddress; processor: Processor; concurrency: number; onFailedForGood?: FailureHandler },
): Worker {
  const { config, logger } = services;
  const { queue, onFailedForGood } = spec;
  const worker = new Worker(spec.address.name, spec.processor, {
    connection,
    prefix: spec.address.prefix,
    concurrency: spec.concurrency,
    // A dead worker's job is moved back to wait by the first stall check after its lock expires
    // and it was seen active without one: within jobLockMs plus two checks.
    lockDuration: config.jobLockMs,
    stalledInterval: Math.max(500, Math.round(config.jobLockMs / 4)),
    maxStalledCount: 10,
    settings: {
      backoffStrategy: (attemptsMade: number, type?: string, err?: Error) =>
        type === 'webhook'
          ? webhookBackoffMs(config.webhookRetrySchedule, attemptsMade)
          : retryDelayMs(err, attemptsMade, retryPolicy(config)),
    },
  });
  const seconds = (job: Job) => (Date.now() - (job.processedOn ?? Date.now())) / 1000;
  worker.on('completed', (job) => jobDuration.observe({ queue, outcome: 'completed' }, seconds(job)));
  worker.on('failed', (job, err) => {
    if (!job) return;
    const forGood = failedForGood(job, err);
    jobDuration.observe({ queue, outcome: forGood ? 'failed' : 'retried' }, seconds(job));
    if (forGood && onFailedForGood) {
      onFailedForGood(job, err).catch((e) => logger.error({ err: e.message, job_id: job.id }, 'failure handler failed'));
    }
  });
  logErrors(worker, logger, `${spec.address.name} worker`);
  return worker;
}

/** The upstreams the workers talk to: Gemini (or the emulator), and Azure when its settings are complete. */
function providers(config: Services['config'], target: GeminiTarget): { gemini: GeminiProvider; azure: AzureBlobStore | null } {
  const gemini = createGeminiProvider({
    ...target,
    chunkBytes: config.uploadChunkBytes,
    policy: retryPolicy(config),
    credentialsFile: config.gemini.credentialsFile,
  });
  return { gemini, azure: missingAzureSettings(config.azure).length === 0 ? createAzureProvider(config) : null };
}

export async function startWorkers(services: Services, target: GeminiTarget): Promise<WorkerRuntime> {
  const { config, logger } = services;
  const { gemini, azure } = providers(config, target);
  const connection = createRedis(config, 'worker');
  logErrors(connection, logger, 'worker connection');

  const running: Partial<Record<QueueName, number>> = {};
  const make = (queue: QueueName, processor: Processor, concurrency: number, onFailedForGood?: FailureHandler) =>
    queueWorkers(services, connection, { queue, processor, concurrency, onFailedForGood }, running);

  const workers = [
    ...make(QUEUES.upload, uploadProcessor({ services, gemini, azure }), config.uploadConcurrency, (job, err) =>
      onUploadJobFailedForGood(services, job, err),
    ),
    ...make(QUEUES.maintenance, maintenanceProcessor(services), 1),
    ...make(QUEUES.early, earlyUploadProcessor({ services, gemini, azure }), config.uploadConcurrency),
  ];
  const admission = new Admission(services.redis, services.keys, { apiKey: target.apiKey, rpm: config.geminiRpm, tpm: config.geminiTpm });
  const unregisterRates = registerAdmissionRates(() => admission.states());
  workers.push(
    ...make(
      QUEUES.generate,
      generateProcessor({ services, gemini, admission, geminiCopy: (f) => ensureGeminiCopy({ services, gemini, azure }, f) }),
      config.generateConcurrency,
      (job, err) => onGenerateJobFailedForGood(services, job, err),
    ),
    ...make(QUEUES.deliver, deliverProcessor(services), config.deliverConcurrency, (job, err) =>
      onDeliveryFailedForGood(services, job, err),
    ),
    ...make(
      QUEUES.batch,
      batchProcessor(services, { services, gemini, geminiCopy: (f, until) => ensureGeminiCopy({ services, gemini, azure }, f, until) }),
      BATCH_JOB_CONCURRENCY,
      (job, err) => onBatchJobFailedForGood(services, job, err),
    ),
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  await scheduleMaintenance(services);
  // Not awaited: after a long outage it may have much to do, and the workers run meanwhile.
  const firstPass = maintainOnStart(services);
  const catalog = keepModelCatalog(services, gemini);
  const sampler = sampleActivity(services, admission);
  logger.info({ queues: workers.map((w) => w.name), prefix: config.prefix }, 'workers started');

  return {
    workers,
    inFlight: () => ({ ...running }),
    gemini,
    azure,
    running: () => workers.every((w) => w.isRunning()),
    async close() {
      catalog.stop();
      sampler.stop();
      await Promise.all([firstPass, catalog.first, ...workers.map((w) => w.close())]);
      unregisterRates();
      admission.close();
      gemini.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
