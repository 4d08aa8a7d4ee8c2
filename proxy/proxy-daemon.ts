import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';
import { listSchema, logLevelSchema, option, portSchema, positiveMsSchema, type ResolvedOptions } from '../common/config.js';
import { idempotentClose } from '../common/daemon-lifecycle.js';
import { joinWorkerPrimary } from '../common/daemon-workers.js';
import type { Logger } from '../common/logger.js';
import { closeRedis, connectRedis, REDIS_OPTIONS, redisSettingsFrom, waitForReady } from '../common/redis-connection.js';
import { keyPrefixSchema, machineNameSchema } from '../common/names.js';
import { systemLoad, type LoadSource } from '../common/load-source.js';
import { AppStore, DEFAULT_KEY_PREFIX, DomainStore, RegistryStore } from '../registry/store/index.js';
import { RequestMetrics, RouteSync, RouteTable, totalMetricsText, UpstreamHealth, type RoutedInstance } from '../forward/index.js';
import { CpuSampler } from './cpu-sampler.js';
import { HttpForwarder } from './http-forwarder.js';
import { culpritReport, loadReport } from './machine-report.js';
import { createProxyServer } from './proxy-server.js';
import { RedisContact } from './redis-contact.js';
import { WebSocketForwarder } from './websocket-forwarder.js';
import { startHaproxyEngine, type HaproxyEngine } from './haproxy-engine/index.js';

export const DEFAULT_PROXY_PORT = 8080;

/** An instance whose connection fails is set aside for 0.5 s, doubling with each failure in a row up to 10 s. */
const INSTANCE_SET_ASIDE = { firstSetAsideMs: 500, maxSetAsideMs: 10_000 };

/** Every option of `berth proxy`. */
export const PROXY_OPTIONS = {
  host: option({ env: 'BERTH_PROXY_HOST', default: '0.0.0.0', schema: z.string().min(1), describe: 'Address the proxy listens on.' }),
  port: option({ env: 'BERTH_PROXY_PORT', default: DEFAULT_PROXY_PORT, schema: portSchema, describe: 'Port the proxy listens on (0 picks a free one).' }),
  machine: option({ env: 'BERTH_MACHINE', default: hostname(), schema: machineNameSchema, describe: "This machine's name in the registry (as its hoster's)." }),
  keyPrefix: option({ env: 'BERTH_KEY_PREFIX', default: DEFAULT_KEY_PREFIX, schema: keyPrefixSchema, describe: 'Name inside the Redis key prefix.' }),
  trustedProxies: option({ env: 'BERTH_TRUSTED_PROXIES', default: ['127.0.0.1', '::1', '::ffff:127.0.0.1'], schema: listSchema, describe: 'Addresses whose X-Forwarded-* headers are believed (balancers, other machines\' proxies).' }),
  upstreamTimeoutMs: option({ env: 'BERTH_UPSTREAM_TIMEOUT_MS', default: 60_000, schema: positiveMsSchema, describe: 'An instance must start answering within this (504 otherwise).' }),
  connectTimeoutMs: option({ env: 'BERTH_CONNECT_TIMEOUT_MS', default: 2000, schema: positiveMsSchema, describe: 'Connecting to an instance may take this long before another is tried.' }),
  headersTimeoutMs: option({ env: 'BERTH_HEADERS_TIMEOUT_MS', default: 10_000, schema: positiveMsSchema, describe: 'A client must send its request headers within this (408).' }),
  requestTimeoutMs: option({ env: 'BERTH_REQUEST_TIMEOUT_MS', default: 120_000, schema: positiveMsSchema, describe: 'A client must send its whole request within this (408).' }),
  keepAliveTimeoutMs: option({ env: 'BERTH_KEEP_ALIVE_TIMEOUT_MS', default: 5000, schema: positiveMsSchema, describe: 'Idle client connections close after this.' }),
  maxHeaderBytes: option({ env: 'BERTH_MAX_HEADER_BYTES', default: 16 * 1024, schema: z.coerce.number().int().min(1024).max(1024 * 1024), describe: 'Largest request head (431 beyond).' }),
  maxConnections: option({ env: 'BERTH_MAX_CONNECTIONS', default: 10_000, schema: z.coerce.number().int().min(1), describe: 'Most client connections at once.' }),
  engine: option({ env: 'BERTH_PROXY_ENGINE', default: 'node', schema: z.enum(['node', 'haproxy']), describe: 'What forwards requests: node (berth\'s own, the default) or haproxy (a local haproxy berth supervises, routes changed through its Runtime API).' }),
  workers: option({ env: 'BERTH_PROXY_WORKERS', default: 0, schema: z.coerce.number().int().min(0).max(256), describe: 'Proxy processes sharing the port; 0 means one per CPU.' }),
  graceMs: option({ env: 'BERTH_GRACE_MS', default: 10_000, schema: positiveMsSchema, describe: 'How long a drain may take after SIGTERM.' }),
  logLevel: option({ env: 'BERTH_LOG_LEVEL', default: 'info', schema: logLevelSchema, describe: 'Log level.' }),
  ...REDIS_OPTIONS,
};

