/** `/v1/models`: the Gemini models this key's tenant may name (the catalogue a worker read, narrowed by FERRY_MODELS). */
import { Router } from 'express';
import { nowSeconds } from '../core/time.js';
import { offeredModel, offeredModels } from '../domain/models.js';
import { modelObject } from '../openai/models.js';
import type { ApiDeps } from './deps.js';

export function modelsRouter(deps: ApiDeps): Router {
  const r = Router();

  r.get('/', async (_req, res) => {
    const { fetchedAt, models } = await offeredModels(deps.services);
    res.json({ object: 'list', data: models.map((m) => modelObject(m, fetchedAt ?? nowSeconds())) });
  });

  r.get('/:id', async (req, res) => {
    const { model, fetchedAt } = await offeredModel(deps.services, req.params.id);
    res.json(modelObject(model, fetchedAt ?? nowSeconds()));
  });

  return r;
}
