import { Router } from 'express';
import { BerthError } from '../../common/errors.js';
import type { RegistryStore } from '../store/index.js';
import {
  claimBody,
  emptyQuery,
  instanceParams,
  registerBody,
  releaseBody,
  renewBody,
  runningBody,
  stoppedBody,
  serviceParams,
  unregisterMatchingQuery,
} from './schemas.js';
import { validate } from './validate.js';

/** The seed's registry calls, plus the holder's calls (running, renew, release). */
export function serviceRoutes(store: RegistryStore): Router {
  const r = Router();

  // ListServices
  r.get('/services', async (req, res) => {
    validate(emptyQuery, req.query, 'query');
    res.json({ services: await store.listServices() });
  });

  // GetServiceInfo
  r.get('/services/:service', async (req, res) => {
    const { service } = validate(serviceParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    res.json({ service, instances: await store.getService(service) });
  });

  // ListUnclaimedServices: a service name once per unclaimed instance.
  r.get('/unclaimed', async (req, res) => {
    validate(emptyQuery, req.query, 'query');
    res.json({ services: await store.listUnclaimed() });
  });

  // RegisterInstance
  r.post('/services/:service/instances', async (req, res) => {
    const { service } = validate(serviceParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    const body = validate(registerBody, req.body, 'body');
    const instance = await store.register({ service, path: body.path, attributes: body.attributes, files: body.files });
    res.status(201).location(`/v1/services/${service}/instances/${instance.id}`).json(instance);
  });

  r.get('/services/:service/instances/:id', async (req, res) => {
    const { service, id } = validate(instanceParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    res.json(await instanceOf(store, service, id));
  });

  // UnregisterInstance by id
  r.delete('/services/:service/instances/:id', async (req, res) => {
    const { service, id } = validate(instanceParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    res.json(await store.unregister(service, id));
  });

  // UnregisterInstance(service, path, [host], [port]): one matching instance.
  r.delete('/services/:service/instances', async (req, res) => {
    const { service } = validate(serviceParams, req.params, 'path');
    const match = validate(unregisterMatchingQuery, req.query, 'query');
    res.json(await store.unregisterMatching(service, match));
  });

  // ClaimService
  r.post('/services/:service/claim', async (req, res) => {
    const { service } = validate(serviceParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    const body = validate(claimBody, req.body, 'body');
    res.json(await store.claim({ service, ...body }));
  });

  r.post('/services/:service/instances/:id/running', async (req, res) => {
    const { service, id } = validate(instanceParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    const body = validate(runningBody, req.body, 'body');
    res.json(await store.markRunning({ service, id, ...body }));
  });

  r.post('/services/:service/instances/:id/renew', async (req, res) => {
    const { service, id } = validate(instanceParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    const body = validate(renewBody, req.body, 'body');
    res.json({ id, ...(await store.renew({ service, id, ...body })) });
  });

  r.post('/services/:service/instances/:id/release', async (req, res) => {
    const { service, id } = validate(instanceParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    const body = validate(releaseBody, req.body, 'body');
    const released = await store.release({ service, id, ...body });
    res.json(released ?? { id, removed: true });
  });

  // The holder stopped a `stopping` instance: its record goes.
  r.post('/services/:service/instances/:id/stopped', async (req, res) => {
    const { service, id } = validate(instanceParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    const body = validate(stoppedBody, req.body, 'body');
    await store.confirmStopped({ service, id, ...body });
    res.json({ id, removed: true });
  });

  r.get('/machines', async (req, res) => {
    validate(emptyQuery, req.query, 'query');
    res.json({ machines: await store.listMachines() });
  });

  return r;
}

/** The instance `id` when it belongs to `service`, else instance_not_found. */
async function instanceOf(store: RegistryStore, service: string, id: string) {
  const instance = await store.getInstance(id);
  if (instance.service !== service) throw new BerthError('instance_not_found', `No instance "${id}" of "${service}".`);
  return instance;
}
