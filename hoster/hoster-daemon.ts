import { chmodSync, chownSync, existsSync, mkdirSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { logLevelSchema, option, portRangeSchema, positiveIntSchema, positiveMsSchema, type ResolvedOptions } from '../common/config.js';
import { idempotentClose } from '../common/daemon-lifecycle.js';
import type { Logger } from '../common/logger.js';
import { closeRedis, connectRedis, REDIS_OPTIONS, redisSettingsFrom, replicaWait, waitForReady } from '../common/redis-connection.js';
import { keyPrefixSchema, machineNameSchema, ATTRIBUTE_KEY_PATTERN } from '../common/names.js';
import { AddonStore, AppStore, BundleStore, DEFAULT_KEY_PREFIX, DEFAULT_LEASE_MS, RegistryStore } from '../registry/store/index.js';
import { AddonSupervisor, DEFAULT_ADDON_USAGE_MS } from './addon-supervisor.js';
import { debianPostgresBinDir } from '../common/postgres-programs.js';
import { buildApp } from './app-build.js';
import { detectCgroups, type CgroupSupport } from './cgroup-limits.js';
import { installAppFirewall, removeAppFirewall } from './app-firewall.js';
import { AppUsers } from './app-users.js';
import { BundleCache } from './bundle-cache.js';
import { BundlePruning } from './bundle-pruning.js';
import { chooseHosterDir } from './hoster-dir.js';
import { Hoster } from './hoster.js';
import { fileLoad, systemLoad, type LoadSource } from '../common/load-source.js';
import { startCommand } from './start-command.js';

const labelsSchema = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? Object.fromEntries(
          v
            .split(',')
            .map((p) => p.trim())
            .filter(Boolean)
            .map((p) => [p.slice(0, p.indexOf('=') < 0 ? p.length : p.indexOf('=')), p.includes('=') ? p.slice(p.indexOf('=') + 1) : 'true']),
        )
      : v,
  z.record(z.string().regex(ATTRIBUTE_KEY_PATTERN), z.string().max(256)),
);


/** How long apps keep running while Redis is away for every machine (see control-plane-grace.ts). */
export const DEFAULT_CONTROL_PLANE_GRACE_MS = 90_000;

const graceSchema = z.coerce
  .number()
  .int()
  .min(0)
  .max(3_600_000)
  .refine((ms) => ms === 0 || ms >= 1000, 'must be 0 (off) or at least 1000 ms');

export const DEFAULT_CAPACITY = Math.max(1, Math.min(cpus().length * 8, Math.floor(totalmem() / 2 ** 20 / 128)));

