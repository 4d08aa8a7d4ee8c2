import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { listSchema, logLevelSchema, option, portRangeSchema, portSchema, positiveIntSchema, positiveMsSchema, nonNegativeMsSchema, type ResolvedOptions } from '../common/config.js';
import { idempotentClose } from '../common/daemon-lifecycle.js';
import { trackConnections } from '../common/http-drain.js';
import type { Logger } from '../common/logger.js';
import { closeRedis, connectRedis, REDIS_OPTIONS, redisSettingsFrom, replicaWait, waitForReady } from '../common/redis-connection.js';
import { keyPrefixSchema } from '../common/names.js';
import { createApiApp } from './api/api-app.js';
import { DEFAULT_MAX_EVENT_CLIENTS } from './api/event-routes.js';
import { DEFAULT_BODY_LIMIT_BYTES } from './api/json-body.js';
import { BundleStore, DEFAULT_BUNDLE_LIMIT_BYTES, DEFAULT_KEY_PREFIX, registryKeys, AppStore, DEFAULT_EVENTS_MAX_LENGTH, DEFAULT_LEASE_MS, DEFAULT_SILENT_FRACTION, CertificateStore, DomainStore, readSealingKey, RegistryStore, RunStore, CronStore, TokenStore, AddonStore } from './store/index.js';
import { readBundleProcfile } from './bundle-procfile.js';
import { AppOperations } from './app-operations.js';
import { AddonOperations, DEFAULT_ADDON_PORT_RANGE } from './addon-operations.js';
import { AddonBackups, DEFAULT_ADDON_BACKUPS_KEPT } from './addon-backups.js';
import { DEFAULT_ADDON_BACKUP_MIN_EVERY_MS } from './addon-backup-period.js';
import { AddonBackupScheduler, DEFAULT_ADDON_BACKUP_PASS_MS } from './addon-backup-scheduler.js';
import { debianPostgresBinDir } from '../common/postgres-programs.js';
import { DEFAULT_BUNDLE_GRACE_MS, DEFAULT_DRAIN_MS, DEFAULT_RECONCILE_INTERVAL_MS, DEFAULT_ROLLOUT_TIMEOUT_MS, Reconciler } from './reconciler.js';
import { DEFAULT_REAP_INTERVAL_MS, startReaper } from './reaper.js';
import { dashboardKeys, DEFAULT_LOAD_SAMPLE_MS, DEFAULT_SESSION_TTL_MS, DEFAULT_TRUSTED_PROXIES, LoadHistory } from './dashboard/index.js';
import { TokenChecker } from './api/token-checker.js';
import { createGitRemotes } from './git/index.js';
import { DEFAULT_RUN_START_TIMEOUT_MS, DEFAULT_RUN_SWEEP_MS, RunSweeper } from './runs/index.js';
import { CronScheduler, DEFAULT_CRON_LATE_MS, DEFAULT_CRON_PASS_MS } from './cron/index.js';

export const DEFAULT_REGISTRY_PORT = 7070;
/** A whole request, body included, must arrive within this: room for a 100 MiB bundle on a slow link. */
const REQUEST_TIMEOUT_MS = 5 * 60_000;

