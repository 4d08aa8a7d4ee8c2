import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { BerthError } from '../../common/errors.js';
import type { RedisClient } from '../../common/redis-connection.js';
import type { AppOperations } from '../app-operations.js';
import type { AddonOperations } from '../addon-operations.js';
import { addonRoutes } from './addon-routes.js';
import type { BundleStore, CertificateStore, DomainStore, RegistryStore, TokenStore } from '../store/index.js';
import { certificateRoutes } from './certificate-routes.js';
import { dashboardKeys, dashboardRoutes, loadDashboardAssets, loadHistoryRoutes, sessionAuthenticate, SessionStore, type LoadHistory } from '../dashboard/index.js';
import { TokenChecker } from './token-checker.js';
import { appRoutes } from './app-routes.js';
import { auditLog } from './audit-log.js';
import { authenticate } from './authenticate.js';
import { authorize } from './authorize.js';
import { bundleRoutes } from './bundle-routes.js';
import { errorHandler } from './error-handler.js';
import { domainRoutes } from './domain-routes.js';
import { eventRoutes } from './event-routes.js';
import { jsonBody } from './json-body.js';
import { serviceRoutes } from './service-routes.js';
import { tokenRoutes } from './token-routes.js';
import { runRoutes, runTerminal } from '../runs/index.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { CronStore, RunStore } from '../store/index.js';
import { cronRoutes } from '../cron/index.js';

export interface ApiAppOptions {
  store: RegistryStore;
  bundles: BundleStore;
  apps: AppOperations;
  /** Add-ons (/v1/addons); absent: the routes answer 404 as any unknown endpoint. */
  addons?: AddonOperations;
  /** Apps' own domains, and their certificates. */
  domains: { store: DomainStore; certificates: CertificateStore };
  /** Most instances one app may ask for. */
  maxInstances: number;
  redis: RedisClient;
  openBlockingConnection: () => RedisClient;
  /** BERTH_TOKEN's tokens: they may do everything. */
  tokens: readonly string[];
  /** Named tokens, with what each may do, and the audit log. */
  tokenStore: TokenStore;
  bodyLimitBytes: number;
  /** Largest bundle accepted by PUT /v1/bundles/:sha256. */
  bundleLimitBytes: number;
  maxEventClients: number;
  logger: Logger;
  /** True once the daemon drains: new requests get 503. */
  isClosing: () => boolean;
  /** The dashboard at /dashboard: its sessions' length, whose X-Forwarded-Proto to believe, the load history it charts. */
  dashboard: { sessionTtlMs: number; trustedProxies: readonly string[]; loadHistory: LoadHistory };
  /** The git remotes (registry/git): `/git/<app>.git` and `/v1/apps/:name/git`. */
  git?: { remote: express.Router; api: express.Router };
}

/** The registry's REST API as an express app (no listening socket). */
export function createApiApp(options: ApiAppOptions): {
  app: Express;
  closeStreams: () => void;
  /** The server's 'upgrade' handler: interactive runs' terminals (WebSockets). */
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
} {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use((req: Request, res: Response, next: NextFunction) => {
    if (options.isClosing()) {
      res.setHeader('Connection', 'close');
      return next(new BerthError('shutting_down'));
    }
    next();
  });

  app.get('/healthz', async (_req, res) => {
    await options.redis.ping();
    res.json({ status: 'ok' });
  });

  const events = eventRoutes({
    keys: options.store.keys,
    openBlockingConnection: options.openBlockingConnection,
    maxClients: options.maxEventClients,
    logger: options.logger,
  });
  // The API's routes, reached with a bearer token at /v1 and with a dashboard session at /dashboard/v1.
  const v1 = express.Router();
  v1.use(auditLog(options.tokenStore, options.logger));
  v1.use(authorize());
  // Bundles are raw gzip bytes, streamed: they must come before the JSON body parser.
  v1.use(bundleRoutes({ bundles: options.bundles, limitBytes: options.bundleLimitBytes }));
  v1.use(jsonBody(options.bodyLimitBytes));
  const apps = appRoutes({
    operations: options.apps,
    keys: options.store.keys,
    redis: options.redis,
    openBlockingConnection: options.openBlockingConnection,
    maxInstances: options.maxInstances,
    logger: options.logger,
  });
  v1.use(tokenRoutes(options.tokenStore));
  v1.use(serviceRoutes(options.store));
  v1.use(apps.router);
  v1.use(domainRoutes({ domains: options.domains.store, certificateOf: (domains) => options.domains.certificates.statuses(domains) }));
  v1.use(certificateRoutes(options.domains.certificates));
  if (options.addons) v1.use(addonRoutes(options.addons));
  const runStore = new RunStore(options.redis, options.store.keys);
  const runs = runRoutes({ runs: runStore, apps: options.apps, redis: options.redis, openBlockingConnection: options.openBlockingConnection, logger: options.logger });
  v1.use(runs.router);
  v1.use(cronRoutes({ crons: new CronStore(options.redis, options.store.keys), runs: runStore, apps: options.apps }));
  // Upgrades never reach express: the server hands them to this (authenticated there).
  const terminal = runTerminal({
    runs: runStore,
    checkToken: (token) => checker.grant(token),
    openBlockingConnection: options.openBlockingConnection,
    logger: options.logger,
    isClosing: options.isClosing,
  });
  if (options.git) v1.use(options.git.api);
  v1.use(events.router);
  v1.use(loadHistoryRoutes(options.store, options.dashboard.loadHistory));
  app.use('/v1', authenticate(options.tokens, options.tokenStore), v1);

  const sessions = new SessionStore(options.redis, dashboardKeys(options.store.keys), options.dashboard.sessionTtlMs);
  const checker = new TokenChecker(options.tokens, options.tokenStore);
  app.use('/dashboard/v1', sessionAuthenticate(sessions, checker), v1);
  const audit = (entry: Parameters<TokenStore['audit']>[0]) =>
    void options.tokenStore.audit(entry).catch((err) => options.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not write the audit log entry'));
  app.use('/dashboard', dashboardRoutes({ assets: loadDashboardAssets(), sessions, checker, trustedProxies: options.dashboard.trustedProxies, audit }));
  // Authenticated by itself: git sends HTTP Basic, and reads errors as plain text.
  if (options.git) app.use('/git', options.git.remote);

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new BerthError('not_found', `No endpoint ${req.method} ${req.path}: see docs/api.md for the REST reference.`));
  });
  app.use(errorHandler(options.logger));
  return {
    app,
    closeStreams: () => {
      events.closeAll();
      apps.closeAll();
      runs.closeAll();
      terminal.closeAll();
    },
    upgrade: terminal.upgrade,
  };
}
