import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, Response } from 'express';
import { BerthError } from '../../common/errors.js';
import { READS } from '../api/authorize.js';
import type { TokenChecker } from '../api/token-checker.js';
import type { TokenGrant } from '../store/index.js';
import type { DashboardSession, SessionStore } from './session-store.js';

export const SESSION_COOKIE = 'berth_session';
export const CSRF_HEADER = 'x-berth-csrf';
/** Peers whose X-Forwarded-Proto is believed (the balancer on this machine). @default loopback */
export const DEFAULT_TRUSTED_PROXIES = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

/** The session id from the request's cookies, if it sent one. */
export function sessionIdOf(req: Request): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{20,100}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

/**
 * Whether the request comes from a page of this origin: its Origin names the Host it was sent
 * to, and the browser's Sec-Fetch-Site (when it sends one) says same-origin. Browsers send
 * Origin on every POST, PUT, PATCH and DELETE, so a missing one is refused too.
 */
export function sameOrigin(req: Request): boolean {
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (typeof origin !== 'string' || typeof host !== 'string') return false;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * Whether the browser reached us over TLS: directly, or through a trusted proxy (the balancer)
 * that says so in X-Forwarded-Proto. Only then is the cookie marked Secure: over plain HTTP on
 * loopback a Secure cookie would be refused by some browsers and sent by none.
 */
export function cameOverTls(req: Request, trustedProxies: readonly string[]): boolean {
  if ((req.socket as TLSSocket).encrypted === true) return true;
  const proto = req.headers['x-forwarded-proto'];
  return proto === 'https' && trustedProxies.includes(req.socket.remoteAddress ?? '');
}

/**
 * Authenticates a dashboard call by its session cookie, for the API routes mounted under
 * /dashboard/v1: the grant is the session's token's, so authorize() and the audit log treat it
 * as that token. A call that changes something must also carry the session's CSRF token in
 * X-Berth-CSRF and come from this origin.
 */
export function sessionAuthenticate(sessions: SessionStore, checker: TokenChecker) {
  return (req: Request, res: Response, next: NextFunction) => {
    (async () => {
      const id = sessionIdOf(req);
      const session = id === undefined ? undefined : await sessions.find(id);
      if (session === undefined || !(await checker.stillValid(session))) {
        throw new BerthError('unauthorized', 'No dashboard session, or it ended: sign in again at /dashboard.');
      }
      if (!READS.has(req.method)) {
        if (!sameOrigin(req)) throw new BerthError('forbidden', 'This call did not come from a dashboard page of this origin (Origin header): open the dashboard and act from there.');
        const given = req.headers[CSRF_HEADER];
        if (typeof given !== 'string' || !equalStrings(given, session.csrf)) {
          throw new BerthError('forbidden', `This call lacks the session's CSRF token (${CSRF_HEADER} header): reload the dashboard and try again.`);
        }
      }
      res.locals.grant = { name: session.name, app: session.app, readOnly: session.readOnly } satisfies TokenGrant;
      res.locals.dashboardSession = session;
    })().then(() => next(), next);
  };
}

export function equalStrings(a: string, b: string): boolean {
  const x = sha256(a);
  const y = sha256(b);
  return timingSafeEqual(x, y);
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
