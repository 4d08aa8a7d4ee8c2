import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { SecureContext } from 'node:tls';
import { z } from 'zod';
import { listSchema, logLevelSchema, option, portSchema, positiveMsSchema, type ResolvedOptions } from '../common/config.js';
import { idempotentClose } from '../common/daemon-lifecycle.js';
import { joinWorkerPrimary } from '../common/daemon-workers.js';
import type { Logger } from '../common/logger.js';
import { closeRedis, connectRedis, REDIS_OPTIONS, redisSettingsFrom, waitForReady, type RedisClient } from '../common/redis-connection.js';
import { keyPrefixSchema } from '../common/names.js';
import { answerError, DEFAULT_RETRY_POLICY, parseRequestTarget, refuseUpgrade, requestHostName, RequestMetrics, RouteSync, RouteTable, totalMetricsText } from '../forward/index.js';
import { AppStore, CertificateStore, DEFAULT_KEY_PREFIX, DomainStore, readSealingKey, registryKeys, RegistryStore, TokenStore } from '../registry/store/index.js';
import { AcmeIssuer, DEFAULT_CHECK_MS, DEFAULT_RENEW_FRACTION, DEFAULT_RETRY_MAX_MS, DEFAULT_RETRY_MS } from './acme-issuer.js';
import { DomainCertificates } from './domain-certificates.js';
import { BackendPool } from './backend-pool.js';
import { BalancerForwarder } from './balancer-forwarder.js';
import { createClientServer } from './client-server.js';
import { forwardToRegistry, isDashboardPath } from './dashboard-pass.js';
import { HostCertificates, parseHostCertificates } from './host-certificates.js';
import { hasOneHost } from './host-header.js';
import { isInternalPath, ReportAccess } from './internal-reports.js';
import { ensureLocalCertificates, type LocalCertificates } from './local-certificates.js';
import { tlsServerOptions, watchCertificateFiles } from './tls-options.js';

export const DEFAULT_HTTPS_PORT = 8443;
/** Balancer processes sharing the listeners; 0 is one per CPU and at least 2 (docs/configuration.md says why). */
export const DEFAULT_BALANCER_WORKERS = 0;
/** With 0 workers asked for: a crash must never take the whole door down, so never fewer than this. */
export const MIN_DEFAULT_BALANCER_WORKERS = 2;

const booleanSchema = z.preprocess((v) => (typeof v === 'string' ? ['1', 'true', 'yes', 'on'].includes(v.toLowerCase()) : v), z.boolean());

