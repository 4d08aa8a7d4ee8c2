import type { Request } from 'express';

/**
 * The token of a git request: HTTP Basic with the token as the password (any user name: git
 * asks its credential helpers for both), or a bearer token (`http.extraHeader`). Undefined
 * when the request carries neither.
 */
export function gitRequestToken(req: Pick<Request, 'headers'>): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const bearer = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header);
  if (bearer !== null) return bearer[1];
  const basic = /^Basic ([A-Za-z0-9+/=]{1,1024})$/i.exec(header);
  if (basic === null) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  return /^[\x21-\x7e]{1,512}$/.test(password) ? password : undefined;
}
