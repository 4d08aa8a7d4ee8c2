// Operators' RSA and ECDSA certificates on a real balancer: berth certs lists each, a domain with only an RSA one serves it to every client (berth's own ECDSA default does not shadow it), a domain with one of each serves RSA to a client limited to RSA signatures and ECDSA to one limited to ECDSA (TLS 1.2 and 1.3), the shared host keeps berth's own, and pairs that cannot serve (key of another certificate, expired, another name) are refused; certificates made with openssl.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectH2 } from 'node:http2';
import { request } from 'node:https';
import { join } from 'node:path';
import type { SecureVersion, TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BALANCER_OPTIONS, startBalancer, type BalancerDaemon } from '../../balancer/balancer-daemon.js';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { newSealingKeyText } from '../../registry/store/index.js';
import { runCli } from '../helpers/cli-process.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { opensslCertificate, type PemPair } from '../helpers/openssl-certificates.js';
import { createRoutedApp, runInstance, startAppServer, startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const RSA_ONLY = 'rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pkcs1_sha256:rsa_pkcs1_sha384';
const ECDSA_ONLY = 'ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384';

let dir: string;
let redis: TestRedis;
let registry: RegistryFixture;
let proxy: ProxyDaemon;
let balancer: BalancerDaemon;
let port: number;
let heartbeat: NodeJS.Timeout;
const closers: (() => Promise<void>)[] = [];

interface Served {
  status: number;
  app: string;
  keyType: string | undefined;
  serial: string;
}

/** GET / over HTTPS as `servername`, offering only `sigalgs` (all Node's when undefined), trusting `ca` only (and, with anyName, whatever name it certifies). */
function get(servername: string, ca: string | string[], sigalgs: string | undefined, version: SecureVersion, anyName = false): Promise<Served> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/', servername, headers: { host: servername }, ca, agent: false, minVersion: version, maxVersion: version, ...(anyName ? { checkServerIdentity: () => undefined } : {}), ...(sigalgs === undefined ? {} : { sigalgs }) },
      (res) => {
        const peer = (res.socket as TLSSocket).getPeerX509Certificate()!;
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, app: (JSON.parse(body) as { name: string }).name, keyType: peer.publicKey.asymmetricKeyType, serial: peer.serialNumber }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const serialOf = (p: PemPair) => new X509Certificate(p.cert).serialNumber;

async function app(name: string): Promise<void> {
  await createRoutedApp(registry.daemon.apps, name, `/${name}`);
  const s = await startAppServer(name);
  closers.push(s.close);
  await runInstance(registry.daemon.store, name, `/${name}`, 'm1', s.port);
}

beforeAll(async () => {
  dir = traversableTempDir('berth-keytypes-');
  const keyFile = join(dir, 'acme-key');
  writeFileSync(keyFile, newSealingKeyText(), { mode: 0o600 });
  redis = await startRedis();
  registry = await startTestRegistry(redis, { acmeKeyFile: keyFile });
  proxy = await startTestProxy(redis, registry.prefix, 'm1');
  await registry.daemon.store.heartbeat('m1', { proxy: proxy.url });
  heartbeat = setInterval(() => void registry.daemon.store.heartbeat('m1', { proxy: proxy.url }).catch(() => undefined), 2000);
  await app('shop');
  await app('blog');
  await registry.client.addDomain('shop', 'rsa.keys.test');
  await registry.client.addDomain('blog', 'both.keys.test');
  balancer = await startBalancer(
    resolveOptions(
      BALANCER_OPTIONS,
      { host: '127.0.0.1', httpsPort: 0, httpPort: -1, keyPrefix: registry.prefix, dataDir: join(dir, 'balancer'), acmeKeyFile: keyFile, tokenSha256: createHash('sha256').update(registry.token).digest('hex') },
      { REDIS_URL: redis.url },
    ),
    silentLogger(),
  );
  port = Number(new URL(balancer.url).port);
  await waitFor(() => balancer.pool.all.length === 1, { what: 'the balancer to find the machine' });
}, 30_000);

afterAll(async () => {
  clearInterval(heartbeat);
  await balancer?.close();
  await proxy?.close();
  for (const c of closers) await c();
  await registry?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("operators' RSA and ECDSA certificates", () => {
  let rsaOnly: PemPair;
  let bothRsa: PemPair;
  let bothEcdsa: PemPair;

  it('serves the RSA certificate of a domain that has only that one, to RSA-only and to ECDSA-capable clients', async () => {
    rsaOnly = opensslCertificate(dir, { names: ['rsa.keys.test'], keyType: 'rsa' });
    const added = await registry.client.addCertificate('rsa.keys.test', rsaOnly);
    expect(added).toMatchObject({ domain: 'rsa.keys.test', source: 'operator', state: 'issued', keyType: 'rsa' });
    // Trusting this certificate only: berth's own (the default) would fail verification.
    await waitFor(() => get('rsa.keys.test', rsaOnly.cert, undefined, 'TLSv1.3').then((r) => r.status === 200).catch(() => false), { what: 'the RSA certificate served' });
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      for (const sigalgs of [RSA_ONLY, undefined]) {
        const r = await get('rsa.keys.test', rsaOnly.cert, sigalgs, version);
        expect([r.status, r.app, r.keyType, r.serial], `${version} ${sigalgs ?? 'every sigalg'}`).toEqual([200, 'shop', 'rsa', serialOf(rsaOnly)]);
      }
    }
  });

  it('serves RSA to a client limited to RSA signatures and ECDSA to the others when a domain has one of each', async () => {
    bothRsa = opensslCertificate(dir, { names: ['both.keys.test'], keyType: 'rsa' });
    bothEcdsa = opensslCertificate(dir, { names: ['both.keys.test'], keyType: 'ecdsa' });
    await registry.client.addCertificate('both.keys.test', bothRsa);
    const added = await registry.client.addCertificate('both.keys.test', bothEcdsa);
    expect(added).toMatchObject({ keyType: 'ecdsa', serial: serialOf(bothEcdsa), second: { keyType: 'rsa', serial: serialOf(bothRsa) } });
    // berth certs shows a row per certificate, with its key type.
    const certs = await runCli(['certs'], { BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token, HOME: dir });
    expect(certs.code, certs.stderr).toBe(0);
    expect(certs.stdout).toMatch(/both\.keys\.test\s+operator\s+issued\s+both\.keys\.test\s+ecdsa\s/);
    expect(certs.stdout).toMatch(/both\.keys\.test\s+operator\s+issued\s+both\.keys\.test\s+rsa\s/);
    expect(certs.stdout).toMatch(/rsa\.keys\.test\s+operator\s+issued\s+rsa\.keys\.test\s+rsa\s/);
    const ca = [bothRsa.cert, bothEcdsa.cert];
    await waitFor(() => get('both.keys.test', ca, ECDSA_ONLY, 'TLSv1.3').then((r) => r.serial === serialOf(bothEcdsa)).catch(() => false), { what: 'the ECDSA certificate served' });
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const rsa = await get('both.keys.test', ca, RSA_ONLY, version);
      expect([rsa.status, rsa.app, rsa.keyType, rsa.serial], `${version} RSA only`).toEqual([200, 'blog', 'rsa', serialOf(bothRsa)]);
      const ecdsa = await get('both.keys.test', ca, ECDSA_ONLY, version);
      expect([ecdsa.status, ecdsa.app, ecdsa.keyType, ecdsa.serial], `${version} ECDSA only`).toEqual([200, 'blog', 'ec', serialOf(bothEcdsa)]);
      const any = await get('both.keys.test', ca, undefined, version);
      expect([any.keyType, any.serial], `${version} every sigalg`).toEqual(['ec', serialOf(bothEcdsa)]);
    }
    // HTTP/2 too (ALPN on the listener that serves the RSA certificates).
    const session = connectH2(`https://127.0.0.1:${port}`, { servername: 'both.keys.test', ca, sigalgs: RSA_ONLY });
    try {
      const h2 = await new Promise<{ status: number; body: string; keyType: string | undefined }>((resolve, reject) => {
        const stream = session.request({ ':path': '/', ':authority': 'both.keys.test' });
        let status = 0;
        let body = '';
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.on('data', (d: Buffer) => (body += d.toString()));
        stream.on('end', () => resolve({ status, body, keyType: (session.socket as TLSSocket).getPeerX509Certificate()?.publicKey.asymmetricKeyType }));
        stream.on('error', reject);
      });
      expect([h2.status, (JSON.parse(h2.body) as { name: string }).name, h2.keyType]).toEqual([200, 'blog', 'rsa']);
    } finally {
      session.close();
    }
    // The RSA-only domain is unchanged beside it.
    expect((await get('rsa.keys.test', rsaOnly.cert, undefined, 'TLSv1.3')).serial).toBe(serialOf(rsaOnly));
  });

  it("keeps berth's own certificate for the shared host while hellos are read", async () => {
    const ownCa = readFileSync(balancer.caCertPath!, 'utf8');
    for (const sigalgs of [RSA_ONLY, ECDSA_ONLY, undefined]) {
      const r = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/shop/x', servername: 'localhost', ca: ownCa, agent: false, ...(sigalgs === undefined ? {} : { sigalgs }) }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end();
      }).catch((err: Error) => err.message);
      // berth's own is ECDSA, signed by an RSA CA: a client that takes no ECDSA signature cannot use it, as before.
      if (sigalgs === RSA_ONLY) expect(r).not.toBe(200);
      else expect(r).toBe(200);
    }
  });

  it('refuses a key that is not the certificate’s, an expired certificate and one for another name, with a clear 400', async () => {
    const bad = async (pem: PemPair, pattern: RegExp) => {
      const err = (await registry.client.addCertificate('both.keys.test', pem).catch((e: unknown) => e)) as { status: number; code: string; message: string };
      expect([err.status, err.code]).toEqual([400, 'invalid_certificate']);
      expect(err.message).toMatch(pattern);
    };
    const other = opensslCertificate(dir, { names: ['other.keys.test'], keyType: 'rsa' });
    await bad({ cert: bothRsa.cert, key: other.key }, /does not match/);
    await bad({ cert: bothEcdsa.cert, key: other.key }, /does not match/);
    await bad(opensslCertificate(dir, { names: ['both.keys.test'], keyType: 'rsa', from: '20200101000000Z', to: '20200102000000Z' }), /expired on 2020-01-02/);
    await bad(opensslCertificate(dir, { names: ['both.keys.test'], keyType: 'ecdsa', from: '20200101000000Z', to: '20200102000000Z' }), /expired/);
    await bad(other, /does not cover both\.keys\.test/);
    // What was there is still served.
    expect((await get('both.keys.test', [bothRsa.cert], RSA_ONLY, 'TLSv1.3')).serial).toBe(serialOf(bothRsa));
  });

  it("stops serving both when they are removed: the domain gets berth's own again", async () => {
    await registry.client.removeCertificate('both.keys.test');
    const ownCa = readFileSync(balancer.caCertPath!, 'utf8');
    await waitFor(() => get('both.keys.test', ownCa, undefined, 'TLSv1.3', true).then((r) => r.app === 'blog').catch(() => false), { what: "berth's own certificate served for the domain" });
    expect(await registry.client.listCertificates()).toEqual([expect.objectContaining({ domain: 'rsa.keys.test' })]);
  });
});