/** Every option of `berth balancer`. */
export const BALANCER_OPTIONS = {
  host: option({ env: 'BERTH_BALANCER_HOST', default: '0.0.0.0', schema: z.string().min(1), describe: 'Address the balancer listens on.' }),
  httpsPort: option({ env: 'BERTH_HTTPS_PORT', default: DEFAULT_HTTPS_PORT, schema: portSchema, describe: 'HTTPS port (0 picks a free one).' }),
  httpPort: option({ env: 'BERTH_HTTP_PORT', default: -1, schema: z.coerce.number().int().min(-1).max(65535), describe: 'Plain-HTTP port that redirects to HTTPS (-1: none).' }),
  backends: option({ env: 'BERTH_BALANCER_BACKENDS', default: [] as string[], schema: listSchema, describe: "Static list of machines' proxy URLs, as the seed's pound had." }),
  registryUrl: option({ env: 'BERTH_BALANCER_REGISTRY_URL', default: '', schema: z.union([z.literal(''), z.string().url()]), describe: 'The registry whose dashboard /dashboard forwards to (berth up sets it; empty: /dashboard goes to the apps like any path).' }),
  discover: option({ env: 'BERTH_BALANCER_DISCOVER', default: true, schema: booleanSchema, describe: 'Also spread over every live machine of the registry, route-aware.' }),
  tlsCert: option({ env: 'BERTH_TLS_CERT', default: '', schema: z.string(), describe: 'PEM certificate (with chain); with BERTH_TLS_KEY. Reloaded when the files change.' }),
  tlsKey: option({ env: 'BERTH_TLS_KEY', default: '', schema: z.string(), describe: 'PEM private key of BERTH_TLS_CERT.' }),
  tlsHost: option({
    env: 'BERTH_TLS_HOSTS',
    default: [] as string[],
    schema: listSchema,
    describe: 'Certificates per host name (SNI), name=certfile:keyfile, repeatable (env: comma-separated); other names get the default certificate. Reloaded when the files change.',
  }),
  publicUrl: option({
    env: 'BERTH_PUBLIC_URL',
    default: '',
    schema: z.union([z.literal(''), z.string().url().refine((u) => new URL(u).protocol === 'https:', 'must be an https:// URL')]),
    describe: "The platform's public HTTPS URL: where plain HTTP is redirected (default: https:// the first BERTH_TLS_NAMES name, else the host name, on the HTTPS port). Never the client's Host.",
  }),
  tlsNames: option({ env: 'BERTH_TLS_NAMES', default: [] as string[], schema: listSchema, describe: 'Extra host names for the self-made certificate (besides localhost, 127.0.0.1, ::1 and the host name).' }),
  dataDir: option({ env: 'BERTH_DATA_DIR', default: '.berth', schema: z.string().min(1), describe: 'Where the self-made CA and certificate are kept (tls/).' }),
  hstsMaxAge: option({ env: 'BERTH_HSTS_MAX_AGE', default: 0, schema: z.coerce.number().int().min(0), describe: 'Strict-Transport-Security max-age in seconds (0: no header).' }),
  acmeDirectory: option({
    env: 'BERTH_ACME_DIRECTORY',
    default: '',
    schema: z.union([z.literal(''), z.string().url()]),
    describe: "An RFC 8555 ACME directory URL: with it (or BERTH_ACME_EMAIL), the balancers obtain a certificate for every app's domain (default when ACME is on: Let's Encrypt's).",
  }),
  acmeEmail: option({ env: 'BERTH_ACME_EMAIL', default: '', schema: z.union([z.literal(''), z.string().email()]), describe: "Contact address of the ACME account (the CA's expiry notices); turns ACME on." }),
  acmeKeyFile: option({
    env: 'BERTH_ACME_KEY_FILE',
    default: '',
    schema: z.string(),
    describe: "File of the key (64 hex characters) that seals certificates' private keys in Redis, the same as the registries' (berth up: <data dir>/acme-key). Needed to serve ACME's and operators' certificates.",
  }),
  acmeCaFile: option({ env: 'BERTH_ACME_CA_FILE', default: '', schema: z.string(), describe: "PEM file of a CA to trust for the ACME directory's HTTPS besides the system's (a private ACME CA)." }),
  acmeRenewAt: option({
    env: 'BERTH_ACME_RENEW_AT',
    default: DEFAULT_RENEW_FRACTION,
    schema: z.coerce.number().gt(0).lt(1),
    describe: "Renew a certificate once this share of its lifetime has passed (two thirds: Let's Encrypt's 90 days at 60).",
  }),
  acmeRetryMs: option({ env: 'BERTH_ACME_RETRY_MS', default: DEFAULT_RETRY_MS, schema: positiveMsSchema, describe: 'Wait after a failed ACME attempt; it doubles with each failure in a row, up to BERTH_ACME_RETRY_MAX_MS.' }),
  acmeRetryMaxMs: option({ env: 'BERTH_ACME_RETRY_MAX_MS', default: DEFAULT_RETRY_MAX_MS, schema: positiveMsSchema, describe: 'Longest wait between failed ACME attempts.' }),
  acmeCheckMs: option({ env: 'BERTH_ACME_CHECK_MS', default: DEFAULT_CHECK_MS, schema: positiveMsSchema, describe: "How often each balancer looks for domains whose certificate is missing, due for renewal or due for a retry." }),
  domainHstsMaxAge: option({
    env: 'BERTH_DOMAIN_HSTS_MAX_AGE',
    default: 31_536_000,
    schema: z.coerce.number().int().min(0),
    describe: "Strict-Transport-Security max-age (seconds) sent on an app's domain once it has a trusted certificate (ACME's or an operator's; 0: none). Never for berth's own CA.",
  }),
  keyPrefix: option({ env: 'BERTH_KEY_PREFIX', default: DEFAULT_KEY_PREFIX, schema: keyPrefixSchema, describe: 'Name inside the Redis key prefix.' }),
  upstreamTimeoutMs: option({ env: 'BERTH_UPSTREAM_TIMEOUT_MS', default: 60_000, schema: positiveMsSchema, describe: 'A proxy must start answering within this (504).' }),
  connectTimeoutMs: option({ env: 'BERTH_CONNECT_TIMEOUT_MS', default: 2000, schema: positiveMsSchema, describe: 'Connecting to a proxy may take this long before another is tried.' }),
  unsentRetryMs: option({
    env: 'BERTH_UNSENT_RETRY_MS',
    default: DEFAULT_RETRY_POLICY.budgetMs,
    schema: z.coerce.number().int().min(0).max(600_000),
    describe: 'A request no proxy took (connection refused: never sent) is tried again on any proxy, the same one included, with backoff, until this long after it came in (0: only once on each other proxy).',
  }),
  handshakeTimeoutMs: option({ env: 'BERTH_HANDSHAKE_TIMEOUT_MS', default: 10_000, schema: positiveMsSchema, describe: 'A TLS handshake must finish within this.' }),
  headersTimeoutMs: option({ env: 'BERTH_HEADERS_TIMEOUT_MS', default: 10_000, schema: positiveMsSchema, describe: 'A client must send its request headers within this (408).' }),
  requestTimeoutMs: option({ env: 'BERTH_REQUEST_TIMEOUT_MS', default: 120_000, schema: positiveMsSchema, describe: 'A client must send its whole request within this (408).' }),
  keepAliveTimeoutMs: option({ env: 'BERTH_KEEP_ALIVE_TIMEOUT_MS', default: 5000, schema: positiveMsSchema, describe: 'Idle client connections close after this.' }),
  maxHeaderBytes: option({ env: 'BERTH_MAX_HEADER_BYTES', default: 16 * 1024, schema: z.coerce.number().int().min(1024).max(1024 * 1024), describe: 'Largest request head (431 beyond).' }),
  tokenSha256: option({ env: 'BERTH_TOKEN_SHA256', default: [] as string[], schema: z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v), z.array(z.string().regex(/^[0-9a-f]{64}$/, 'must be sha256 digests in hex, comma-separated'))), describe: "sha256 (hex) of the admin API token(s): a request carrying one may read /_berth/* and /metrics through the public door (named tokens are checked in Redis). berth up sets it." }),
  adminPort: option({ env: 'BERTH_ADMIN_PORT', default: -1, schema: z.coerce.number().int().min(-1).max(65535), describe: 'Plain-HTTP listener for /_berth/balancer, /_berth/health and /metrics without a token (-1: none).' }),
  adminHost: option({ env: 'BERTH_ADMIN_HOST', default: '127.0.0.1', schema: z.string().min(1), describe: 'Address of the admin listener.' }),
  graceMs: option({ env: 'BERTH_GRACE_MS', default: 10_000, schema: positiveMsSchema, describe: 'How long a drain may take after SIGTERM.' }),
  workers: option({
    env: 'BERTH_BALANCER_WORKERS',
    default: DEFAULT_BALANCER_WORKERS,
    schema: z.coerce.number().int().min(0).max(256),
    describe: "Balancer processes sharing the listeners (a crash loses only that process's requests in flight); 0 means one per CPU and at least 2, 1 one process.",
  }),
  logLevel: option({ env: 'BERTH_LOG_LEVEL', default: 'info', schema: logLevelSchema, describe: 'Log level.' }),
  ...REDIS_OPTIONS,
};