/** Every option of `berth hoster`. */
export const HOSTER_OPTIONS = {
  machine: option({ env: 'BERTH_MACHINE', default: hostname(), schema: machineNameSchema, describe: "This machine's name in the registry." }),
  dataDir: option({ env: 'BERTH_DATA_DIR', default: '.berth', schema: z.string().min(1), describe: 'Where bundles, builds and instance directories live (under hoster/, unless apps could not reach it: see BERTH_HOSTER_DIR).' }),
  postgresBinDir: option({ env: 'BERTH_POSTGRES_BIN_DIR', default: '', schema: z.string(), describe: "Folder of PostgreSQL's programs for postgres add-ons (initdb, postgres, psql). Default: the newest /usr/lib/postgresql/<version>/bin (Debian's packages)." }),
  addonUsageMs: option({ env: 'BERTH_ADDON_USAGE_MS', default: DEFAULT_ADDON_USAGE_MS, schema: positiveMsSchema, describe: "How often each running add-on's data size and connections are measured (addons:info shows them)." }),
  redisServer: option({ env: 'BERTH_REDIS_SERVER', default: 'redis-server', schema: z.string().min(1), describe: 'The redis-server program for redis add-ons (found on PATH by default).' }),
  hosterDir: option({ env: 'BERTH_HOSTER_DIR', default: '', schema: z.string(), describe: 'Where bundles, builds and instance directories live. Default: <data-dir>/hoster, or /var/lib/berth/hosters/<id> when apps (their own users, as root) could not traverse the data dir.' }),
  keyPrefix: option({ env: 'BERTH_KEY_PREFIX', default: DEFAULT_KEY_PREFIX, schema: keyPrefixSchema, describe: 'Name inside the Redis key prefix.' }),
  leaseMs: option({ env: 'BERTH_LEASE_MS', default: DEFAULT_LEASE_MS, schema: z.coerce.number().int().min(1000).max(600_000), describe: 'Lease of each claim (renewed four times per lease); an app stops about half a lease after its hoster is last heard of.' }),
  pollIntervalMs: option({ env: 'BERTH_POLL_INTERVAL_MS', default: 60_000, schema: positiveMsSchema, describe: 'Full look for unclaimed work this often (events wake it at once besides).' }),
  maxLoadPerCpu: option({ env: 'BERTH_MAX_LOAD_PER_CPU', default: 1.0, schema: z.coerce.number().positive(), describe: 'Claim only while the 5-minute load average per CPU is below this.' }),
  loadFile: option({ env: 'BERTH_LOAD_FILE', default: '', schema: z.string(), describe: 'Read the load from this file (/proc/loadavg form) instead of the system: for machines sharing one kernel.' }),
  capacity: option({ env: 'BERTH_CAPACITY', default: DEFAULT_CAPACITY, schema: positiveIntSchema, describe: 'Most instances on this machine (default: 8 per CPU, at most one per 128 MB).' }),
  claimsPerRound: option({ env: 'BERTH_CLAIMS_PER_ROUND', default: 4, schema: positiveIntSchema, describe: 'Most claims in one round (the load average lags).' }),
  spreadDelayMs: option({ env: 'BERTH_SPREAD_DELAY_MS', default: 150, schema: z.coerce.number().int().min(0).max(10_000), describe: 'Wait per instance of the same app already here before claiming another.' }),
  portRange: option({ env: 'BERTH_PORT_RANGE', default: [20_000, 29_999] as [number, number], schema: portRangeSchema, describe: 'Loopback ports for app instances.' }),
  labels: option({ env: 'BERTH_MACHINE_LABELS', default: {} as Record<string, string>, schema: labelsSchema, describe: 'Labels apps can require, e.g. zone=a,ssd=true.' }),
  proxyUrl: option({ env: 'BERTH_PROXY_URL', default: '', schema: z.union([z.literal(''), z.string().url()]), describe: "Where this machine's proxy listens, as other machines reach it." }),
  controlPlaneGraceMs: option({
    env: 'BERTH_CONTROL_PLANE_GRACE_MS',
    default: DEFAULT_CONTROL_PLANE_GRACE_MS,
    schema: graceSchema,
    describe: 'While Redis is away for every machine (not this one alone cut off), apps keep running for up to this long after this machine last reached Redis; 0: they stop before their leases end, as when cut off.',
  }),
  memoryLimitBy: option({
    env: 'BERTH_MEMORY_LIMIT_BY',
    default: 'auto' as 'auto' | 'rlimit',
    schema: z.enum(['auto', 'rlimit']),
    describe: "How apps' memory limits are held: auto (the app's cgroup where the machine has cgroups the hoster may use, else RLIMIT_DATA per process) or rlimit (never cgroups; a CPU weight then cannot be held).",
  }),
  bundleIdleMs: option({
    env: 'BERTH_BUNDLE_IDLE_MS',
    default: 24 * 3_600_000,
    schema: z.coerce.number().int().min(60_000),
    describe: "A release's unpacked and built copy that no process here uses, and that was not needed for this long, is removed (with the build HOME of an app left with none); the registry keeps the bundle.",
  }),
  stopGraceMs: option({ env: 'BERTH_STOP_GRACE_MS', default: 5000, schema: positiveMsSchema, describe: 'SIGTERM to SIGKILL grace when an app is stopped.' }),
  healthIntervalMs: option({ env: 'BERTH_HEALTH_INTERVAL_MS', default: 1000, schema: positiveMsSchema, describe: 'Time between health check attempts.' }),
  evacuateTimeoutMs: option({ env: 'BERTH_EVACUATE_TIMEOUT_MS', default: 60_000, schema: positiveMsSchema, describe: 'On SIGTERM, how long to wait for replacements before stopping what is left.' }),
  heartbeatMs: option({ env: 'BERTH_HEARTBEAT_MS', default: 5000, schema: positiveMsSchema, describe: 'Machine heartbeat interval.' }),
  logLevel: option({ env: 'BERTH_LOG_LEVEL', default: 'info', schema: logLevelSchema, describe: 'Log level.' }),
  ...REDIS_OPTIONS,
};

export type HosterConfig = ResolvedOptions<typeof HOSTER_OPTIONS>;

export const CRASH_LIMIT = 3;
export const CRASH_WINDOW_MS = 60_000;

