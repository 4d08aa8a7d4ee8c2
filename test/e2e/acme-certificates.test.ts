// Certificates for apps' own domains from a real ACME CA (Debian's pebble, with pebble-challtestsrv as its DNS): two domains on two apps served over HTTPS with pebble's certificates, plain HTTP redirected, HSTS, a second balancer serving what the first obtained, a failing challenge reported with the CA's words and retried with a doubling wait, a renewal taken up by another balancer and hot-swapped, and operators' certificates taking precedence, bad ones refused.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BALANCER_OPTIONS, startBalancer, type BalancerDaemon } from '../../balancer/balancer-daemon.js';
import { ensureLocalCertificates } from '../../balancer/local-certificates.js';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { newSealingKeyText } from '../../registry/store/index.js';
import { runCli } from '../helpers/cli-process.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { hasPebble, startPebble, type Pebble } from '../helpers/pebble.js';
import { createRoutedApp, runInstance, startAppServer, startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

if (!hasPebble) console.warn('pebble is not installed: the ACME tests are skipped (scripts/setup as root installs it: apt-get install pebble)');

let dir: string;
let keyFile: string;
let redis: TestRedis;
let registry: RegistryFixture;
let proxy: ProxyDaemon;
let heartbeat: NodeJS.Timeout;
const balancers: BalancerDaemon[] = [];
const processes: DaemonProcess[] = [];
const closers: (() => Promise<void>)[] = [];
let b1: BalancerDaemon;
let httpPort: number;
let directory: string;
let pebble: Pebble | undefined;
let pebbleRoot: string;

/** GET over HTTPS to 127.0.0.1:port with `servername` as SNI and Host, trusting `ca` only. */
function httpsGet(port: number, servername: string, path: string, ca: string, agent?: Agent): Promise<{ status: number; body: string; headers: Record<string, unknown>; cert: PeerCertificate; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, servername, headers: { host: servername }, ca, agent: agent ?? false }, (res) => {
      let body = '';
      const cert = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers, cert, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

function httpGet(port: number, host: string, path: string): Promise<{ status: number; location?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, ...(res.headers.location ? { location: res.headers.location } : {}), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The serial of the certificate a balancer serves for `servername`. */
function servedSerial(b: BalancerDaemon | number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: typeof b === 'number' ? b : Number(new URL(b.url).port), servername, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.end();
    });
    s.on('error', reject);
  });
}

async function balancer(overrides: Record<string, unknown>): Promise<BalancerDaemon> {
  const dataDir = join(dir, `balancer-${balancers.length}`);
  const b = await startBalancer(
    resolveOptions(
      BALANCER_OPTIONS,
      { host: '127.0.0.1', httpsPort: 0, httpPort: -1, keyPrefix: registry.prefix, dataDir, acmeKeyFile: keyFile, tokenSha256: createHash('sha256').update(registry.token).digest('hex'), ...overrides },
      { REDIS_URL: redis.url },
    ),
    silentLogger(),
  );
  balancers.push(b);
  return b;
}

const acme = (extra: Record<string, unknown> = {}) => ({ acmeDirectory: directory, acmeEmail: 'ops@acme.test', acmeCaFile: pebble!.caFile, acmeCheckMs: 200, acmeRetryMs: 1000, ...extra });

async function app(name: string): Promise<void> {
  await createRoutedApp(registry.daemon.apps, name, `/${name}`);
  const s = await startAppServer(name);
  closers.push(s.close);
  await runInstance(registry.daemon.store, name, `/${name}`, 'm1', s.port);
}

async function certificate(domain: string) {
  return (await registry.client.listCertificates()).find((c) => c.domain === domain);
}