export type BalancerConfig = ResolvedOptions<typeof BALANCER_OPTIONS>;

export interface BalancerDaemon {
  url: string;
  /** The plain-HTTP redirect listener, when one runs. */
  httpUrl: string | null;
  /** The admin listener (its reports without a token), when one runs. */
  adminUrl: string | null;
  /** The CA that signed the self-made certificate (null with certificate files). */
  caCertPath: string | null;
  pool: BackendPool;
  /** The route table, when it follows the registry (discover). */
  table: RouteTable | undefined;
  close(): Promise<void>;
}

/** Whether the balancer obtains certificates with ACME; throws on a configuration that cannot. */
export function acmeEnabled(config: BalancerConfig): boolean {
  const acmeOn = config.acmeDirectory !== '' || config.acmeEmail !== '';
  if (acmeOn && !config.discover) throw new Error('ACME (BERTH_ACME_DIRECTORY, BERTH_ACME_EMAIL) needs the registry: leave BERTH_BALANCER_DISCOVER on.');
  if (acmeOn && config.acmeKeyFile === '') throw new Error("ACME needs BERTH_ACME_KEY_FILE, the key that seals certificates' private keys in Redis (make one: openssl rand -hex 32 > FILE; chmod 600 FILE; give every balancer and registry the same).");
  return acmeOn;
}