/** Every option of `berth registry`: flag, environment variable, default. */
export const REGISTRY_OPTIONS = {
  host: option({ env: 'BERTH_REGISTRY_HOST', default: '127.0.0.1', schema: z.string().min(1), describe: 'Address the REST API listens on.' }),
  port: option({ env: 'BERTH_REGISTRY_PORT', default: DEFAULT_REGISTRY_PORT, schema: portSchema, describe: 'Port the REST API listens on (0 picks a free one).' }),
  token: option({ env: 'BERTH_TOKEN', default: [] as string[], schema: listSchema, describe: 'API token(s), comma-separated; required. Or BERTH_TOKEN_FILE, a file holding them.', secret: true }),
  keyPrefix: option({ env: 'BERTH_KEY_PREFIX', default: DEFAULT_KEY_PREFIX, schema: keyPrefixSchema, describe: 'Name inside the Redis key prefix "{name}:" (a Cluster hash tag).' }),
  leaseMs: option({ env: 'BERTH_LEASE_MS', default: DEFAULT_LEASE_MS, schema: positiveMsSchema, describe: 'Lease length of a claim when the claimer gives none.' }),
  reapIntervalMs: option({ env: 'BERTH_REAP_INTERVAL_MS', default: DEFAULT_REAP_INTERVAL_MS, schema: positiveMsSchema, describe: 'How often expired leases are returned to unclaimed.' }),
  silentFraction: option({
    env: 'BERTH_SILENT_FRACTION',
    default: DEFAULT_SILENT_FRACTION,
    schema: z.coerce.number().min(0).max(1),
    describe: 'When more than this share of the machines holding claims goes silent at once, no lease is expired for a lease (the control plane is the likelier fault); 1 turns this off.',
  }),
  eventsMaxLength: option({ env: 'BERTH_EVENTS_MAX_LENGTH', default: DEFAULT_EVENTS_MAX_LENGTH, schema: positiveIntSchema, describe: 'Approximate number of events the stream keeps.' }),
  bodyLimitBytes: option({ env: 'BERTH_BODY_LIMIT_BYTES', default: DEFAULT_BODY_LIMIT_BYTES, schema: positiveIntSchema, describe: 'Largest JSON request body accepted.' }),
  bundleLimitBytes: option({ env: 'BERTH_BUNDLE_LIMIT_BYTES', default: DEFAULT_BUNDLE_LIMIT_BYTES, schema: positiveIntSchema, describe: 'Largest app bundle (.tar.gz) accepted.' }),
  maxEventClients: option({ env: 'BERTH_MAX_EVENT_CLIENTS', default: DEFAULT_MAX_EVENT_CLIENTS, schema: positiveIntSchema, describe: 'Most concurrent GET /v1/events followers.' }),
  publicUrl: option({ env: 'BERTH_PUBLIC_URL', default: '', schema: z.union([z.literal(''), z.string().url()]), describe: 'Base URL apps are served under (e.g. https://paas.example.com), shown as each app\'s URL.' }),
  maxInstances: option({ env: 'BERTH_MAX_INSTANCES', default: 100, schema: positiveIntSchema, describe: 'Most instances one app may ask for.' }),
  reconcileIntervalMs: option({ env: 'BERTH_RECONCILE_INTERVAL_MS', default: DEFAULT_RECONCILE_INTERVAL_MS, schema: positiveMsSchema, describe: 'How often the leading registry converges every app.' }),
  drainMs: option({ env: 'BERTH_DRAIN_MS', default: DEFAULT_DRAIN_MS, schema: positiveMsSchema, describe: 'How long a retired instance stays unroutable before it is stopped.' }),
  runStartTimeoutMs: option({
    env: 'BERTH_RUN_START_TIMEOUT_MS',
    default: DEFAULT_RUN_START_TIMEOUT_MS,
    schema: nonNegativeMsSchema,
    describe: 'A one-off or cron run that no hoster took this long after it was asked for fails (reason not_started); 0: it waits for ever.',
  }),
  rolloutTimeoutMs: option({ env: 'BERTH_ROLLOUT_TIMEOUT_MS', default: DEFAULT_ROLLOUT_TIMEOUT_MS, schema: positiveMsSchema, describe: 'A release not fully running this long after it was made fails (the previous one keeps serving).' }),
  bundleGraceMs: option({ env: 'BERTH_BUNDLE_GRACE_MS', default: DEFAULT_BUNDLE_GRACE_MS, schema: positiveMsSchema, describe: 'A bundle no release uses is deleted once it is this old.' }),
  dashboardSessionTtlMs: option({ env: 'BERTH_DASHBOARD_SESSION_TTL_MS', default: DEFAULT_SESSION_TTL_MS, schema: positiveMsSchema, describe: 'How long a dashboard sign-in lasts.' }),
  dashboardSampleMs: option({ env: 'BERTH_DASHBOARD_SAMPLE_MS', default: DEFAULT_LOAD_SAMPLE_MS, schema: positiveMsSchema, describe: "How often the machines' load and culprit are sampled for the dashboard's charts (an hour is kept)." }),
  trustedProxies: option({ env: 'BERTH_TRUSTED_PROXIES', default: DEFAULT_TRUSTED_PROXIES, schema: listSchema, describe: 'Addresses whose X-Forwarded-Proto is believed (the balancer): a dashboard cookie is Secure when it says https.' }),
  gitDir: option({
    env: 'BERTH_GIT_DIR',
    default: '',
    schema: z.string(),
    describe: "Where the git remotes' bare repositories are kept: a cache, any registry takes any push (default: <os tmpdir>/berth-git-<key prefix>; berth up: <data dir>/git).",
  }),
  acmeKeyFile: option({
    env: 'BERTH_ACME_KEY_FILE',
    default: '',
    schema: z.string(),
    describe: "File of the key (64 hex characters) that seals certificates' private keys in Redis: the same file as the balancers' (berth up: <data dir>/acme-key). Without it, berth certs:add is refused.",
  }),
  addonPortRange: option({
    env: 'BERTH_ADDON_PORT_RANGE',
    default: [...DEFAULT_ADDON_PORT_RANGE] as [number, number],
    schema: portRangeSchema,
    describe: "Ports add-on servers listen on, on each machine's address that apps reach (one port per add-on of a machine; keep it outside the hosters' BERTH_PORT_RANGE).",
  }),
  addonBackupDir: option({
    env: 'BERTH_ADDON_BACKUP_DIR',
    default: '',
    schema: z.string(),
    describe: "Where add-on backups are kept, by add-on name (default: <os tmpdir>/berth-addon-backups-<key prefix>; berth up: <data dir>/addon-backups). Give registries one shared folder, or take and restore backups through one of them.",
  }),
  addonBackupMinEveryMs: option({
    env: 'BERTH_ADDON_BACKUP_MIN_EVERY_MS',
    default: DEFAULT_ADDON_BACKUP_MIN_EVERY_MS,
    schema: positiveMsSchema,
    describe: 'The shortest period of scheduled add-on backups (berth addons:backup NAME --every); the registries look for those due every quarter of it, at most every 5 s.',
  }),
  addonBackupsKept: option({ env: 'BERTH_ADDON_BACKUPS_KEPT', default: DEFAULT_ADDON_BACKUPS_KEPT, schema: positiveIntSchema, describe: 'Backups kept per add-on: the oldest beyond this are removed at each new one.' }),
  postgresBinDir: option({ env: 'BERTH_POSTGRES_BIN_DIR', default: '', schema: z.string(), describe: "Folder of pg_dump and pg_restore for postgres add-ons' backups. Default: the newest /usr/lib/postgresql/<version>/bin." }),
  graceMs: option({ env: 'BERTH_GRACE_MS', default: 10_000, schema: positiveMsSchema, describe: 'How long a drain may take after SIGTERM.' }),
  logLevel: option({ env: 'BERTH_LOG_LEVEL', default: 'info', schema: logLevelSchema, describe: 'Log level.' }),
  ...REDIS_OPTIONS,
};

