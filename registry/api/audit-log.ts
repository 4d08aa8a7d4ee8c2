import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { TokenStore } from '../store/index.js';
import { grantOf } from './authenticate.js';
import { pathSegment, READS } from './authorize.js';

/**
 * Records every call that may change something, once answered: which token, when, what, for
 * which app, and the status it got (refusals included). The log is capped in Redis; a failure
 * to write it is logged, never turned into the call's failure.
 */
export function auditLog(tokens: TokenStore, logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (READS.has(req.method)) return next();
    const token = grantOf(res).name;
    // Taken now: once the router is done with it, express gives the request its full URL back.
    const local = req.path;
    const path = `${req.baseUrl}${local}`;
    res.once('finish', () => {
      // The body is read by then (a publish names its app in it).
      const app = appOf(local, (req.body as { name?: unknown } | undefined)?.name);
      tokens.audit({ token, method: req.method, path, app, status: res.statusCode }).catch((err) =>
        logger.warn({ err: err instanceof Error ? err.message : String(err), path }, 'could not write the audit log entry'),
      );
    });
    next();
  };
}

/** The app a call is about: /apps/:name…, or the name a publish gives. */
function appOf(path: string, bodyName: unknown): string | null {
  const [first, second] = path.split('/').filter(Boolean);
  if (first !== 'apps') return null;
  if (second !== undefined) return pathSegment(second);
  return typeof bodyName === 'string' ? bodyName : null;
}