/** A balancer's ACME issuer: one per balancer (its work is under per-domain leases in Redis, shared by every balancer). */
export function balancerAcmeIssuer(config: BalancerConfig, certificates: CertificateStore, domains: () => Iterable<string> | Promise<Iterable<string>>, logger: Logger): AcmeIssuer {
  return new AcmeIssuer({
    certificates,
    domains,
    directory: config.acmeDirectory,
    email: config.acmeEmail,
    caFile: config.acmeCaFile,
    renewFraction: config.acmeRenewAt,
    retryMs: config.acmeRetryMs,
    retryMaxMs: config.acmeRetryMaxMs,
    checkMs: config.acmeCheckMs,
    logger,
  });
}

/** The self-made certificate and its CA, unless certificate files are given (then null). */
export async function localCertificatesOf(config: BalancerConfig): Promise<LocalCertificates | null> {
  if (config.tlsCert !== '' || config.tlsKey !== '') return null;
  return ensureLocalCertificates({ dir: join(resolve(config.dataDir), 'tls'), names: [hostname(), ...config.tlsNames] });
}

/**
 * Starts the TLS balancer in front of the machines' proxies. `worker` is set in a worker of
 * `startWorkerPrimary`: the primary then runs the ACME issuer (once per balancer, not once per
 * worker) and has made the self-made certificate, and /metrics adds up every worker's numbers.
 */
