import { Router } from 'express';
import { emptyQuery } from '../api/schemas.js';
import { validate } from '../api/validate.js';
import type { RegistryStore } from '../store/index.js';
import type { LoadHistory } from './load-history.js';

/**
 * `GET /v1/machines/load`: every machine with its proxy's load and culprit over the last hour
 * (sampled by the registry), oldest sample first: what the dashboard's charts draw.
 */
export function loadHistoryRoutes(store: RegistryStore, history: LoadHistory): Router {
  const r = Router();
  r.get('/machines/load', async (req, res) => {
    validate(emptyQuery, req.query, 'query');
    const machines = await store.listMachines();
    const samples = await history.read(machines.map((m) => m.name));
    res.json({ machines: machines.map((m, i) => ({ name: m.name, facts: m.facts, heartbeatAt: m.heartbeatAt, samples: samples[i]!.samples })) });
  });
  return r;
}
