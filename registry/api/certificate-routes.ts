import { Router } from 'express';
import { z } from 'zod';
import { certificateProblem } from '../../common/certificate-check.js';
import { BerthError } from '../../common/errors.js';
import type { CertificateStore } from '../store/index.js';
import { parseDomainOrThrow } from './domain-routes.js';
import { emptyQuery } from './schemas.js';
import { validate } from './validate.js';

const MAX_PEM = 64 * 1024;
const params = z.strictObject({ domain: z.string() });
const putBody = z.strictObject({ cert: z.string().min(1).max(MAX_PEM), key: z.string().min(1).max(MAX_PEM) });

/** Certificates of the apps' domains: every one listed, and operators' own (which take precedence over ACME). */
export function certificateRoutes(certificates: CertificateStore): Router {
  const r = Router();

  r.get('/certificates', async (req, res) => {
    validate(emptyQuery, req.query, 'query');
    res.json({ certificates: await certificates.list() });
  });

  r.put('/certificates/:domain', async (req, res) => {
    const domain = parseDomainOrThrow(validate(params, req.params, 'path').domain);
    validate(emptyQuery, req.query, 'query');
    const body = validate(putBody, req.body, 'body');
    const problem = certificateProblem(body.cert, body.key, domain);
    if (problem !== undefined) throw new BerthError('invalid_certificate', `Refused for ${domain}: ${problem}.`);
    if (certificates.sealingKey === undefined) throw new BerthError('certificate_key_missing');
    await certificates.setOperator(domain, body.cert, body.key);
    res.json(await certificates.record(domain));
  });

  r.delete('/certificates/:domain', async (req, res) => {
    const domain = parseDomainOrThrow(validate(params, req.params, 'path').domain);
    validate(emptyQuery, req.query, 'query');
    await certificates.removeOperator(domain);
    res.json({ removed: { domain } });
  });
  return r;
}