export type ProxyConfig = ResolvedOptions<typeof PROXY_OPTIONS>;

export interface ProxyDaemon {
  url: string;
  table: RouteTable;
  sync: RouteSync;
  /** The HAProxy engine, when the proxy runs with --engine haproxy. */
  haproxy?: HaproxyEngine;
  close(): Promise<void>;
}

/**
 * Starts this machine's proxy. `load` is injectable for tests of GetLoad; `worker` is set in a
 * worker of `startWorkerPrimary`, whose /metrics then adds up every worker's numbers.
 */
export async function startProxy(config: ProxyConfig, logger: Logger, overrides: { load?: LoadSource; worker?: number } = {}): Promise<ProxyDaemon> {
  const settings = redisSettingsFrom(config);
  const redis = connectRedis(settings, { name: `berth-proxy-${config.machine}` });
  const events = connectRedis(settings, { name: `berth-proxy-${config.machine}-events`, blocking: true });
  await waitForReady(redis, 5000).catch(() => logger.warn('Redis is not reachable yet: serving no routes until it is'));
  const store = new RegistryStore(redis, { keyPrefix: config.keyPrefix });
  const apps = new AppStore(redis, { keyPrefix: config.keyPrefix });
  const table = new RouteTable(config.machine);
  let haproxy: HaproxyEngine | undefined;
  const withHaproxy = config.engine === 'haproxy';
  const sync = new RouteSync({ table, store, apps, domains: new DomainStore(redis, { keyPrefix: config.keyPrefix }), events, logger, onChange: () => haproxy?.changed(), machine: config.machine });
  const metrics = new RequestMetrics();
  let metricsText: () => string | Promise<string> = () => metrics.render();
  // With haproxy in front, berth's Node listener learns each client's address from the PROXY protocol.
  const trusted = new Set(config.trustedProxies);
  const isTrusted = (address: string | undefined) => address !== undefined && trusted.has(address);
  // The Node engine's own state of the table's instances, beside the table (which is pure routing).
  const health = new UpstreamHealth<RoutedInstance>(INSTANCE_SET_ASIDE);
  const http = new HttpForwarder({ table, health, metrics, proxyOf: sync.proxyOf, trusted: isTrusted, upstreamTimeoutMs: config.upstreamTimeoutMs, connectTimeoutMs: config.connectTimeoutMs });
  const websocket = new WebSocketForwarder({ table, health, proxyOf: sync.proxyOf, trusted: isTrusted, connectTimeoutMs: config.connectTimeoutMs });
  const load = overrides.load ?? systemLoad;
  const sampler = new CpuSampler({
    targets: () => {
      const out: { service: string; instance: string; pid: number }[] = [];
      for (const route of table.routes()) for (const u of route.local) if (u.pid > 0) out.push({ service: route.app, instance: u.id, pid: u.pid });
      // Workers too: no route, but their CPU is what the scaler scales them on (docs/scaler.md).
      for (const u of sync.unroutedLocal()) out.push({ service: u.service, instance: u.instance, pid: u.pid });
      return out;
    },
  });
  sampler.start();
  sync.start();
  const contact = new RedisContact(redis, config.machine, () => {
    let n = sync.unroutedLocal().length;
    for (const route of table.routes()) n += route.local.length;
    return n;
  });
  contact.start();

  const reports: Record<string, () => unknown> = {
    '/_berth/load': () => loadReport(load()),
    '/_berth/culprit': () => culpritReport(sampler, config.machine),
    '/_berth/routes': () => routesReport(table, health, overrides.worker),
    '/_berth/control-plane': () => contact.report(),
  };
  const { listener, connections } = createProxyServer({
    table,
    http,
    websocket,
    metricsText: () => metricsText(),
    isReady: () => sync.ready,
    reports,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    maxHeaderSize: config.maxHeaderBytes,
    maxConnections: config.maxConnections,
    proxyProtocol: withHaproxy,
  });
  // HAProxy's first config holds every route, so that it starts with no reload to come.
  if (overrides.worker !== undefined || withHaproxy) await untilRoutesLoaded(sync, logger);
  // With haproxy on the proxy's port, berth's Node listener serves it alone, on loopback.
  const [listenPort, listenHost] = withHaproxy ? [0, '127.0.0.1'] : [config.port, config.host];
  await new Promise<void>((resolve, reject) => {
    listener.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`Port ${config.port} on ${config.host} is in use: stop what uses it or choose another with --port.`) : err),
    );
    listener.listen(listenPort, listenHost, () => resolve());
  });
  const address = listener.address() as AddressInfo;
  if (withHaproxy) {
    haproxy = await startHaproxyEngine({ ...config, table, nodePort: address.port, logger }).catch(async (err: unknown) => {
      listener.close();
      sampler.close();
      contact.close();
      await sync.close();
      await closeRedis(redis);
      throw err;
    });
    // Changes while haproxy started found no engine to tell (the table noted them): applied now.
    haproxy.changed();
  }
  const shown = withHaproxy ? config.host : address.address;
  const host = shown === '0.0.0.0' || shown === '::' ? '127.0.0.1' : shown;
  const port = haproxy?.port ?? address.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, machine: config.machine, engine: config.engine }, `proxy of ${config.machine} listening on ${url} (engine ${config.engine})`);
  if (haproxy !== undefined) {
    const engine = haproxy;
    const nodeMetrics = metricsText;
    metricsText = async () => `${await nodeMetrics()}${await engine.metricsText()}`;
    reports['/_berth/routes'] = async () => {
      // In flight and set-asides are HAProxy's (it serves the requests), from its show stat.
      const { server, engine: about } = await engine.report();
      const report = routesReport(table, health, undefined);
      return { engine: about, routes: report.routes.map((r) => ({ ...r, local: r.local.map((u) => ({ ...u, ...server(r.app, u.instance, u.epoch) })) })) };
    };
  }

  const close = idempotentClose(async () => {
    const linger = { idleLingerMs: IDLE_LINGER_MS, listenLingerMs: LISTEN_LINGER_MS };
    if (haproxy !== undefined) {
      // HAProxy drains first, as the Node engine would (its /_berth/health, which the Node
      // listener answers, fails from now); then the Node listener, whose one client is gone.
      connections.announceDrain();
      await haproxy.close(linger);
    }
    websocket.closeAll();
    await connections.drain(config.graceMs, haproxy === undefined ? linger : {});
    http.close();
    sampler.close();
    contact.close();
    await sync.close();
    await closeRedis(redis);
  });
  if (overrides.worker !== undefined) {
    const worker = overrides.worker;
    const { gather } = joinWorkerPrimary({ metrics: () => metrics.snapshot(), routes: () => routesReport(table, health, worker) }, { close }, logger, config.graceMs);
    metricsText = () => totalMetricsText(metrics, () => gather('metrics'));
    reports['/_berth/routes'] = async () => totalRoutesReport(routesReport(table, health, worker), (await gather('routes')) as RoutesReport[] | undefined);
  }
  return { url, table, sync, ...(haproxy ? { haproxy } : {}), close };
}

