/**
 * Every key Ferry writes, named in one place (BullMQ's queues name their own: queuePrefix in
 * queues.ts). On a Redis Cluster keys carry hash tags, so that each multi-key command keeps its
 * keys in one slot while records spread over every master: a record, and its batch's line
 * counters, are tagged by the record's id; a model's admission keys by project and model.
 */
export class Keys {
  constructor(
    readonly prefix: string,
    /** Keys for a Redis Cluster: with hash tags. */
    readonly cluster = false,
  ) {}
  private tag(s: string) {
    return this.cluster ? `{${s}}` : s;
  }
  /** A record's hash: `file`, `job`, `batch`, … and its id. */
  record(kind: string, id: string) {
    return `${this.prefix}:${kind}:${this.tag(id)}`;
  }
  /** A tenant's index of records of a kind, optionally one of its secondary indexes. */
  tenantIndex(tenant: string, kind: string, sub?: string) {
    return `${this.prefix}:tenant:${tenant}:${kind}s${sub ? `:${sub}` : ''}`;
  }
  /** A batch's line counters (fed, completed, failed) and its bitmap of counted lines. */
  batchLines(batchId: string) {
    return `${this.record('batch', batchId)}:lines`;
  }
  batchDone(batchId: string) {
    return `${this.record('batch', batchId)}:done`;
  }
  /** The vectors Gemini Batch Mode has answered so far for one embeddings line (one per text). */
  batchEmbeddingParts(batchId: string, index: number) {
    return `${this.record('batch', batchId)}:embedding:${index}`;
  }
  /** Ids whose record is written and whose job may not be queued yet (maintenance repairs them). */
  enqueuePending() {
    return `${this.prefix}:enqueue-pending`;
  }
  /** One tenant's running completions (leases). */
  tenantRunning(tenant: string) {
    return `${this.prefix}:running:${tenant}`;
  }
  /** The lock of whoever makes a file's Gemini copy. */
  geminiCopyLock(fileId: string) {
    return `${this.prefix}:lock:gemini-copy:${fileId}`;
  }
  /**
   * A file's early upload (sent on to Gemini while the API still receives it): its session, what
   * the API decided (accepted or refused), and the lease of the worker sending it.
   */
  earlyUpload(fileId: string) {
    return `${this.record('file', fileId)}:early`;
  }
  earlyUploadLease(fileId: string) {
    return `${this.record('file', fileId)}:early-lease`;
  }
  /** A model's admission state under one Gemini project (a digest of its key), and its parts. */
  quota(project: string, model: string, part = '') {
    return `${this.prefix}:quota:${this.tag(`${project}:${model}`)}${part}`;
  }
  /**
   * A tenant's usage ledger, all in the tenant's slot (one script records a call in all of them):
   * the ids of a day's recorded calls (none is counted twice), a day's totals by hour, an hour's
   * by minute, and a batch's totals.
   */
  usageCalls(tenant: string, day: number) {
    return `${this.prefix}:usage:${this.tag(tenant)}:calls:${day}`;
  }
  usageDay(tenant: string, day: number) {
    return `${this.prefix}:usage:${this.tag(tenant)}:day:${day}`;
  }
  usageHour(tenant: string, hour: number) {
    return `${this.prefix}:usage:${this.tag(tenant)}:hour:${hour}`;
  }
  /** A month's cost (UTC, `yyyymm`), for the tenant's budget. */
  usageMonth(tenant: string, month: string) {
    return `${this.prefix}:usage:${this.tag(tenant)}:month:${month}`;
  }
  usageBatch(tenant: string, batchId: string) {
    return `${this.prefix}:usage:${this.tag(tenant)}:batch:${batchId}`;
  }
  /**
   * A shared request prefix of a tenant's (its digest): how often it was seen lately, and the Gemini
   * cache holding it, if one was made; the lock of whoever makes it.
   */
  contextCache(tenant: string, digest: string) {
    return `${this.prefix}:context-cache:${this.tag(tenant)}:${digest}`;
  }
  contextCacheLock(tenant: string, digest: string) {
    return `${this.prefix}:context-cache:${this.tag(tenant)}:${digest}:lock`;
  }
  /** The caches a batch's lines used (deleted when it ends). */
  batchContextCaches(batchId: string) {
    return `${this.record('batch', batchId)}:context-caches`;
  }
  /** The tenants that have usage (the admin key's reports go through them). */
  usageTenants() {
    return `${this.prefix}:usage-tenants`;
  }
  /** A minute's activity counts (core/activity.ts), by 10-second bucket, series and subject. */
  activity(minute: number) {
    return `${this.prefix}:activity:${minute}`;
  }
  /** Held by the worker that samples queue depths and admitted rates for the current bucket. */
  activitySampler() {
    return `${this.prefix}:activity-sampler`;
  }
  /** The processes running on this prefix, each with where it stages (a start-up warns of a mismatch). */
  instances() {
    return `${this.prefix}:instances`;
  }
  /** Held while one process sweeps the staging store for unfinished writes (at most one sweep per period). */
  stagingSweep() {
    return `${this.prefix}:staging-sweep`;
  }
  contentExpiry() {
    return `${this.prefix}:content-expiry`;
  }
  /** An upload's parts (Uploads API), in its record's slot. */
  uploadParts(uploadId: string) {
    return `${this.prefix}:upload-parts:${this.tag(uploadId)}`;
  }
  /** Uploads by the time they expire (their parts are then deleted). */
  uploadExpiry() {
    return `${this.prefix}:upload-expiry`;
  }
  /** Files by the time their client-set expiry (`expires_after`) deletes them everywhere. */
  fileExpiry() {
    return `${this.prefix}:file-expiry`;
  }
  /** The Redis Stream a streaming job's chunks are relayed through. */
  jobStream(jobId: string) {
    return `${this.prefix}:stream:${jobId}`;
  }
  /** The Gemini model catalogue a worker last read (core/models.ts). */
  modelCatalog() {
    return `${this.prefix}:models`;
  }
  idempotency(tenant: string, key: string) {
    return `${this.prefix}:idem:${tenant}:${key}`;
  }
  channel(topic: string) {
    return `${this.prefix}:events:${topic}`;
  }
}
