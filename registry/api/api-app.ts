import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { BerthError } from '../../common/errors.js';
import type { RedisClient } from '../../common/redis-connection.js';
import type { AppService } from '../app-service.js';
import type { BundleStore } from '../bundle-store.js';
import type { RegistryStore } from '../registry-store.js';
import type { TokenStore } from '../token-store.js';
import { appRoutes } from './app-routes.js';
import { auditLog } from './audit-log.js';
import { authenticate } from './authenticate.js';
import { authorize } from './authorize.js';
import { bundleRoutes } from './bundle-routes.js';
import { errorHandler } from './error-handler.js';
import { eventRoutes } from './event-routes.js';
import { jsonBody } from './json-body.js';
import { serviceRoutes } from './service-routes.js';
import { tokenRoutes } from './token-routes.js';

export interface ApiAppOptions {
  store: RegistryStore;
  bundles: BundleStore;
  apps: AppService;
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
  /** The git remotes (registry/git): `/git/<app>.git` and `/v1/apps/:name/git`. */
  git?: { remote: express.Router; api: express.Router };
}

/** The registry's REST API as an express app (no listening socket). */
export function createApiApp(options: ApiAppOptions): { app: Express; closeStreams: () => void } {
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
  const v1 = express.Router();
  v1.use(authenticate(options.tokens, options.tokenStore));
  v1.use(auditLog(options.tokenStore, options.logger));
  v1.use(authorize());
  // Bundles are raw gzip bytes, streamed: they must come before the JSON body parser.
  v1.use(bundleRoutes({ bundles: options.bundles, limitBytes: options.bundleLimitBytes }));
  v1.use(jsonBody(options.bodyLimitBytes));
  const apps = appRoutes({
    service: options.apps,
    keys: options.store.keys,
    redis: options.redis,
    openBlockingConnection: options.openBlockingConnection,
    maxInstances: options.maxInstances,
    logger: options.logger,
  });
  v1.use(tokenRoutes(options.tokenStore));
  v1.use(serviceRoutes(options.store));
  v1.use(apps.router);
  if (options.git) v1.use(options.git.api);
  v1.use(events.router);
  app.use('/v1', v1);
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
    },
  };
}