export async function startBalancer(config: BalancerConfig, logger: Logger, overrides: { worker?: number } = {}): Promise<BalancerDaemon> {
  const worker = overrides.worker;
  let cert: string;
  let key: string;
  let caCertPath: string | null = null;
  let certPaths: { certPath: string; keyPath: string } | undefined;
  if (config.tlsCert !== '' || config.tlsKey !== '') {
    if (config.tlsCert === '' || config.tlsKey === '') throw new Error('Give both BERTH_TLS_CERT and BERTH_TLS_KEY, or neither (then berth makes its own).');
    certPaths = { certPath: resolve(config.tlsCert), keyPath: resolve(config.tlsKey) };
    cert = readFileSync(certPaths.certPath, 'utf8');
    key = readFileSync(certPaths.keyPath, 'utf8');
  } else {
    const made = (await localCertificatesOf(config))!;
    cert = made.certPem;
    key = made.keyPem;
    caCertPath = made.caCertPath;
  }

  const hostSpecs = parseHostCertificates(config.tlsHost);
  const hosts = await HostCertificates.load(hostSpecs, {
    reloaded: (name) => logger.info({ name }, `certificate files of ${name} changed: new connections use the new certificate`),
    failed: (name, err) => logger.error({ name, err: err.message }, `certificate files of ${name} changed but are not a valid pair: keeping the old one`),
  });

  const pool = new BackendPool();
  pool.setSource('static', config.backends.map((url) => ({ url, machine: null })));
  const metrics = new RequestMetrics();

  let redis: RedisClient | undefined;
  let sync: RouteSync | undefined;
  let table: RouteTable | undefined;
  let discoverTimer: NodeJS.Timeout | undefined;
  let certificates: CertificateStore | undefined;
  let domainCertificates: DomainCertificates | undefined;
  let issuer: AcmeIssuer | undefined;
  let certificateTimer: NodeJS.Timeout | undefined;
  const acmeOn = acmeEnabled(config);
  if (config.discover) {
    const settings = redisSettingsFrom(config);
    redis = connectRedis(settings, { name: 'berth-balancer' });
    const events = connectRedis(settings, { name: 'berth-balancer-events', blocking: true });
    await waitForReady(redis, 5000).catch(() => logger.warn('Redis is not reachable yet: using the static backends until it is'));
    const store = new RegistryStore(redis, { keyPrefix: config.keyPrefix });
    // No machine is "here" for the balancer: every instance is somewhere else.
    table = new RouteTable('');
    certificates = new CertificateStore(redis, { keyPrefix: config.keyPrefix, ...(config.acmeKeyFile === '' ? {} : { sealingKey: readSealingKey(config.acmeKeyFile) }) });
    const served = (domainCertificates = new DomainCertificates({ certificates, logger }));
    if (certificates.sealingKey !== undefined) {
      await served.reloadAll().catch(() => undefined);
      const reloadAll = () => {
        void served.reloadAll().catch(() => undefined);
        certificateTimer = setTimeout(reloadAll, 30_000);
        certificateTimer.unref();
      };
      certificateTimer = setTimeout(reloadAll, 30_000);
      certificateTimer.unref();
    }
    sync = new RouteSync({
      table,
      store,
      apps: new AppStore(redis, { keyPrefix: config.keyPrefix }),
      domains: new DomainStore(redis, { keyPrefix: config.keyPrefix }),
      events,
      logger,
      onEvent: (e) => {
        if (e.kind === 'certificate-changed' && e.domain !== undefined && certificates?.sealingKey !== undefined) void served.reload(e.domain);
      },
    });
    sync.start();
    if (acmeOn && worker === undefined) {
      const routes = table;
      issuer = balancerAcmeIssuer(config, certificates, () => [...routes.domains()].map((d) => d.domain), logger);
    }
    const started = sync;
    // Route-aware from the first request when Redis is there: wait (briefly) for the table.
    await new Promise<void>((resolveReady) => {
      const deadline = Date.now() + 5000;
      const poll = () => (started.ready || Date.now() > deadline ? resolveReady() : setTimeout(poll, 20));
      poll();
    });
    const discover = async () => {
      try {
        const now = await store.now();
        const live = (await store.listMachines()).filter((m) => typeof m.facts.proxy === 'string' && m.facts.proxy !== '' && now - m.heartbeatAt < 15_000);
        pool.setSource('registry', live.map((m) => ({ url: m.facts.proxy as string, machine: m.name })));
      } catch {
        // Redis away: keep the last known machines.
      }
      discoverTimer = setTimeout(() => void discover(), 2000);
      discoverTimer.unref();
    };
    await discover();
  }
  pool.startHealthChecks();

  const forwarder = new BalancerForwarder({
    pool,
    table,
    metrics,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    retry: { ...DEFAULT_RETRY_POLICY, budgetMs: config.unsentRetryMs },
  });
  // Tokens are checked by digest: the balancer holds none (berth up gives it the admin one's sha256).
  const tokenStore = redis === undefined ? undefined : new TokenStore(redis, registryKeys(config.keyPrefix));
  const access = new ReportAccess(config.tokenSha256, tokenStore && ((digest) => tokenStore.hasDigest(digest)));
  /** This process's numbers; a worker's are every worker's added up (set below). */
  let metricsText = async () => metrics.render();
  /** Answers the balancer's own reports; false for any other path. */
  const ownReport = (url: string, res: ServerResponse): boolean => {
    // Backends' health and waits are each worker's own: say whose these are.
    if (url === '/_berth/balancer') json(res, 200, { ...(worker === undefined ? {} : { worker, pid: process.pid }), ...status(pool, table), waitingToRetry: forwarder.waiting });
    else if (url === '/_berth/health') json(res, 200, { status: 'ok', backends: pool.all.filter((b) => pool.usable(b, Date.now())).length });
    else if (url === '/metrics') void metricsText().then((text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text));
    else return false;
    return true;
  };
  const dashboard = config.registryUrl === '' ? undefined : new URL(config.registryUrl);
  const hsts = config.hstsMaxAge > 0 ? `max-age=${config.hstsMaxAge}; includeSubDomains` : undefined;
  const domainHsts = config.domainHstsMaxAge > 0 ? `max-age=${config.domainHstsMaxAge}` : undefined;
  const { server, drain } = createClientServer(
    {
      ...tlsServerOptions({ cert, key }),
      // Files given per host first, then the domains' certificates from Redis, else the default one.
      ...(hosts.size > 0 || domainCertificates !== undefined
        ? {
            SNICallback: (servername: string, done: (err: Error | null, ctx?: SecureContext) => void) =>
              done(null, hosts.contextFor(servername) ?? domainCertificates?.contextFor(requestHostName(servername))),
          }
        : {}),
    },
    {
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      maxHeaderBytes: config.maxHeaderBytes,
    },
    {
      request: (req, res) => {
        if (hsts) res.setHeader('strict-transport-security', hsts);
        else if (domainHsts !== undefined && domainCertificates !== undefined && table?.domainOf(requestHostOf(req)) !== undefined && domainCertificates.trusted(requestHostName(requestHostOf(req)))) {
          res.setHeader('strict-transport-security', domainHsts);
        }
        if (!hasOneHost(req)) return answerError(res, req.headers.accept, 'bad_host');
        // Its own paths by the parsed path: "/_berth/balancer?x" is the balancer's too.
        const target = parseRequestTarget(req.url);
        const url = 'path' in target ? target.path : '';
        if (dashboard !== undefined && isDashboardPath(url)) return forwardToRegistry(dashboard, req, res);
        if (!isInternalPath(url)) {
          if (!ownReport(url, res)) forwarder.handle(req, res);
          return;
        }
        void access.allows(req.headers).then((allowed) => {
          if (!allowed) {
            res.setHeader('www-authenticate', 'Bearer realm="berth"');
            return answerError(res, req.headers.accept, 'unauthorized', `${url} is internal: send a berth token (Authorization: Bearer …), or read it on the balancer's admin listener (BERTH_ADMIN_PORT).`);
          }
          if (!ownReport(url, res)) forwarder.handle(req, res);
        });
      },
      upgrade: (req, socket, head) => (hasOneHost(req) ? forwarder.handleUpgrade(req, socket, head) : refuseUpgrade(socket, 'bad_host')),
    },
    // A domain's RSA certificate: to clients that cannot take its ECDSA one, or when it has none (a --tls-host file comes first).
    domainCertificates === undefined
      ? undefined
      : {
          SNICallback: (servername, done) => done(null, domainCertificates.rsaContextFor(requestHostName(servername))),
          active: () => domainCertificates.servesRsa,
          wantsRsa: (hello) => hello.servername !== undefined && hosts.contextFor(hello.servername) === undefined && domainCertificates.wantsRsa(requestHostName(hello.servername), hello.acceptsEcdsa),
        },
  );
  await listen(server, config.httpsPort, config.host);
  const address = server.address() as AddressInfo;
  const shownHost = address.address === '0.0.0.0' || address.address === '::' ? 'localhost' : address.address;
  const url = `https://${shownHost}:${address.port}`;

  const watcher = certPaths
    ? watchCertificateFiles({
        ...certPaths,
        onChange: (options) => {
          server.setSecureContext(options);
          logger.info('certificate files changed: new connections use the new certificate');
        },
        onError: (err) => logger.error({ err: err instanceof Error ? err.message : String(err) }, 'certificate files changed but are not a valid pair: keeping the old one'),
      })
    : undefined;

  let redirect: HttpServer | undefined;
  let httpUrl: string | null = null;
  if (config.httpPort >= 0) {
    // The target is configured, never the client's Host: a forged Host must not turn the
    // platform's own address into a redirect to anywhere.
    const origin = config.publicUrl !== '' ? new URL(config.publicUrl).origin : `https://${config.tlsNames[0] ?? hostname()}${address.port === 443 ? '' : `:${address.port}`}`;
    const httpsSuffix = address.port === 443 ? '' : `:${address.port}`;
    redirect = createHttpServer({ headersTimeout: config.headersTimeoutMs, requestTimeout: 10_000 }, (req, res) => {
      const target = (req.url ?? '/').startsWith('/') ? (req.url ?? '/') : '/';
      if (certificates !== undefined && target.startsWith(CHALLENGE_PREFIX)) return answerChallenge(certificates, target.slice(CHALLENGE_PREFIX.length), res);
      const domain = table?.domainOf(requestHostOf(req));
      if (domain !== undefined) {
        const name = requestHostName(requestHostOf(req));
        // An app's domain with a trusted certificate goes to HTTPS on its own name; until it has one, it is served as asked.
        if (domainCertificates?.trusted(name)) return void res.writeHead(308, { location: `https://${name}${httpsSuffix}${target}`, 'content-length': '0' }).end();
        if (hasOneHost(req)) return forwarder.handle(req, res, 'http');
      }
      res.writeHead(308, { location: `${origin}${target}`, 'content-length': '0' }).end();
    });
    await listen(redirect, config.httpPort, config.host);
    httpUrl = `http://${shownHost}:${(redirect.address() as AddressInfo).port}`;
  }
  let admin: HttpServer | undefined;
  let adminUrl: string | null = null;
  if (config.adminPort >= 0) {
    // Its own reports without a token, on an address only operators reach (loopback by default).
    admin = createHttpServer({ headersTimeout: config.headersTimeoutMs, requestTimeout: 10_000 }, (req, res) => {
      const target = parseRequestTarget(req.url);
      if (!ownReport('path' in target ? target.path : '', res)) answerError(res, req.headers.accept, 'not_found', 'The admin listener answers /_berth/balancer, /_berth/health and /metrics.');
    });
    await listen(admin, config.adminPort, config.adminHost);
    const a = admin.address() as AddressInfo;
    adminUrl = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }
  logger.info({ url, httpUrl, adminUrl, backends: pool.all.length, caCertPath, acme: acmeOn ? config.acmeDirectory || 'letsencrypt' : false }, `balancer listening on ${url}`);
  if (issuer !== undefined) {
    if (httpUrl === null) logger.warn('ACME is on but no plain-HTTP listener runs (BERTH_HTTP_PORT): HTTP-01 challenges can only be answered by other balancers');
    issuer.start();
  }

  const close = idempotentClose(async () => {
    await issuer?.close();
    clearTimeout(certificateTimer);
    watcher?.close();
    hosts.close();
    redirect?.close();
    redirect?.closeAllConnections();
    admin?.close();
    admin?.closeAllConnections();
    await drain(config.graceMs);
    forwarder.close();
    pool.close();
    clearTimeout(discoverTimer);
    await sync?.close();
    if (redis) await closeRedis(redis);
  });
  if (worker !== undefined) {
    const { gather } = joinWorkerPrimary({ metrics: () => metrics.snapshot() }, { close }, logger, config.graceMs);
    metricsText = () => totalMetricsText(metrics, () => gather('metrics'));
  }
  return { url, httpUrl, adminUrl, caCertPath, pool, table, close };
}

