/**
 * `/v1/organization/usage/completions`, `…/usage/embeddings` and `/v1/organization/costs`: the usage ledger in OpenAI's
 * report shape. A tenant's key sees its own usage; the admin key every tenant's (`project_ids`
 * narrows it, `group_by=project_id` names them).
 */
import { Router, type Request, type Response } from 'express';
import { nowSeconds } from '../core/time.js';
import { usageReport } from '../domain/usage.js';
import { parseReportQuery, reportPage, type ReportKind } from '../openai/usage.js';
import { principal } from './auth.js';
import type { ApiDeps } from './deps.js';

export function organizationRouter(deps: ApiDeps): Router {
  const r = Router();
  r.get('/usage/completions', (req, res) => report(deps, req, res, 'completions'));
  r.get('/usage/embeddings', (req, res) => report(deps, req, res, 'embeddings'));
  r.get('/costs', (req, res) => report(deps, req, res, 'costs'));
  return r;
}

async function report(deps: ApiDeps, req: Request, res: Response, kind: ReportKind) {
  // The raw query: SDKs spell arrays differently (`group_by[]=`, repeated names), all read alike.
  const q = parseReportQuery(new URL(req.originalUrl, 'http://x').searchParams, kind, nowSeconds());
  const p = principal(res);
  const known = p.admin ? await deps.services.usage.tenants() : [p.tenant];
  const tenants = q.projectIds ? known.filter((t) => q.projectIds!.includes(t)) : known;
  const family = kind === 'costs' ? null : kind;
  const { buckets, next } = await usageReport(deps.services, { ...q, tenants, family });
  res.json(reportPage(kind, buckets, next, q.groupBy));
}