/**
 * On a drain, how long the proxy keeps accepting connections, serving one request on each:
 * closing its listener resets the connections queued there (cluster's primary holds some too),
 * each perhaps under a request a balancer already sent, a POST it may not send again. Every
 * answer of a draining proxy says so (DRAINING_HEADER) and its health check fails, so under
 * load a balancer stops choosing it within milliseconds, and idle ones at their next check.
 */
const LISTEN_LINGER_MS = 500;

/**
 * Then, how long an idle client connection is left for its client to close (a balancer closes
 * its connections to a draining proxy) or to use once more (that answer says Connection:
 * close), before the proxy closes it itself, racing a request the client may be sending on
 * it. Under load a balancer's connections are all gone within milliseconds; this bounds what
 * others' idle connections (a scaler's, another proxy's) add to a restart.
 */
const IDLE_LINGER_MS = 1000;

/** Beside its siblings, a worker that listened before loading routes would answer 404 for apps that exist. */
const WORKER_LOAD_WAIT_MS = 10_000;

async function untilRoutesLoaded(sync: RouteSync, logger: Logger): Promise<void> {
  const deadline = Date.now() + WORKER_LOAD_WAIT_MS;
  while (!sync.ready && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  if (!sync.ready) logger.warn(`routes not loaded after ${WORKER_LOAD_WAIT_MS / 1000} s (is Redis reachable?): serving anyway`);
}

type RoutesReport = ReturnType<typeof routesReport>;

/**
 * A worker's /_berth/routes with every worker's requests in flight added up per instance (what
 * the scaler reads as the machine's); set-asides stay the answering worker's own.
 */
function totalRoutesReport(own: RoutesReport, all: RoutesReport[] | undefined): RoutesReport & { inFlightOf?: string } {
  if (all === undefined) return { ...own, inFlightOf: 'this worker only (the others did not answer)' };
  const inFlight = new Map<string, number>();
  for (const report of all) for (const r of report.routes) for (const u of r.local) inFlight.set(`${r.prefix} ${u.instance}`, (inFlight.get(`${r.prefix} ${u.instance}`) ?? 0) + u.inFlight);
  return {
    ...own,
    inFlightOf: `all ${all.length} workers`,
    routes: own.routes.map((r) => ({ ...r, local: r.local.map((u) => ({ ...u, inFlight: inFlight.get(`${r.prefix} ${u.instance}`) ?? u.inFlight })) })),
  };
}

function routesReport(table: RouteTable, health: UpstreamHealth<RoutedInstance>, worker: number | undefined) {
  const now = Date.now();
  return {
    // In-flight counts and set-asides are each worker's own: say whose these are.
    ...(worker === undefined ? {} : { worker }),
    routes: [...table.routes()].map((r) => ({
      prefix: r.prefix,
      app: r.app,
      stripPrefix: r.stripPrefix,
      local: r.local.map((u) => {
        const state = health.of(u);
        return {
          instance: u.id,
          epoch: u.epoch,
          port: u.port,
          inFlight: state.inFlight,
          setAside: state.setAsideUntil > now ? { forMs: state.setAsideUntil - now, why: state.setAsideWhy } : null,
        };
      }),
      remote: Object.fromEntries([...r.remote].map(([m, list]) => [m, list.map((u) => ({ instance: u.id, epoch: u.epoch }))])),
    })),
  };
}
