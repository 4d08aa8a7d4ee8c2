import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { z } from 'zod';
import { spawn } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { DEFAULT_HTTPS_PORT } from '../../balancer/index.js';
import { chooseHosterDir } from '../../hoster/index.js';
import { DEFAULT_PROXY_PORT } from '../../proxy/index.js';
import { DEFAULT_REGISTRY_PORT } from '../../registry/index.js';
import { newSealingKeyText } from '../../registry/store/index.js';
import { credentialsPath, readCredentials, writeCredentials } from '../credentials.js';
import { DaemonSupervisor } from '../daemon-supervisor.js';
import { localRedisCommand } from '../local-redis.js';

export const DEFAULT_DATA_DIR = '.berth';
export const DEFAULT_LOCAL_REDIS_PORT = 7079;

const upFlags = z.object({
  dataDir: z.string().min(1).default(DEFAULT_DATA_DIR),
  apiPort: z.coerce.number().int().min(1).max(65535).default(DEFAULT_REGISTRY_PORT),
  redisPort: z.coerce.number().int().min(1).max(65535).default(DEFAULT_LOCAL_REDIS_PORT),
  proxyPort: z.coerce.number().int().min(1).max(65535).default(DEFAULT_PROXY_PORT),
  httpsPort: z.coerce.number().int().min(1).max(65535).default(DEFAULT_HTTPS_PORT),
  httpPort: z.coerce.number().int().min(1).max(65535).optional(),
  demo: z.boolean().default(false),
  force: z.boolean().default(false),
});

/** Secrets `berth up` makes once and keeps in its data directory, so a rerun resumes. */
const secretsSchema = z.object({ token: z.string().min(16), redisPassword: z.string().min(16) });

export function upCommand(): Command {
  return new Command('up')
    .description('Run the whole platform on this machine: a local Redis, the registry, a hoster, a proxy, the HTTPS balancer and the scaler. Ctrl-C stops it; running it again resumes with the same apps.')
    .option('--data-dir <dir>', `where Redis data and secrets live (env BERTH_DATA_DIR, default ./${DEFAULT_DATA_DIR})`)
    .option('--api-port <port>', `port of the REST API (env BERTH_REGISTRY_PORT, default ${DEFAULT_REGISTRY_PORT})`)
    .option('--proxy-port <port>', `port of this machine's proxy (env BERTH_PROXY_PORT, default ${DEFAULT_PROXY_PORT})`)
    .option('--https-port <port>', `HTTPS port of the balancer (env BERTH_HTTPS_PORT, default ${DEFAULT_HTTPS_PORT})`)
    .option('--http-port <port>', 'plain-HTTP port that redirects to HTTPS (env BERTH_HTTP_PORT; default none)')
    .option('--demo', 'also publish examples/hello on /hello and print its URL')
    .option('--force', "take over the CLI's credentials even when they point at another platform that is running")
    .option('--redis-port <port>', `port of the local Redis, on 127.0.0.1 (default ${DEFAULT_LOCAL_REDIS_PORT}); not used when REDIS_URL is set`)
    .action(async (raw: Record<string, unknown>) => {
      const flags = upFlags.parse({
        dataDir: raw.dataDir ?? process.env.BERTH_DATA_DIR,
        apiPort: raw.apiPort ?? process.env.BERTH_REGISTRY_PORT,
        redisPort: raw.redisPort,
        proxyPort: raw.proxyPort ?? process.env.BERTH_PROXY_PORT,
        httpsPort: raw.httpsPort ?? process.env.BERTH_HTTPS_PORT,
        httpPort: raw.httpPort ?? process.env.BERTH_HTTP_PORT,
        demo: raw.demo === true,
        force: raw.force === true,
      });
      await runUp(flags);
    });
}