export type RegistryConfig = ResolvedOptions<typeof REGISTRY_OPTIONS>;

export interface RegistryDaemon {
  /** The API's base URL, e.g. http://127.0.0.1:7070. */
  url: string;
  store: RegistryStore;
  bundles: BundleStore;
  apps: AppStore;
  reconciler: Reconciler;
  close(): Promise<void>;
}

/**
 * Starts the registry: the REST API and the lease reaper. It waits a few seconds for Redis,
 * then listens even while Redis is away (answering 503 until it is back), so that start
 * order never matters.
 */
export async function startRegistry(config: RegistryConfig, logger: Logger): Promise<RegistryDaemon> {
  if (config.token.length === 0) {
    throw new Error('No API token: set BERTH_TOKEN (or --token) to a long random string, e.g. `openssl rand -hex 24`.');
  }
  const settings = redisSettingsFrom(config);
  let redisDown = false;
  const redis = connectRedis(settings, {
    name: 'berth-registry',
    onError: (err) => {
      if (!redisDown) logger.warn({ err: err.message }, 'Redis connection failed: answering 503 while reconnecting');
      redisDown = true;
    },
  });
  redis.on('ready', () => {
    if (redisDown) logger.info('Redis connection is back');
    redisDown = false;
  });
  const store = new RegistryStore(redis, {
    keyPrefix: config.keyPrefix,
    leaseMs: config.leaseMs,
    eventsMaxLength: config.eventsMaxLength,
    ...replicaWait(settings),
  });
  const bundles = new BundleStore(redis, { keyPrefix: config.keyPrefix, limitBytes: config.bundleLimitBytes });
  const appStore = new AppStore(redis, { keyPrefix: config.keyPrefix, eventsMaxLength: config.eventsMaxLength });
  const addonStore = new AddonStore(redis, registryKeys(config.keyPrefix));
  const apps = new AppOperations({
    apps: appStore,
    store,
    bundleExists: (digest) => bundles.has(digest),
    bundleProcfile: (digest) => readBundleProcfile(bundles.read(digest)),
    publicUrl: config.publicUrl === '' ? null : config.publicUrl,
    // The add-on operations are made just below: details are asked for only once both exist.
    addonsOf: (app) => addons.ofApp(app),
    addonVariables: (app) => addonStore.attachmentsOf(app),
  });
  const addons: AddonOperations = new AddonOperations({
    addons: addonStore,
    backupMinEveryMs: config.addonBackupMinEveryMs,
    apps: appStore,
    appOperations: apps,
    store,
    portRange: config.addonPortRange,
    backups: new AddonBackups({
      dir: config.addonBackupDir === '' ? join(tmpdir(), `berth-addon-backups-${config.keyPrefix}`) : config.addonBackupDir,
      kept: config.addonBackupsKept,
      postgresBinDir: config.postgresBinDir === '' ? debianPostgresBinDir() : config.postgresBinDir,
    }),
  });

  // Serve at once if Redis is up soon; otherwise listen anyway and answer 503 until it is.
  await waitForReady(redis, 5000).catch(() => logger.warn('Redis is not reachable yet: listening anyway, answering 503 until it is'));

  const loadHistory = new LoadHistory({ redis, store, keys: dashboardKeys(store.keys), sampleMs: config.dashboardSampleMs, logger });
  const keys = registryKeys(config.keyPrefix);
  const tokenStore = new TokenStore(redis, keys);
  const checker = new TokenChecker(config.token, tokenStore);
  const git = createGitRemotes({
    dir: config.gitDir === '' ? join(tmpdir(), `berth-git-${config.keyPrefix}`) : config.gitDir,
    nodePath: process.execPath,
    searchPath: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    redis,
    keys,
    apps,
    bundles,
    tokens: tokenStore,
    checkToken: (token) => checker.grant(token),
    rolloutTimeoutMs: config.rolloutTimeoutMs,
    logger,
  });

  let closing = false;
  const { app, closeStreams, upgrade } = createApiApp({
    store,
    bundles,
    apps,
    addons,
    maxInstances: config.maxInstances,
    redis,
    openBlockingConnection: () => connectRedis(settings, { name: 'berth-registry-events', blocking: true }),
    tokens: config.token,
    tokenStore,
    bodyLimitBytes: config.bodyLimitBytes,
    bundleLimitBytes: config.bundleLimitBytes,
    maxEventClients: config.maxEventClients,
    logger,
    isClosing: () => closing,
    dashboard: { sessionTtlMs: config.dashboardSessionTtlMs, trustedProxies: config.trustedProxies, loadHistory },
    git,
    domains: {
      store: new DomainStore(redis, { keyPrefix: config.keyPrefix, eventsMaxLength: config.eventsMaxLength }),
      certificates: new CertificateStore(redis, {
        keyPrefix: config.keyPrefix,
        eventsMaxLength: config.eventsMaxLength,
        ...(config.acmeKeyFile === '' ? {} : { sealingKey: readSealingKey(config.acmeKeyFile) }),
      }),
    },
  });

  const server = createServer(
    { headersTimeout: 10_000, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 },
    app,
  );
  server.on('upgrade', upgrade);
  const connections = trackConnections(server);
  await listen(server, config.port, config.host);
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const reaper = startReaper({ store, logger, intervalMs: config.reapIntervalMs, silentFraction: config.silentFraction });
  const reconciler = new Reconciler({
    store,
    apps: appStore,
    bundles,
    addons: addonStore,
    logger,
    intervalMs: config.reconcileIntervalMs,
    drainMs: config.drainMs,
    rolloutTimeoutMs: config.rolloutTimeoutMs,
    bundleGraceMs: config.bundleGraceMs,
  });
  reconciler.start();
  const runSweeper = new RunSweeper({ runs: new RunStore(redis, keys), logger, intervalMs: DEFAULT_RUN_SWEEP_MS, startTimeoutMs: config.runStartTimeoutMs });
  runSweeper.start();
  const cronScheduler = new CronScheduler({ crons: new CronStore(redis, keys), apps, logger, passMs: DEFAULT_CRON_PASS_MS, lateMs: DEFAULT_CRON_LATE_MS });
  cronScheduler.start();
  // A period's backup is taken within a quarter of the shortest period of its start.
  const addonBackupScheduler = new AddonBackupScheduler({ addons: addonStore, operations: addons, now: () => store.now(), logger, passMs: Math.max(50, Math.min(DEFAULT_ADDON_BACKUP_PASS_MS, Math.floor(config.addonBackupMinEveryMs / 4))) });
  addonBackupScheduler.start();
  loadHistory.start();
  logger.info({ url, keyPrefix: config.keyPrefix }, `registry listening on ${url}`);

  const close = idempotentClose(async () => {
    closing = true;
    await reaper.close();
    await reconciler.close();
    await runSweeper.close();
    await cronScheduler.close();
    await addonBackupScheduler.close();
    await loadHistory.close();
    closeStreams();
    await connections.drain(config.graceMs);
    await closeRedis(redis);
  });
  return { url, store, bundles, apps: appStore, reconciler, close };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new Error(`Port ${port} on ${host} is in use: stop what uses it or choose another with --port.`));
      else reject(err);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
