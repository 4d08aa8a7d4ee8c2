import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { BerthError } from '../../common/errors.js';

/**
 * Requires `Authorization: Bearer <token>` with one of `tokens` (the scheme in any case:
 * RFC 9110 §11.1 makes it case-insensitive). Tokens are compared as
 * sha256 digests in constant time, so neither their content nor their length leaks.
 */
export function authenticate(tokens: readonly string[]) {
  const digests = tokens.map(sha256);
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header);
    if (match !== null) {
      const given = sha256(match[1]!);
      let ok = false;
      for (const d of digests) ok = timingSafeEqual(given, d) || ok;
      if (ok) return next();
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="berth"');
    next(new BerthError('unauthorized'));
  };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