/** A self-signed certificate for `names`, valid between the two dates. */
function selfSigned(names: string[], from: Date, to: Date): { cert: string; key: string } {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '0badc0de';
  cert.validity.notBefore = from;
  cert.validity.notAfter = to;
  cert.setSubject([{ name: 'commonName', value: names[0]! }]);
  cert.setIssuer([{ name: 'commonName', value: 'operator test CA' }]);
  cert.setExtensions([{ name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

beforeAll(async () => {
  if (!hasPebble) return;
  dir = traversableTempDir('berth-acme-');
  keyFile = join(dir, 'acme-key');
  writeFileSync(keyFile, newSealingKeyText(), { mode: 0o600 });
  redis = await startRedis();
  registry = await startTestRegistry(redis, { acmeKeyFile: keyFile });
  proxy = await startTestProxy(redis, registry.prefix, 'm1');
  await registry.daemon.store.heartbeat('m1', { proxy: proxy.url });
  heartbeat = setInterval(() => void registry.daemon.store.heartbeat('m1', { proxy: proxy.url }).catch(() => undefined), 2000);
  await app('shop');
  await app('blog');
  await app('api');

  httpPort = await getPort();
  // Every name resolves to 127.0.0.1, where the first balancer's plain-HTTP listener is.
  pebble = await startPebble({ dir, httpPort, env: { PEBBLE_VA_ALWAYS_VALID: '0', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' } });
  directory = pebble.directory;
  pebbleRoot = await pebble.root();

  // Kept-alive connections outlast a renewal on a busy machine (the test holds one open across it).
  b1 = await balancer({ httpPort, keepAliveTimeoutMs: 120_000, ...acme() });
  await waitFor(() => b1.pool.all.length === 1, { what: 'the balancer to find the machine' });
}, 60_000);

afterAll(async () => {
  clearInterval(heartbeat);
  for (const b of balancers) await b.close().catch(() => undefined);
  for (const p of processes) {
    p.kill('SIGKILL');
    await p.exited;
  }
  await pebble?.stop();
  await proxy?.close();
  for (const c of closers) await c();
  await registry?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasPebble)('ACME certificates from pebble', () => {
  it('obtains a certificate for each of two domains on two apps and serves them over HTTPS', async () => {
    await registry.client.addDomain('shop', 'shop.acme.test');
    await registry.client.addDomain('blog', 'blog.acme.test');
    await waitFor(async () => (await registry.client.listDomains()).filter((d) => d.certificate.state === 'issued').length === 2, { what: 'both certificates issued', deadlineMs: 60_000 });
    // Issued in Redis first; every balancer serves it once its event arrived.
    await waitFor(async () => (await servedSerial(b1, 'shop.acme.test')) === (await certificate('shop.acme.test'))?.serial?.toUpperCase() && (await servedSerial(b1, 'blog.acme.test')) === (await certificate('blog.acme.test'))?.serial?.toUpperCase(), { what: 'the balancer to serve both' });
    for (const [domain, name] of [['shop.acme.test', 'shop'], ['blog.acme.test', 'blog']] as const) {
      // Trusting pebble's root only: a certificate it did not issue for this name would fail here.
      const res = await httpsGet(Number(new URL(b1.url).port), domain, '/', pebbleRoot);
      expect(res.status).toBe(200);
      expect((JSON.parse(res.body) as { name: string }).name).toBe(name);
      expect(res.cert.subjectaltname).toContain(`DNS:${domain}`);
      expect(res.headers['strict-transport-security']).toBe('max-age=31536000');
    }
    const listed = await registry.client.listDomains('shop');
    expect(listed[0]!.certificate).toMatchObject({ state: 'issued', source: 'acme' });
    expect(listed[0]!.certificate.issuer).toMatch(/Pebble/i);
    // The shared host keeps berth's own certificate, and no HSTS.
    const shared = await httpsGet(Number(new URL(b1.url).port), 'localhost', '/api/x', readFileSync(b1.caCertPath!, 'utf8'));
    expect(shared.status).toBe(200);
    expect(shared.headers['strict-transport-security']).toBeUndefined();
  });

  it('redirects plain HTTP on a domain with its certificate to HTTPS, but not the challenge path', async () => {
    const res = await httpGet(httpPort, 'shop.acme.test', '/cart?x=1');
    expect(res.status).toBe(308);
    expect(res.location).toBe(`https://shop.acme.test:${new URL(b1.url).port}/cart?x=1`);
    expect((await httpGet(httpPort, 'shop.acme.test', '/.well-known/acme-challenge/unknown-token')).status).toBe(404);
  });

  it('serves the certificate from a second balancer, a real `berth balancer` process without ACME', async () => {
    const port = await getPort();
    const b2 = startDaemon(['balancer'], {
      REDIS_URL: redis.url,
      BERTH_KEY_PREFIX: registry.prefix,
      BERTH_ACME_KEY_FILE: keyFile,
      BERTH_BALANCER_HOST: '127.0.0.1',
      BERTH_HTTPS_PORT: String(port),
      BERTH_DATA_DIR: join(dir, 'balancer-process'),
    });
    processes.push(b2);
    await waitFor(() => b2.logLines().some((l) => typeof l.msg === 'string' && l.msg.startsWith('balancer listening')), { what: `berth balancer to listen\n${b2.output()}`, deadlineMs: 20_000 });
    const serial = (await certificate('shop.acme.test'))!.serial!;
    expect((await servedSerial(port, 'shop.acme.test')).toLowerCase()).toBe(serial.toLowerCase());
    await waitFor(async () => {
      const res = await httpsGet(port, 'blog.acme.test', '/', pebbleRoot);
      return (JSON.parse(res.body) as { name?: string }).name === 'blog';
    }, { what: 'the second balancer to reach the blog over its pebble certificate' });
    b2.kill();
    expect(await b2.exited).toBe(0);
  });

  it("reports a failing challenge with the CA's error and retries it after a doubling wait", async () => {
    // The CA finds this name on an address where no balancer listens.
    await pebble!.resolve('fail.acme.test', ['127.0.0.2']);
    await registry.client.addDomain('api', 'fail.acme.test');
    const second = await waitFor(async () => {
      const c = await certificate('fail.acme.test');
      return c !== undefined && c.failures === 2 ? c : undefined;
    }, { what: 'two failed attempts', deadlineMs: 30_000 });
    expect(second.state).toBe('failed');
    expect(second.error).toMatch(/127\.0\.0\.2|connect|refused/i);
    const third = await waitFor(async () => {
      const c = await certificate('fail.acme.test');
      return c !== undefined && c.failures === 3 ? c : undefined;
    }, { what: 'a third failed attempt', deadlineMs: 30_000 });
    // Retried 1 s after the first failure, 2 s after the second, 4 s after the third: doubling.
    expect(third.retryAt! - second.retryAt!).toBeGreaterThanOrEqual(4000);
    const domain = (await registry.client.listDomains('api')).find((d) => d.domain === 'fail.acme.test')!;
    expect(domain.certificate.state).toBe('failed');
    const env = { BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token, HOME: dir };
    const list = await runCli(['domains:list'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/fail\.acme\.test\s+api\s+\/\s+failed: /);
    expect(list.stdout).toMatch(/shop\.acme\.test\s+shop\s+\/\s+issued until 20\d\d-/);
    const certs = await runCli(['certs'], env);
    expect(certs.code, certs.stderr).toBe(0);
    expect(certs.stdout).toMatch(/shop\.acme\.test\s+acme\s+issued\s+Pebble/);
    await registry.client.removeDomain('api', 'fail.acme.test');
  });

  it('renews under the lease of another balancer, and every balancer swaps to the new certificate on open connections', async () => {
    const before = (await certificate('shop.acme.test'))!;
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1, ca: pebbleRoot });
    const first = await httpsGet(Number(new URL(b1.url).port), 'shop.acme.test', '/', pebbleRoot, keepAlive);
    expect(first.cert.serialNumber.toLowerCase()).toBe(before.serial!.toLowerCase());
    // A balancer that renews at once (a renewal threshold this test sets); the first one answers the challenge.
    const b3 = await balancer(acme({ acmeRenewAt: 1e-9 }));
    const renewed = await waitFor(async () => {
      const c = await certificate('shop.acme.test');
      return c?.serial !== undefined && c.serial !== before.serial ? c : undefined;
    }, { what: 'a renewed certificate', deadlineMs: 30_000 });
    await b3.close();
    expect(renewed.state).toBe('issued');
    // The connection opened before the renewal still serves...
    const again = await httpsGet(Number(new URL(b1.url).port), 'shop.acme.test', '/', pebbleRoot, keepAlive);
    expect(again.status).toBe(200);
    expect(again.reused).toBe(true);
    keepAlive.destroy();
    // ...and new connections get the new certificate.
    await waitFor(async () => (await servedSerial(b1, 'shop.acme.test')).toLowerCase() !== before.serial!.toLowerCase(), { what: 'the first balancer to serve the renewed certificate' });
  });

  it("serves an operator's certificate before ACME's, and refuses bad ones with a clear 400", async () => {
    const ops = await ensureLocalCertificates({ dir: join(dir, 'ops'), names: ['blog.acme.test'] });
    const other = await ensureLocalCertificates({ dir: join(dir, 'other'), names: [] });
    const expired = selfSigned(['blog.acme.test'], new Date(Date.now() - 3 * 86_400_000), new Date(Date.now() - 86_400_000));
    const bad = async (pem: { cert: string; key: string }, pattern: RegExp) => {
      const err = (await registry.client.addCertificate('blog.acme.test', pem).catch((e: unknown) => e)) as { status: number; code: string; message: string };
      expect(err.code).toBe('invalid_certificate');
      expect(err.status).toBe(400);
      expect(err.message).toMatch(pattern);
    };
    await bad({ cert: ops.certPem, key: other.keyPem }, /does not match/);
    await bad(expired, /expired/);
    await bad({ cert: other.certPem, key: other.keyPem }, /does not cover blog\.acme\.test/);
    await bad({ cert: 'nonsense', key: other.keyPem }, /not a PEM certificate/);
    const added = await registry.client.addCertificate('blog.acme.test', { cert: ops.certPem, key: ops.keyPem });
    expect(added).toMatchObject({ domain: 'blog.acme.test', source: 'operator', state: 'issued' });
    const res = await waitFor(async () => {
      const r = await httpsGet(Number(new URL(b1.url).port), 'blog.acme.test', '/', ops.caCertPem).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    }, { what: "the operator's certificate served" });
    expect((JSON.parse(res.body) as { name: string }).name).toBe('blog');
    // ACME leaves it alone; removing it gives the domain back to ACME.
    await registry.client.removeCertificate('blog.acme.test');
    await waitFor(async () => (await certificate('blog.acme.test'))?.source === 'acme', { what: 'ACME to obtain the certificate again', deadlineMs: 30_000 });
  });
});
