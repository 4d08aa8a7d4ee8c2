import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { BerthError } from '../../common/errors.js';
import { ADMIN_TOKEN_NAME, type TokenGrant, type TokenStore } from '../store/index.js';

/** What the request's token may do, set by authenticate() for the routes after it. */
export function grantOf(res: Response): TokenGrant {
  const grant = res.locals.grant as TokenGrant | undefined;
  if (grant === undefined) throw new Error('grantOf() before authenticate()');
  return grant;
}

/**
 * Checks a token: one of `adminTokens` (BERTH_TOKEN: may do everything) or a named token of
 * the store. Admin tokens are compared as sha256 digests in constant time, so neither their
 * content nor their length leaks; a named token is found by its digest. Undefined: no such token.
 */
export function tokenChecker(adminTokens: readonly string[], tokens: TokenStore): (token: string) => Promise<TokenGrant | undefined> {
  const digests = adminTokens.map(sha256);
  return async (token) => {
    const given = sha256(token);
    let admin = false;
    for (const d of digests) admin = timingSafeEqual(given, d) || admin;
    if (admin) return { name: ADMIN_TOKEN_NAME, app: null, readOnly: false } satisfies TokenGrant;
    return tokens.lookup(token);
  };
}

/**
 * Requires `Authorization: Bearer <token>` (the scheme in any case: RFC 9110 §11.1 makes it
 * case-insensitive) with a token that tokenChecker knows.
 */
export function authenticate(adminTokens: readonly string[], tokens: TokenStore) {
  const check = tokenChecker(adminTokens, tokens);
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header);
    const refuse = () => {
      res.setHeader('WWW-Authenticate', 'Bearer realm="berth"');
      next(new BerthError('unauthorized'));
    };
    if (match === null) return refuse();
    check(match[1]!).then(
      (grant) => {
        if (grant === undefined) return refuse();
        res.locals.grant = grant;
        next();
      },
      next,
    );
  };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
