import { Router } from 'express';
import { z } from 'zod';
import { nameSchema } from '../../common/names.js';
import type { TokenStore } from '../store/index.js';
import { grantOf } from './authenticate.js';
import { emptyQuery } from './schemas.js';
import { validate } from './validate.js';

const createBody = z.strictObject({
  name: nameSchema,
  app: nameSchema.nullable().optional(),
  readOnly: z.boolean().optional(),
});
const tokenParams = z.strictObject({ name: nameSchema });
const auditQuery = z.strictObject({
  limit: z
    .string()
    .regex(/^[0-9]{1,4}$/, 'must be a number of entries, 1-1000')
    .transform(Number)
    .pipe(z.number().int().min(1).max(1000))
    .optional(),
});

/** Named tokens (/v1/tokens) and the audit log of changes (/v1/audit). */
export function tokenRoutes(tokens: TokenStore): Router {
  const r = Router();

  // CreateToken: the token is in this answer only.
  r.post('/tokens', async (req, res) => {
    validate(emptyQuery, req.query, 'query');
    const body = validate(createBody, req.body, 'body');
    const { token, record } = await tokens.create({ name: body.name, app: body.app ?? null, readOnly: body.readOnly ?? false }, grantOf(res).name);
    res.status(201).location(`/v1/tokens/${record.name}`).json({ ...record, token });
  });

  // WhoAmI: the grant of the token that asks (berth status).
  r.get('/token', (req, res) => {
    validate(emptyQuery, req.query, 'query');
    res.json(grantOf(res));
  });

  // ListTokens: names and grants, never the tokens.
  r.get('/tokens', async (req, res) => {
    validate(emptyQuery, req.query, 'query');
    res.json({ tokens: await tokens.list() });
  });

  // RevokeToken
  r.delete('/tokens/:name', async (req, res) => {
    const { name } = validate(tokenParams, req.params, 'path');
    validate(emptyQuery, req.query, 'query');
    res.json({ revoked: await tokens.revoke(name) });
  });

  // GetAudit: the newest changes first.
  r.get('/audit', async (req, res) => {
    const { limit } = validate(auditQuery, req.query, 'query');
    res.json({ entries: await tokens.recentAudit(limit ?? 100) });
  });

  return r;
}
