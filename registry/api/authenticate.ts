import type { NextFunction, Request, Response } from 'express';
import { BerthError } from '../../common/errors.js';
import type { TokenGrant, TokenStore } from '../store/index.js';
import { TokenChecker } from './token-checker.js';

/** What the request's token may do, set by authenticate() for the routes after it. */
export function grantOf(res: Response): TokenGrant {
  const grant = res.locals.grant as TokenGrant | undefined;
  if (grant === undefined) throw new Error('grantOf() before authenticate()');
  return grant;
}

/**
 * Requires `Authorization: Bearer <token>` (the scheme in any case: RFC 9110 §11.1 makes it
 * case-insensitive) with a token the TokenChecker knows.
 */
export function authenticate(adminTokens: readonly string[], tokens: TokenStore) {
  const checker = new TokenChecker(adminTokens, tokens);
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header);
    const refuse = () => {
      res.setHeader('WWW-Authenticate', 'Bearer realm="berth"');
      next(new BerthError('unauthorized'));
    };
    if (match === null) return refuse();
    checker.grant(match[1]!).then(
      (grant) => {
        if (grant === undefined) return refuse();
        res.locals.grant = grant;
        next();
      },
      next,
    );
  };
}