async function runUp(flags: z.output<typeof upFlags>): Promise<void> {
  const dataDir = resolve(flags.dataDir);
  const say = (line: string) => process.stdout.write(`berth up: ${line}\n`);
  // Refused now rather than after every deploy has failed: as root, apps run as their own
  // users and must reach the hoster's tree (it moves out of a data dir they cannot traverse).
  const where = chooseHosterDir(dataDir, { explicit: process.env.BERTH_HOSTER_DIR ?? '', appsRunAsOthers: process.getuid?.() === 0 });
  if (where.moved) say(where.moved);
  // Traversable (not readable) by others: apps reach their files under it when it holds the hoster's tree.
  mkdirSync(dataDir, { recursive: true, mode: 0o711 });
  chmodSync(dataDir, 0o711);
  const secrets = loadOrMakeSecrets(join(dataDir, 'secrets.json'));
  const credentials = credentialsPath(process.env);
  const apiUrl = `http://127.0.0.1:${flags.apiPort}`;
  // Two platforms on one machine must not cross: the CLI would silently talk to the other one.
  const theirs = readCredentials(credentials);
  if (!flags.force && theirs !== undefined && (theirs.url !== apiUrl || theirs.token !== secrets.token) && (await answers(theirs.url))) {
    throw new Error(
      `The CLI's credentials (${credentials}) point at another berth that is running (${theirs.url}). Stop that one, ` +
        `give this one its own credentials (BERTH_HOME=<dir> berth up …), or take them over with berth up --force.`,
    );
  }
  const supervisor = new DaemonSupervisor();
  supervisor.on('started', (name, pid) => say(`${name} started (pid ${pid})`));
  supervisor.on('exited', (name, code, signal, restartInMs) => {
    if (restartInMs !== null) say(`${name} exited (${signal ?? `code ${code}`}): restarting in ${restartInMs} ms`);
  });

  let redisUrl = process.env.REDIS_URL;
  if (redisUrl === undefined || redisUrl === '') {
    await assertPortFree(flags.redisPort, 'the local Redis (--redis-port)');
    redisUrl = `redis://:${secrets.redisPassword}@127.0.0.1:${flags.redisPort}`;
    const redisDir = join(dataDir, 'redis');
    mkdirSync(redisDir, { recursive: true, mode: 0o700 });
    supervisor.start({ name: 'redis', ...localRedisCommand({ dir: redisDir, port: flags.redisPort, password: secrets.redisPassword }) });
  }
  await assertPortFree(flags.apiPort, 'the registry API (--api-port)');
  await assertPortFree(flags.proxyPort, 'the proxy (--proxy-port)');
  await assertPortFree(flags.httpsPort, 'the HTTPS balancer (--https-port)');
  if (flags.httpPort !== undefined) await assertPortFree(flags.httpPort, 'the HTTP redirect (--http-port)');

  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  // Secrets reach only the daemons that need them, and through 0600 files rather than the
  // environment, which every process a daemon starts would inherit: all of them talk to
  // Redis; only the registry checks the API token.
  const redisUrlFile = secretFile(join(dataDir, 'redis-url'), redisUrl);
  const tokenFile = secretFile(join(dataDir, 'api-token'), secrets.token);
  // Seals certificates' private keys in Redis: only the registry and the balancer read it. Made once, kept (a new one could not open the keys sealed before).
  const acmeKeyFile = process.env.BERTH_ACME_KEY_FILE ?? keptSecretFile(join(dataDir, 'acme-key'), newSealingKeyText);
  const { REDIS_URL: _url, BERTH_TOKEN: _token, ...inherited } = process.env;
  const daemonEnv: NodeJS.ProcessEnv = {
    ...inherited,
    // Each daemon stops by itself if this supervisor dies (even by SIGKILL).
    BERTH_SUPERVISED: '1',
    REDIS_URL_FILE: redisUrlFile,
    BERTH_REGISTRY_PORT: String(flags.apiPort),
    BERTH_PROXY_PORT: String(flags.proxyPort),
    BERTH_PROXY_HOST: process.env.BERTH_PROXY_HOST ?? '127.0.0.1',
    // One machine: the hoster tells the registry where this machine's proxy is.
    BERTH_PROXY_URL: `http://127.0.0.1:${flags.proxyPort}`,
    BERTH_HTTPS_PORT: String(flags.httpsPort),
    BERTH_HTTP_PORT: flags.httpPort === undefined ? '-1' : String(flags.httpPort),
    // Loopback unless asked: one machine's platform is not public until its owner says so.
    BERTH_BALANCER_HOST: process.env.BERTH_BALANCER_HOST ?? '127.0.0.1',
    BERTH_DATA_DIR: dataDir,
    BERTH_PUBLIC_URL: process.env.BERTH_PUBLIC_URL ?? `https://localhost:${flags.httpsPort}`,
  };
  supervisor.start({
    name: 'registry',
    command: process.execPath,
    args: [main, 'registry'],
    // The git remotes' repositories (a cache of what pushes sent) live with the rest of the data.
    env: { ...daemonEnv, BERTH_TOKEN_FILE: tokenFile, BERTH_GIT_DIR: process.env.BERTH_GIT_DIR ?? join(dataDir, 'git'), BERTH_ADDON_BACKUP_DIR: process.env.BERTH_ADDON_BACKUP_DIR ?? join(dataDir, 'addon-backups'), BERTH_ACME_KEY_FILE: acmeKeyFile },
  });
  supervisor.start({ name: 'proxy', command: process.execPath, args: [main, 'proxy'], env: daemonEnv });
  // The balancer holds no token: it checks one by its digest before showing internal reports.
  supervisor.start({ name: 'balancer', command: process.execPath, args: [main, 'balancer'], env: { ...daemonEnv, BERTH_TOKEN_SHA256: createHash('sha256').update(secrets.token).digest('hex'), BERTH_BALANCER_REGISTRY_URL: apiUrl, BERTH_ACME_KEY_FILE: acmeKeyFile } });
  // Acts only on apps given a policy (berth scale NAME --min --max).
  supervisor.start({ name: 'scaler', command: process.execPath, args: [main, 'scaler'], env: daemonEnv });
  supervisor.start({
    name: 'hoster',
    command: process.execPath,
    args: [main, 'hoster', '--data-dir', dataDir],
    env: daemonEnv,
    // Stopping the hoster stops its apps first (each within its grace).
    stopGraceMs: 30_000,
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      say(`second ${signal}: killing every daemon and exiting now`);
      supervisor.killNow();
      process.exit(1);
    }
    stopping = true;
    say(`${signal}: stopping every daemon (send it again to exit at once)`);
    void supervisor.stop().then(() => {
      say('stopped');
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  try {
    await waitForHealthy(apiUrl, 30_000);
  } catch (err) {
    await supervisor.stop();
    throw err;
  }
  const httpsUrl = `https://localhost:${flags.httpsPort}`;
  try {
    await waitForHttps(flags.httpsPort, 30_000);
  } catch (err) {
    await supervisor.stop();
    throw err;
  }
  writeCredentials(credentials, { url: apiUrl, token: secrets.token });
  const ca = join(dataDir, 'tls', 'ca.pem');
  say(`HTTPS: ${httpsUrl}/<app path>   (trust the CA once: ${ca})`);
  // Never the whole token: this output ends up in logs that others (apps) may read.
  say(`registry API: ${apiUrl}   token: ${secrets.token.slice(0, 6)}… (the whole token is in the CLI's credentials: ${credentials})`);
  say(`dashboard: ${httpsUrl}/dashboard/   (sign in with the token)`);
  say(`publish an app: bin/berth publish examples/hello --path /hello   then: curl --cacert ${ca} ${httpsUrl}/hello`);
  if (flags.demo) {
    const demo = fileURLToPath(new URL('../../../examples/hello', import.meta.url));
    say(`--demo: publishing ${demo} on /hello`);
    const code = await new Promise<number>((resolveCode) => {
      const child = spawn(process.execPath, [main, 'publish', demo, '--name', 'hello', '--path', '/hello', '--instances', '2'], {
        env: { ...process.env, BERTH_URL: apiUrl, BERTH_TOKEN: secrets.token },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.once('exit', (c) => resolveCode(c ?? 1));
    });
    say(code === 0 ? `demo: curl --cacert ${ca} ${httpsUrl}/hello` : 'the demo did not publish: see the lines above');
  }
  say('running: press Ctrl-C to stop');
}

function loadOrMakeSecrets(path: string): z.output<typeof secretsSchema> {
  if (existsSync(path)) {
    const parsed = secretsSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (parsed.success) return parsed.data;
    throw new Error(`${path} is damaged: delete it to make new secrets (the local Redis data must then be deleted too).`);
  }
  const secrets = { token: randomBytes(24).toString('hex'), redisPassword: randomBytes(24).toString('hex') };
  writeFileSync(path, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return secrets;
}

/** True when a berth API answers its health check at `url` within a second. */
async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url.replace(/\/+$/, '')}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

/** A 0600 file made once with `make()`'s text and kept after; returns its path. */
function keptSecretFile(path: string, make: () => string): string {
  if (!existsSync(path)) writeFileSync(path, make(), { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return path;
}

/** Writes a secret to a 0600 file (again on every start, so that it follows the settings); returns its path. */
function secretFile(path: string, value: string): string {
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

function assertPortFree(port: number, what: string): Promise<void> {
  return new Promise((resolveFree, reject) => {
    const probe = createServer();
    probe.once('error', () =>
      reject(new Error(`Port ${port} for ${what} is in use: is berth up already running? Stop it, or choose another port.`)),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolveFree()));
  });
}

/** Resolves once the balancer completes TLS handshakes on `port`. */
async function waitForHttps(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolveOk) => {
      // Only readiness is asked here: the certificate is checked by every real client.
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/_berth/health', rejectUnauthorized: false, timeout: 1000 }, (res) => {
        res.resume();
        resolveOk(res.statusCode === 200);
      });
      req.on('error', () => resolveOk(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`The balancer did not answer on port ${port} within ${timeoutMs / 1000} s: see the lines above for why.`);
}

async function waitForHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`The registry did not become healthy within ${timeoutMs / 1000} s: see the lines above for why.`);
}
