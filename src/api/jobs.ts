/** `/v1/jobs`: the native polling surface for asynchronous work. */
import { Router, type Response } from 'express';
import { BadRequestError, ConflictError } from '../core/errors.js';
import {
  FINAL_JOB_STATUSES,
  JOB_TYPES,
  OPEN_JOB_STATUSES,
  isFinalJob,
  type JobRecord,
  type JobStatus,
  type JobType,
} from '../core/records/jobs.js';
import { jobDetail, jobObject } from '../openai/jobs.js';
import { cancelJob } from '../domain/jobs.js';
import { principal } from './auth.js';
import type { ApiDeps } from './deps.js';
import { answerWhenChanged, isConditional, waitUntilFinal } from './long-poll.js';
import { listPage, listQuery, listTenants, waitSeconds, withOwner } from './params.js';

const STATUSES: JobStatus[] = [...OPEN_JOB_STATUSES, ...FINAL_JOB_STATUSES];

/** 202 Accepted with the job and where to poll it. */
export function acceptedJob(res: Response, rec: JobRecord) {
  res.status(202).setHeader('Location', `/v1/jobs/${rec.id}`).setHeader('Retry-After', '1').json(jobObject(rec));
}

/** A job that failed or was cancelled, answered as the SDKs expect: its error with its status (409 when cancelled). */
export function answerFailed(res: Response, rec: JobRecord) {
  if (rec.status === 'cancelled') throw new ConflictError(`Job '${rec.id}' was cancelled.`, { code: 'job_cancelled' });
  const e = rec.error!;
  res.status(e.status).json({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });
}

/** Waits (long-poll) until the job is final or `seconds` pass; answers the latest record. */
export function waitForJob(deps: ApiDeps, rec: JobRecord, seconds: number, res: Response): Promise<JobRecord> {
  return waitUntilFinal(deps, deps.services.jobs, rec, isFinalJob, seconds, res);
}

export function jobsRouter(deps: ApiDeps): Router {
  const { jobs } = deps.services;
  const r = Router();

  r.get('/', async (req, res) => {
    const q = listQuery(req, 1000, 20);
    const status = req.query.status;
    if (status !== undefined && !STATUSES.includes(status as JobStatus)) {
      throw new BadRequestError(`"status" must be one of: ${STATUSES.join(', ')}.`, { param: 'status' });
    }
    const type = req.query.type;
    if (type !== undefined && !JOB_TYPES.includes(type as JobType)) {
      throw new BadRequestError(`"type" must be one of: ${JOB_TYPES.join(', ')}.`, { param: 'type' });
    }
    const tenants = await listTenants(deps, req, res);
    const where = status || type ? (j: JobRecord) => (!status || j.status === status) && (!type || j.type === type) : undefined;
    const shown = (j: JobRecord) => withOwner(res, j, jobObject(j));
    await answerWhenChanged(deps, req, res, async () => listPage(await jobs.list(tenants, { ...q, where }), shown));
  });

  r.get('/:id', async (req, res) => {
    const { tenant, admin } = principal(res);
    const wait = waitSeconds(req);
    const rec = await jobs.getOwned(req.params.id, tenant, admin);
    const shown = (j: JobRecord) => withOwner(res, j, jobDetail(j));
    if (isConditional(req) || !wait)
      return answerWhenChanged(deps, req, res, async () => shown(await jobs.getOwned(rec.id, tenant, admin)));
    res.json(shown(await waitForJob(deps, rec, wait, res)));
  });

  r.post('/:id/cancel', async (req, res) => {
    const { tenant, admin } = principal(res);
    const rec = await jobs.getOwned(req.params.id, tenant, admin);
    if (!(await cancelJob(deps.services, rec)) && rec.status !== 'cancelled') {
      const now = await jobs.getOwned(rec.id, tenant, admin);
      if (now.status !== 'cancelled') throw new ConflictError(`Job '${rec.id}' has already ${now.status}.`, { code: 'job_finished' });
    }
    res.json(jobObject((await jobs.get(rec.id)) ?? rec));
  });

  return r;
}
