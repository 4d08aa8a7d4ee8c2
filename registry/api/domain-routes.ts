import { Router, type Request } from 'express';
import { z } from 'zod';
import { domainSchema } from '../../common/domain-names.js';
import { BerthError } from '../../common/errors.js';
import { nameSchema, pathPrefixSchema } from '../../common/names.js';
import type { Domain, DomainCertificate } from '../../sdk/types.js';
import type { DomainRecord, DomainStore } from '../store/index.js';
import { emptyQuery } from './schemas.js';
import { validate } from './validate.js';

export interface DomainRoutesOptions {
  domains: DomainStore;
  /** Where each domain stands with its certificate (the balancers write it). */
  certificateOf: (domains: readonly string[]) => Promise<Map<string, DomainCertificate>>;
}

const appParams = z.strictObject({ name: nameSchema });
// The domain in the URL is checked as the body's is, so that "Shop.Example.com." names the stored one.
const domainParams = z.strictObject({ name: nameSchema, domain: z.string() });
const addBody = z.strictObject({ domain: z.string(), path: pathPrefixSchema.optional() });

/** An app's own domains: /v1/apps/:name/domains, and every domain at /v1/domains. */
export function domainRoutes(o: DomainRoutesOptions): Router {
  const r = Router();
  const noQuery = (req: Request) => validate(emptyQuery, req.query, 'query');
  const withCertificates = async (records: DomainRecord[]): Promise<Domain[]> => {
    const certificates = await o.certificateOf(records.map((d) => d.domain));
    return records.map((d) => ({ ...d, certificate: certificates.get(d.domain) ?? { state: 'none' } }));
  };

  r.get('/domains', async (req, res) => {
    noQuery(req);
    res.json({ domains: await withCertificates(await o.domains.list()) });
  });

  r.get('/apps/:name/domains', async (req, res) => {
    const { name } = validate(appParams, req.params, 'path');
    noQuery(req);
    res.json({ domains: await withCertificates(await o.domains.list(name)) });
  });

  r.post('/apps/:name/domains', async (req, res) => {
    const { name } = validate(appParams, req.params, 'path');
    noQuery(req);
    const body = validate(addBody, req.body, 'body');
    const domain = parseDomainOrThrow(body.domain);
    const added = await o.domains.add(name, domain, body.path ?? '/');
    const [record] = await withCertificates([(await o.domains.get(domain)) ?? { domain, app: name, path: body.path ?? '/', createdAt: Date.now() }]);
    res.status(added ? 201 : 200).location(`/v1/apps/${name}/domains/${encodeURIComponent(domain)}`).json(record);
  });

  r.delete('/apps/:name/domains/:domain', async (req, res) => {
    const params = validate(domainParams, req.params, 'path');
    noQuery(req);
    const domain = parseDomainOrThrow(params.domain);
    await o.domains.remove(params.name, domain);
    res.json({ removed: { domain, app: params.name } });
  });
  return r;
}

/** The stored form of a domain given by a client, or 400 invalid_domain saying what is wrong with it. */
export function parseDomainOrThrow(input: string): string {
  const parsed = domainSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new BerthError('invalid_domain', `The domain ${JSON.stringify(input.slice(0, 300))} ${parsed.error.issues[0]?.message ?? 'is not valid'}.`);
}
