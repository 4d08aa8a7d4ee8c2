import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { BerthError } from '../../common/errors.js';
import { validate } from '../api/validate.js';
import type { Asset, DashboardAssets } from './dashboard-assets.js';
import { CSRF_HEADER, cameOverTls, equalStrings, sameOrigin, SESSION_COOKIE, sessionIdOf } from './session-auth.js';
import type { TokenChecker } from '../api/token-checker.js';
import type { SessionStore } from './session-store.js';

/** The page may load only its own script, style and API: no inline code, no other origin. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface DashboardRoutesOptions {
  assets: DashboardAssets | undefined;
  sessions: SessionStore;
  checker: TokenChecker;
  /** Peers whose X-Forwarded-Proto is believed (see cameOverTls). */
  trustedProxies: readonly string[];
  /** Records a sign-in or sign-out in the audit log (as the API records its changes). */
  audit: (entry: { token: string; method: string; path: string; app: null; status: number }) => void;
}

const signIn = z.object({ token: z.string().min(1).max(512) }).strict();

/** /dashboard: the page, its assets, and signing in and out. The API it calls is /dashboard/v1. */
export function dashboardRoutes(options: DashboardRoutesOptions): Router {
  const r = Router();
  const { sessions } = options;

  r.use((_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    next();
  });

  r.get('/', (req, res) => {
    if (req.originalUrl === '/dashboard') return res.redirect(308, '/dashboard/');
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    // The page names the hashed assets of this build: always revalidate it.
    send(req, res, built(options.assets).page, 'no-cache');
  });

  r.get('/assets/:file', (req, res) => {
    const file = built(options.assets).byName.get(String(req.params.file));
    if (file === undefined) throw new BerthError('not_found', `No dashboard asset ${req.params.file}: reload /dashboard/ (a newer build names others).`);
    // Names carry their content's hash: a browser may keep them for good.
    send(req, res, file, 'public, max-age=31536000, immutable');
  });

  const json = express.json({ limit: 4096, strict: true, type: () => true });

  // Who is signed in, and the CSRF token the page sends back: readable by this origin only
  // (no CORS), so a foreign page learns nothing from it.
  r.get('/session', async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const id = sessionIdOf(req);
    const session = id === undefined ? undefined : await sessions.find(id);
    if (session === undefined || !(await options.checker.stillValid(session))) throw new BerthError('unauthorized', 'Not signed in: sign in with a berth token.');
    res.json({ name: session.name, app: session.app, readOnly: session.readOnly, csrf: session.csrf });
  });

  // Sign-in: the token is checked as the API checks it, and only a random session id goes
  // back, in an HttpOnly SameSite=Strict cookie scoped to /dashboard.
  // Sign-ins and sign-outs go in the audit log, refusals included, under the token's name once known.
  r.use('/session', (req, res, next) => {
    if (req.method === 'POST' || req.method === 'DELETE') {
      res.once('finish', () => options.audit({ token: (res.locals.signedInAs as string | undefined) ?? '(no token)', method: req.method, path: '/dashboard/session', app: null, status: res.statusCode }));
    }
    next();
  });

  r.post('/session', (req, res, next) => {
    if (!sameOrigin(req)) return next(new BerthError('forbidden', 'Sign in from the dashboard page itself (the Origin header must be this site).'));
    if (!req.is('application/json')) return next(new BerthError('unsupported_media_type'));
    json(req, res, (err?: unknown) => next(err === undefined ? undefined : new BerthError('invalid_json')));
  }, async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const { token } = validate(signIn, req.body, 'body');
    const checked = await options.checker.check(token.trim());
    if (checked === undefined) throw new BerthError('unauthorized', 'That token is not one of this platform\'s: paste the whole token (berth up prints where it is kept; berth tokens:create makes one).');
    res.locals.signedInAs = checked.grant.name;
    const { id, session } = await sessions.open(checked.grant, checked.digest);
    res.setHeader('Set-Cookie', cookie(id, sessions.ttlSeconds, cameOverTls(req, options.trustedProxies)));
    res.status(201).json({ name: session.name, app: session.app, readOnly: session.readOnly, csrf: session.csrf });
  });

  r.delete('/session', async (req, res) => {
    const id = sessionIdOf(req);
    const session = id === undefined ? undefined : await sessions.find(id);
    if (id !== undefined && session !== undefined) {
      res.locals.signedInAs = session.name;
      const given = req.headers[CSRF_HEADER];
      if (!sameOrigin(req) || typeof given !== 'string' || !equalStrings(given, session.csrf)) throw new BerthError('forbidden', 'Sign out from the dashboard page itself.');
      await sessions.close(id);
    }
    res.setHeader('Set-Cookie', cookie('', 0, cameOverTls(req, options.trustedProxies)));
    res.status(204).end();
  });

  return r;
}

function built(assets: DashboardAssets | undefined): DashboardAssets {
  if (assets === undefined) throw new BerthError('not_found', 'The dashboard was not built: run npm run build (or scripts/setup), then restart the registry.');
  return assets;
}

function cookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/dashboard; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** Sends an asset, gzipped when the browser takes it, answering 304 to a matching If-None-Match. */
function send(req: Request, res: Response, asset: Asset, cacheControl: string): void {
  res.setHeader('Cache-Control', cacheControl);
  res.setHeader('ETag', asset.etag);
  res.setHeader('Vary', 'Accept-Encoding');
  if (req.headers['if-none-match'] === asset.etag) {
    res.status(304).end();
    return;
  }
  res.setHeader('Content-Type', asset.type);
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  if (gzip) res.setHeader('Content-Encoding', 'gzip');
  res.end(gzip ? asset.gzip : asset.body);
}
