/**
 * `GET /v1/activity` (Ferry's own): the last hour's counts and samples in 10-second buckets, for
 * the console's overview. `seconds` (up to 7,200) reaches further back; the admin key's `tenant`
 * narrows the per-tenant series to one.
 */
import { Router } from 'express';
import { BadRequestError } from '../core/errors.js';
import { nowSeconds } from '../core/time.js';
import { ACTIVITY_MAX_SECONDS, activityReport } from '../domain/activity.js';
import type { ApiDeps } from './deps.js';
import { answerWhenChanged } from './long-poll.js';
import { listTenants } from './params.js';

export function activityRouter(deps: ApiDeps): Router {
  const r = Router();
  r.get('/', async (req, res) => {
    const raw = req.query.seconds;
    const seconds = raw === undefined || raw === '' ? 3600 : Number(raw);
    if (typeof raw === 'object' || !Number.isInteger(seconds) || seconds < 10 || seconds > ACTIVITY_MAX_SECONDS) {
      throw new BadRequestError(`"seconds" must be a whole number of seconds from 10 to ${ACTIVITY_MAX_SECONDS}.`, { param: 'seconds' });
    }
    const tenants = await listTenants(deps, req, res);
    await answerWhenChanged(deps, req, res, () => activityReport(deps.services, { tenants, seconds, now: nowSeconds() }));
  });
  return r;
}
