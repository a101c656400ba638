/** Emulator controls over HTTP (/_emulator/...), for tests that run the emulator in another process. */

import { endBatch } from './batches.js';
import type { EmulatorContext, Handler } from './context.js';
import { notFound } from './errors.js';
import { validateFaultRules } from './faults.js';
import { readJson, sendJson } from './http.js';
import type { LatencySetting, QuotaSetting } from './types.js';
import type { TierSetting } from './tiers.js';

const CONTROL_BODY_LIMIT = 1024 * 1024;

/**
 * Forgets files, upload sessions, batches, stats, faults and quota usage. The quota and latency
 * settings and the batch schedule stay: they describe the production conditions a run is made
 * under, not its state. The batch setting's failKeys and endState are faults and are forgotten.
 * The quota's schedule starts again: a run made after a reset meets it from its first step, as the
 * stats' quota timeline then says.
 */
export function resetState(ctx: EmulatorContext): void {
  ctx.batches.clear();
  ctx.files.clear();
  ctx.uploads.clear();
  ctx.stats.reset();
  ctx.billing.reset();
  ctx.caches.clear();
  ctx.faults.reset();
  ctx.quota.clearUsage();
  ctx.latency.restart();
}

/** The counters, and the quota's limits over time for a benchmark to compute what a moving quota allowed. */
export const statsSnapshot = (ctx: EmulatorContext) => ({
  ...ctx.stats.snapshot(ctx.quota.timeline()),
  sessionStatus: ctx.uploads.statuses(),
});

export const handleGetStats: Handler = async (ctx, _req, res) => sendJson(res, 200, statsSnapshot(ctx));

/** What the model calls were billed since start (or the last reset), per model, tier and mode. */
export const handleGetBilling: Handler = async (ctx, _req, res) =>
  sendJson(res, 200, {
    ...ctx.billing.snapshot(),
    cacheStorageTokenHours: Object.fromEntries(ctx.caches.storageTokenHours),
    liveCaches: ctx.caches.list().length,
  });

export const handleGetFaults: Handler = async (ctx, _req, res) => sendJson(res, 200, ctx.faults.list());

export const handlePutFaults: Handler = async (ctx, req, res) => {
  ctx.faults.set(validateFaultRules(await readJson(req, CONTROL_BODY_LIMIT)));
  sendJson(res, 200, ctx.faults.list());
};

export const handleGetQuota: Handler = async (ctx, _req, res) => sendJson(res, 200, ctx.quota.get());

/** Replaces the whole setting (absent fields are unlimited, or their default) and answers it; a schedule starts now. */
export const handlePutQuota: Handler = async (ctx, req, res) => {
  // set() validates first: a 400 leaves the setting as it was.
  ctx.quota.set((await readJson(req, CONTROL_BODY_LIMIT)) as QuotaSetting);
  sendJson(res, 200, ctx.quota.get());
};

export const handleGetTiers: Handler = async (ctx, _req, res) => sendJson(res, 200, ctx.tiers.get());

/** Replaces the Flex tier's setting (shedProbability, shedStatus, extraLatencyMs) and answers it. */
export const handlePutTiers: Handler = async (ctx, req, res) => {
  ctx.tiers.set((await readJson(req, CONTROL_BODY_LIMIT)) as TierSetting);
  sendJson(res, 200, ctx.tiers.get());
};

export const handleGetLatency: Handler = async (ctx, _req, res) => sendJson(res, 200, ctx.latency.get());

export const handlePutLatency: Handler = async (ctx, req, res) => {
  ctx.latency.set((await readJson(req, CONTROL_BODY_LIMIT)) as LatencySetting);
  sendJson(res, 200, ctx.latency.get());
};

export const handleReset: Handler = async (ctx, _req, res) => {
  resetState(ctx);
  sendJson(res, 200, {});
};

export const handleExpireFile: Handler = async (ctx, _req, res, { params }) => {
  if (!ctx.files.expire(params.id)) throw notFound(`File files/${params.id} does not exist.`);
  sendJson(res, 200, {});
};

export const handleGetBatchSetting: Handler = async (ctx, _req, res) => sendJson(res, 200, ctx.batches.getSetting());

/** Changes the fields given (the others keep their value) and answers the whole setting. */
export const handlePutBatchSetting: Handler = async (ctx, req, res) => {
  ctx.batches.update(await readJson(req, CONTROL_BODY_LIMIT));
  sendJson(res, 200, ctx.batches.getSetting());
};

export const handleExpireBatch: Handler = async (ctx, _req, res, { params }) => {
  await endBatch(ctx, params.id, 'EXPIRED');
  sendJson(res, 200, {});
};

export const handleFailBatch: Handler = async (ctx, _req, res, { params }) => {
  await endBatch(ctx, params.id, 'FAILED');
  sendJson(res, 200, {});
};