function status(pool: BackendPool, table: RouteTable | undefined) {
  const now = Date.now();
  return {
    routes: table === undefined ? null : Object.fromEntries([...table.routes()].map((r) => [r.prefix, Object.fromEntries([...r.remote].map(([m, list]) => [m, list.length]))])),
    backends: pool.all.map((b) => ({
      url: b.url,
      machine: b.machine,
      sources: [...b.sources],
      healthy: b.healthy,
      ejectedForMs: pool.ejectedForMs(b, now),
      inFlight: pool.health.of(b).inFlight,
      requests: b.requests,
      errors: b.errors,
    })),
  };
}

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

/** Answers an ACME HTTP-01 challenge from Redis: whichever balancer obtained the order, any balancer can answer. */
function answerChallenge(certificates: CertificateStore, token: string, res: ServerResponse): void {
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(token)) return void res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '0' }).end();
  certificates.challenge(token).then(
    (answer) => {
      if (answer === null) res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '0' }).end();
      else res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(answer);
    },
    () => res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('Redis is unreachable: try again shortly.\n'),
  );
}

/** The host a client asked for: Host on HTTP/1.1, :authority on HTTP/2. */
function requestHostOf(req: { headers: Record<string, string | string[] | undefined> }): string | undefined {
  const host = req.headers.host ?? req.headers[':authority'];
  return typeof host === 'string' ? host : undefined;
}

function json(res: ServerResponse, statusCode: number, body: unknown): void {
  res.writeHead(statusCode, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
}

function listen(server: HttpServer | Http2SecureServer, port: number, host: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`Port ${port} on ${host} is in use: stop what uses it or choose another port.`) : err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolvePromise();
    });
  });
}
