/** Emulator controls over HTTP (/_emulator/...), for tests that run the emulator in another process. */

import type { EmulatorContext, Handler } from './context.js';
import { notFound } from './errors.js';
import { validateFaultRules } from './faults.js';
import { readJson, sendJson } from './http.js';

const CONTROL_BODY_LIMIT = 1024 * 1024;

/** Forgets files, upload sessions, stats and faults. */
export function resetState(ctx: EmulatorContext): void {
  ctx.files.clear();
  ctx.uploads.clear();
  ctx.stats.reset();
  ctx.faults.reset();
}

export const handleGetStats: Handler = async (ctx, _req, res) => sendJson(res, 200, ctx.stats.snapshot());

export const handleGetFaults: Handler = async (ctx, _req, res) => sendJson(res, 200, ctx.faults.list());

export const handlePutFaults: Handler = async (ctx, req, res) => {
  ctx.faults.set(validateFaultRules(await readJson(req, CONTROL_BODY_LIMIT)));
  sendJson(res, 200, ctx.faults.list());
};

export const handleReset: Handler = async (ctx, _req, res) => {
  resetState(ctx);
  sendJson(res, 200, {});
};

export const handleExpireFile: Handler = async (ctx, _req, res, { params }) => {
  if (!ctx.files.expire(params.id)) throw notFound(`File files/${params.id} does not exist.`);
  sendJson(res, 200, {});
};
