import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { nameSchema } from '../../common/names.js';
import type { AddonOperations } from '../addon-operations.js';
import { envKeySchema } from './app-schemas.js';
import { grantOf } from './authenticate.js';
import { emptyQuery } from './schemas.js';
import { validate } from './validate.js';

/** Largest plan (MB): a machine's add-on beyond this is a database server of its own. */
export const MAX_ADDON_MEMORY_MB = 65_536;

const addonParams = z.strictObject({ name: nameSchema });
const attachmentParams = z.strictObject({ name: nameSchema, app: nameSchema });
// The kind is checked by AddonOperations, so that an unknown one gets its own error code.
const createBody = z.strictObject({
  app: nameSchema,
  kind: z.string().max(100),
  name: nameSchema.optional(),
  machine: z.string().min(1).max(253).optional(),
  as: envKeySchema.optional(),
  memoryMb: z.number().int().min(16).max(MAX_ADDON_MEMORY_MB).optional(),
});
const attachBody = z.strictObject({ app: nameSchema, as: envKeySchema.optional() });
const destroyBody = z.strictObject({ confirm: z.string().max(100).optional() });
const restoreBody = z.strictObject({
  backup: z.string().regex(/^[0-9]{8}T[0-9]{9}Z$/, 'must be a backup id such as 20261203T183500123Z (berth addons:backups NAME)'),
  confirm: z.string().max(100).optional(),
  // Another machine: the add-on moves there (its own: a plain restore).
  toMachine: z.string().min(1).max(253).optional(),
});

// The period is parsed by AddonOperations (parseBackupPeriod), whose message says what a period looks like.
const scheduleBody = z.strictObject({ every: z.string().min(1).max(40) });

/** Add-ons: /v1/addons… (an app-scoped token reaches none: an add-on may serve several apps). */
export function addonRoutes(addons: AddonOperations): Router {
  const r = Router();
  const noQuery = (req: Request) => validate(emptyQuery, req.query, 'query');
  const name = (req: Request) => validate(addonParams, req.params, 'path').name;
  const user = (res: Response) => grantOf(res).name;

  r.post('/addons', async (req, res) => {
    noQuery(req);
    const body = validate(createBody, req.body, 'body');
    const addon = await addons.create(body, user(res));
    res.status(201).location(`/v1/addons/${addon.name}`).json(addon);
  });

  r.get('/addons', async (req, res) => {
    noQuery(req);
    res.json({ addons: await addons.list() });
  });

  r.get('/addons/:name', async (req, res) => {
    const addon = name(req);
    noQuery(req);
    res.json(await addons.info(addon));
  });

  r.post('/addons/:name/attachments', async (req, res) => {
    const addon = name(req);
    noQuery(req);
    const body = validate(attachBody, req.body, 'body');
    res.json(await addons.attach(addon, body.app, body.as, user(res)));
  });

  r.delete('/addons/:name/attachments/:app', async (req, res) => {
    const params = validate(attachmentParams, req.params, 'path');
    noQuery(req);
    res.json(await addons.detach(params.name, params.app, user(res)));
  });

  r.post('/addons/:name/backups', async (req, res) => {
    const addon = name(req);
    noQuery(req);
    validate(z.strictObject({}), req.body, 'body');
    res.status(201).json(await addons.backup(addon));
  });

  r.put('/addons/:name/backup-schedule', async (req, res) => {
    const addon = name(req);
    noQuery(req);
    const body = validate(scheduleBody, req.body, 'body');
    res.json(await addons.scheduleBackups(addon, body.every));
  });

  r.get('/addons/:name/backups', async (req, res) => {
    const addon = name(req);
    noQuery(req);
    res.json({ backups: await addons.backups(addon) });
  });

  r.post('/addons/:name/restore', async (req, res) => {
    const addon = name(req);
    noQuery(req);
    const body = validate(restoreBody, req.body, 'body');
    res.json({ restored: await addons.restore(addon, body.backup, body.confirm, { ...(body.toMachine === undefined ? {} : { toMachine: body.toMachine }), user: user(res) }) });
  });

  // The body repeats the name: destroying removes the data for good.
  r.delete('/addons/:name', async (req, res) => {
    const addon = name(req);
    noQuery(req);
    const body = validate(destroyBody, req.body, 'body');
    res.json({ destroyed: await addons.destroy(addon, body.confirm, user(res)) });
  });
  return r;
}