export interface HosterDaemon {
  hoster: Hoster;
  /** The add-ons pinned to this machine and their servers. */
  addons: AddonSupervisor;
  /** Evacuates (the default on SIGTERM), or leaves the apps for the next hoster to re-adopt. */
  close(options?: { evacuate: boolean }): Promise<void>;
}

/** Starts the hoster of this machine. `load` is injectable for tests of the load gate. */
export async function startHoster(config: HosterConfig, logger: Logger, overrides: { load?: LoadSource } = {}): Promise<HosterDaemon> {
  // Root runs each app as a user of its own; anyone else runs apps as itself.
  const asRoot = process.getuid?.() === 0;
  // Before anything else: a tree apps cannot reach would fail every deploy, later and vaguely.
  const where = chooseHosterDir(config.dataDir, { explicit: config.hosterDir, appsRunAsOthers: asRoot });
  if (where.moved) logger.info({ hosterDir: where.dir }, where.moved);
  const dataDir = where.dir;
  mkdirSync(dataDir, { recursive: true, mode: 0o711 });
  // Apps may pass through it, never list it.
  chmodSync(dataDir, 0o711);
  const appUsers = asRoot ? new AppUsers(dataDir) : undefined;
  // Only the proxy (and this hoster) may connect to an instance's port, never another app.
  const firewall = asRoot ? installAppFirewall(config.machine, config.portRange) : undefined;
  if (firewall && !firewall.installed) logger.warn({ why: firewall.why }, `apps on this machine can connect to each other's ports: ${firewall.why}`);
  // Apps with a memory or CPU limit get a cgroup each (cgroup-limits.ts); found once.
  const cgroups: CgroupSupport = config.memoryLimitBy === 'rlimit' ? { kind: 'none', why: 'BERTH_MEMORY_LIMIT_BY is rlimit' } : detectCgroups();
  if (cgroups.kind === 'none') logger.info({ why: cgroups.why }, `no cgroups for apps here (${cgroups.why}): memory limits are held per process by RLIMIT_DATA, and apps with a CPU weight cannot run here`);
  const settings = redisSettingsFrom(config);
  let redisDown = false;
  const redis = connectRedis(settings, {
    name: `berth-hoster-${config.machine}`,
    onError: (err) => {
      if (!redisDown) logger.warn({ err: err.message }, 'Redis connection failed: apps keep running while their leases last');
      redisDown = true;
    },
  });
  redis.on('ready', () => {
    if (redisDown) logger.info('Redis connection is back');
    redisDown = false;
  });
  const events = connectRedis(settings, { name: `berth-hoster-${config.machine}-events`, blocking: true });
  await waitForReady(redis, 5000).catch(() => logger.warn('Redis is not reachable yet: will keep trying'));

  const store = new RegistryStore(redis, { keyPrefix: config.keyPrefix, leaseMs: config.leaseMs, ...replicaWait(settings) });
  const apps = new AppStore(redis, { keyPrefix: config.keyPrefix });
  const bundleStore = new BundleStore(redis, { keyPrefix: config.keyPrefix });
  const cache = new BundleCache({
    dir: join(dataDir, 'bundles'),
    fetch: (digest) => bundleStore.read(digest),
    build: async (appDir, digestDir, user, onLine) => {
      // Install scripts are the app's code: they run as its build user, never as root, and get
      // no secret of the hoster's (token, Redis URL); the npm cache is that user's own.
      const home = user ? buildHome(dataDir, user.buildUid, user.buildGid) : digestDir;
      const result = await buildApp(appDir, {
        logFile: join(digestDir, 'build.log'),
        onLine,
        user: user && { uid: user.buildUid, gid: user.buildGid },
        env: {
          PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
          HOME: home,
          npm_config_cache: user ? join(home, '.npm') : join(dataDir, 'npm-cache'),
          npm_config_update_notifier: 'false',
          NODE_ENV: 'production',
        },
      });
      if (result.ran !== 'none') logger.info({ appDir, ran: result.ran, ms: result.ms }, `built ${appDir} (${result.ran})`);
    },
  });

  // Renew four times a lease; the app must be dead fenceMarginMs before the lease could end
  // on Redis's clock, and its stop starts stopGraceMs before that: so a renewal may be late
  // by about half a lease before the shim stops the app.
  const fenceMarginMs = Math.floor(config.leaseMs / 5);
  const stopGraceMs = Math.min(config.stopGraceMs, Math.floor(config.leaseMs / 6));
  const hoster = new Hoster({
    machine: config.machine,
    store,
    apps,
    redis,
    events,
    logger,
    dataDir,
    shimPath: shimPath(),
    leaseMs: config.leaseMs,
    renewEveryMs: Math.max(100, Math.floor(config.leaseMs / 4)),
    fenceMarginMs,
    stopGraceMs,
    healthIntervalMs: config.healthIntervalMs,
    crashLimit: CRASH_LIMIT,
    crashWindowMs: CRASH_WINDOW_MS,
    appUsers,
    cgroups,
    prepare: (digest, user, onBuildLine) => cache.prepare(digest, user, onBuildLine),
    startCommand,
    portRange: config.portRange,
    pollIntervalMs: config.pollIntervalMs,
    heartbeatMs: config.heartbeatMs,
    maxLoadPerCpu: config.maxLoadPerCpu,
    load: overrides.load ?? (config.loadFile === '' ? systemLoad : fileLoad(config.loadFile, (reason) => logger.warn({ reason }, `cannot read the load file ${config.loadFile}: counting no load (write it as /proc/loadavg is written)`))),
    capacity: config.capacity,
    claimsPerRound: config.claimsPerRound,
    spreadDelayMs: config.spreadDelayMs,
    labels: config.labels,
    proxyUrl: config.proxyUrl,
    evacuateTimeoutMs: config.evacuateTimeoutMs,
    controlPlaneGraceMs: config.controlPlaneGraceMs,
    openBlockingConnection: () => connectRedis(settings, { name: `berth-hoster-${config.machine}-run-input`, blocking: true }),
  });
  if (config.controlPlaneGraceMs > 0 && config.controlPlaneGraceMs <= config.leaseMs) {
    logger.warn(
      { graceMs: config.controlPlaneGraceMs, leaseMs: config.leaseMs },
      `BERTH_CONTROL_PLANE_GRACE_MS (${config.controlPlaneGraceMs}) is not longer than BERTH_LEASE_MS (${config.leaseMs}): the lease alone keeps apps running about as long, so it changes next to nothing`,
    );
  }
  await hoster.start();
  // The add-ons pinned to this machine: stateful, never claimed by another (addon-supervisor.ts).
  const addonSupervisor = new AddonSupervisor({
    addons: new AddonStore(redis, store.keys),
    machine: config.machine,
    dataDir,
    appUsers,
    binaries: { postgresBinDir: config.postgresBinDir === '' ? debianPostgresBinDir() : config.postgresBinDir, redisServer: config.redisServer },
    logger,
    leaseMs: config.leaseMs,
    usageMs: config.addonUsageMs,
  });
  addonSupervisor.start();
  const pruning = new BundlePruning({
    cache,
    buildHomesDir: buildHomesDir(dataDir),
    idleMs: config.bundleIdleMs,
    everyMs: Math.min(3_600_000, Math.max(10_000, Math.floor(config.bundleIdleMs / 4))),
    logger,
  });
  pruning.start();
  logger.info({ machine: config.machine, dataDir, capacity: config.capacity, appsRunAs: asRoot ? 'a user of their own' : 'this user' }, `hoster of ${config.machine} started`);

  let how = { evacuate: true };
  const closeOnce = idempotentClose(async () => {
    await pruning.close();
    await hoster.close(how);
    // Stopped cleanly and their leases given back, whichever the shutdown: their data stays.
    await addonSupervisor.close();
    // Evacuated, no app of this hoster runs any more; left running, they keep their rules.
    if (how.evacuate && firewall?.installed) removeAppFirewall(config.machine, config.portRange);
    await closeRedis(redis);
  });
  return {
    hoster,
    addons: addonSupervisor,
    close: (options = { evacuate: true }) => {
      how = options;
      return closeOnce();
    },
  };
}

function shimPath(): string {
  const beside = fileURLToPath(new URL('./instance-shim.js', import.meta.url));
  // Run from TypeScript sources (tests): use the compiled shim.
  return existsSync(beside) ? beside : fileURLToPath(new URL('../dist/hoster/instance-shim.js', import.meta.url));
}

function buildHomesDir(hosterDir: string): string {
  return join(hosterDir, 'build-homes');
}

/** The build user's HOME (and npm cache): its own, 0700, kept across builds of its app. */
function buildHome(hosterDir: string, uid: number, gid: number): string {
  const homes = buildHomesDir(hosterDir);
  mkdirSync(homes, { recursive: true, mode: 0o711 });
  const home = join(homes, String(uid));
  mkdirSync(home, { recursive: true, mode: 0o700 });
  chownSync(home, uid, gid);
  return home;
}
