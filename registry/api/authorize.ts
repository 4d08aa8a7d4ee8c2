import type { NextFunction, Request, Response } from 'express';
import { BerthError } from '../../common/errors.js';
import type { TokenGrant } from '../store/index.js';
import { grantOf } from './authenticate.js';

/** The methods that change nothing: a read-only token may use them, and the audit log leaves them out. */
export const READS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/**
 * Why `grant` may not make this call (a message for 403 forbidden), or undefined when it may.
 * A read-only token reads; an app's token reads and changes that app only (publishing it and
 * uploading its bundles included) and sees no other; token management needs a full token.
 * `path` is relative to /v1. Which app a publish (POST /apps) names is in its body: the route
 * checks that one (publishRefusal).
 */
export function refusal(grant: TokenGrant, method: string, path: string): string | undefined {
  const write = !READS.has(method);
  if (write && grant.readOnly) return `the token ${grant.name} is read-only: ${method} needs a token that may change things`;
  const [first = '', second] = path.split('/').filter(Boolean);
  // What a token may do is no secret to its holder.
  if (first === 'token' && second === undefined) return write ? `${method} /v1/token is not a call` : undefined;
  if (first === 'tokens' && (grant.app !== null || (write && grant.readOnly))) return `managing tokens needs a token for every app (${grant.name} is for ${grant.app})`;
  if (grant.app === null) return undefined;
  const scope = `the token ${grant.name} is for the app ${grant.app} only`;
  if (first === 'bundles') return undefined;
  if (first === 'apps') {
    if (second === undefined) return undefined;
    return pathSegment(second) === grant.app ? undefined : `${scope}: it cannot reach the app ${second}`;
  }
  if (first === 'machines' && !write) return undefined;
  return `${scope}: /v1/${first} is about every app`;
}

/** A path segment decoded, or as it is when it does not decode (the route then refuses it). */
export function pathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Why `grant` may not publish the app `name`, or undefined when it may. */
export function publishRefusal(grant: TokenGrant, name: string): string | undefined {
  return grant.app === null || grant.app === name ? undefined : `the token ${grant.name} is for the app ${grant.app} only: it cannot publish ${name}`;
}

export function forbidden(why: string): BerthError {
  return new BerthError('forbidden', `This token may not do that: ${why}.`);
}

/** Refuses (403 forbidden) what the request's token may not do, before anything is read or changed. */
export function authorize() {
  return (req: Request, res: Response, next: NextFunction) => {
    const why = refusal(grantOf(res), req.method, req.path);
    next(why === undefined ? undefined : forbidden(why));
  };
}
