// The balancer's client side over real TLS sockets: HTTP/2 and HTTP/1.1 by ALPN through balancer → proxy → app, the limits on both protocols, and SNI with one certificate per host name (reloaded on change), the default certificate for any other name.
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as h2Connect, constants as h2, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { request } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BALANCER_OPTIONS, startBalancer, type BalancerDaemon } from '../../balancer/balancer-daemon.js';
import { ensureLocalCertificates, SERVER_CERT_FILE, type LocalCertificates } from '../../balancer/local-certificates.js';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { createRoutedApp, runInstance, startAppServer, startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

/** Short, so the slow-client tests wait little; a loaded machine still sends a small request well within it. */
const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 1500;
const HANDSHAKE_TIMEOUT_MS = 1000;
/** The balancer refuses heads larger than this; the oversized-header tests send more. */
const MAX_HEADER_BYTES = 8192;
/** A client waits this long for an answer before failing the test with a clear message. */
const CLIENT_DEADLINE_MS = 10_000;

let redis: TestRedis;
let registry: RegistryFixture;
let m1: ProxyDaemon;
let balancer: BalancerDaemon;
let port: number;
let ca: string;
let dataDir: string;
let certsDir: string;
let hostA: LocalCertificates;
let hostB: LocalCertificates;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis);
  m1 = await startTestProxy(redis, registry.prefix, 'm1');
  await registry.daemon.store.heartbeat('m1', { proxy: m1.url });
  // The app echoes what reached it, body included.
  const app = await startAppServer('echo@m1', (req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      // A status HTTP/1.1 carries (100-999) but HTTP/2 cannot (200-599 only).
      if (req.url === '/echo/status-601') return void res.writeHead(601, { 'content-length': '0' }).end();
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'], connection: 'keep-alive' });
      res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers, body }));
    });
  });
  closers.push(app.close);
  app.server.on('upgrade', (_req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('end', () => socket.destroy());
    socket.on('error', () => undefined);
  });
  await createRoutedApp(registry.daemon.apps, 'echo', '/echo');
  await runInstance(registry.daemon.store, 'echo', '/echo', 'm1', app.port);

  // Two host names with certificates of their own (each from its own CA), kept in files.
  certsDir = mkdtempSync(join(tmpdir(), 'berth-sni-'));
  hostA = await ensureLocalCertificates({ dir: join(certsDir, 'a'), names: ['a.test'] });
  hostB = await ensureLocalCertificates({ dir: join(certsDir, 'b'), names: ['b.test'] });
  dataDir = traversableTempDir('berth-balancer-h2-');
  const config = resolveOptions(
    BALANCER_OPTIONS,
    {
      host: '127.0.0.1',
      httpsPort: 0,
      keyPrefix: registry.prefix,
      // Static as well as discovered: the test outlives the machine's one heartbeat (15 s).
      backends: m1.url,
      dataDir,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
      maxHeaderBytes: MAX_HEADER_BYTES,
      tlsHost: [`a.test=${hostA.certPath}:${hostA.keyPath}`, `B.Test=${hostB.certPath}:${hostB.keyPath}`],
    },
    { REDIS_URL: redis.url },
  );
  balancer = await startBalancer(config, silentLogger());
  port = Number(new URL(balancer.url).port);
  ca = readFileSync(balancer.caCertPath!, 'utf8');
  await waitFor(() => balancer.pool.all.some((b) => b.healthy), { what: 'the machine discovered and healthy' });
});

afterAll(async () => {
  await balancer?.close();
  await m1?.close().catch(() => undefined);
  for (const c of closers) await c();
  await registry?.close();
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(certsDir, { recursive: true, force: true });
});

function h2Session(servername = 'localhost', trusted = ca): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`https://127.0.0.1:${port}`, { ca: trusted, servername });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

interface H2Answer {
  headers: IncomingHttpHeaders;
  body: string;
  /** RST_STREAM code when the stream was reset, else 0. */
  rstCode: number;
}

function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let got: IncomingHttpHeaders = {};
    let text = '';
    stream.on('response', (h) => (got = h));
    stream.on('data', (d: Buffer) => (text += d.toString()));
    stream.on('error', () => undefined);
    stream.on('close', () => resolve({ headers: got, body: text, rstCode: stream.rstCode ?? 0 }));
    stream.setTimeout(CLIENT_DEADLINE_MS, () => reject(new Error(`no answer to ${String(headers[':path'])} within ${CLIENT_DEADLINE_MS} ms`)));
    if (body !== undefined) stream.end(body);
  });
}

/** A TLS handshake offering `alpn` and asking for `servername`: what was agreed and which certificate came. */
function handshake(options: ConnectionOptions): Promise<{ alpn: string | false; cert: X509Certificate }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const cert = socket.getPeerX509Certificate();
      resolve({ alpn: socket.alpnProtocol ?? false, cert: cert! });
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** Sends raw bytes over TLS (HTTP/1.1) and returns what came back by the time the balancer closed. */
function rawHttp1(text: string, keepOpen = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => socket.write(text));
    let out = '';
    socket.on('data', (d) => (out += d.toString()));
    socket.on('close', () => resolve(out));
    socket.on('error', () => resolve(out));
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the balancer did not close within ${CLIENT_DEADLINE_MS} ms; got ${JSON.stringify(out)}`));
    }, CLIENT_DEADLINE_MS);
    deadline.unref();
    socket.once('close', () => clearTimeout(deadline));
    if (!keepOpen) socket.once('end', () => socket.end());
  });
}

describe('balancer over HTTP/2 and HTTP/1.1 (ALPN)', () => {
  it('negotiates h2 when a client offers it and http/1.1 otherwise', async () => {
    expect((await handshake({ servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('h2');
    expect((await handshake({ servername: 'localhost', ALPNProtocols: ['http/1.1'] })).alpn).toBe('http/1.1');
    expect((await handshake({ servername: 'localhost' })).alpn).toBe(false);
  });

  it("brings an h2 client the app's answer through balancer and proxy, with the balancer's forwarded headers", async () => {
    const session = await h2Session();
    try {
      expect(session.alpnProtocol).toBe('h2');
      const got = await h2Request(session, { ':path': '/echo/x?y=1', ':authority': `shop.test:${port}`, 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil', 'x-custom': 'kept' });
      expect(got.headers[':status']).toBe(200);
      // Hop-by-hop headers of the app's answer are gone (HTTP/2 forbids them); repeated ones stay.
      expect(got.headers.connection).toBeUndefined();
      expect(got.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      const seen = JSON.parse(got.body) as { url: string; method: string; headers: Record<string, string> };
      expect(seen.url).toBe('/echo/x?y=1');
      expect(seen.method).toBe('GET');
      expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1, 127.0.0.1');
      expect(seen.headers['x-forwarded-proto']).toBe('https');
      // :authority becomes Host and X-Forwarded-Host.
      expect(seen.headers['x-forwarded-host']).toBe(`shop.test:${port}`);
      expect(seen.headers.host).toBe(`shop.test:${port}`);
      expect(seen.headers['x-custom']).toBe('kept');
      expect(Object.keys(seen.headers).filter((h) => h.startsWith(':'))).toEqual([]);

      // A body without Content-Length (HTTP/2 needs none) arrives whole; streams share the session.
      const [posted, again] = await Promise.all([
        h2Request(session, { ':method': 'POST', ':path': '/echo/post' }, 'x'.repeat(100_000)),
        h2Request(session, { ':path': '/echo/second' }),
      ]);
      expect(JSON.parse(posted.body).body).toHaveLength(100_000);
      expect(JSON.parse(again.body).url).toBe('/echo/second');

      // The balancer's own pages answer over h2 too.
      expect(JSON.parse((await h2Request(session, { ':path': '/_berth/health' })).body).status).toBe('ok');
      expect((await h2Request(session, { ':path': '/_berth/nothing/../../etc' })).headers[':status']).toBe(400);
    } finally {
      session.close();
    }
  });

  it('still answers HTTP/1.1 clients and WebSocket upgrades on the same port', async () => {
    const res = await new Promise<{ status: number; alpn: string | false | null; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/echo/h1', ca, servername: 'localhost', agent: false, ...{ ALPNProtocols: ['http/1.1'] } }, (r) => {
        let body = '';
        r.on('data', (d) => (body += d));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, alpn: (r.socket as import('node:tls').TLSSocket).alpnProtocol, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(200);
    expect(res.alpn).toBe('http/1.1');
    expect(JSON.parse(res.body).headers['x-forwarded-proto']).toBe('https');
    // A WebSocket upgrade (HTTP/1.1 only) reaches the app and echoes back.
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/echo/ws', ca, servername: 'localhost', agent: false, headers: { connection: 'Upgrade', upgrade: 'websocket' } });
      req.on('upgrade', (_res, socket) => {
        socket.once('data', (d: Buffer) => {
          resolve(d.toString());
          socket.destroy();
        });
        socket.write('hello over tls');
      });
      req.on('response', (r) => reject(new Error(`no upgrade: ${r.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    expect(echoed).toBe('hello over tls');
  });

  it('resets an h2 stream with oversized headers and keeps the session serving', async () => {
    const session = await h2Session();
    try {
      // Over the balancer's limit but under the proxy's (16 KiB): only the balancer can refuse it.
      const big = await h2Request(session, { ':path': '/echo/big', 'x-big': 'a'.repeat(MAX_HEADER_BYTES + 2048) });
      // 431 from the balancer, or (once the client has acknowledged the SETTINGS limit) the stream reset by HTTP/2 itself.
      const status = big.headers[':status'] as number | undefined;
      const refused = status === 431 || (status === undefined && big.rstCode === h2.NGHTTP2_ENHANCE_YOUR_CALM);
      expect(refused, JSON.stringify(big)).toBe(true);
      expect((await h2Request(session, { ':path': '/echo/after' })).headers[':status']).toBe(200);
    } finally {
      session.close();
    }
  });

  it('answers 431 to oversized HTTP/1.1 heads', async () => {
    expect(await rawHttp1(`GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES * 2)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('answers 408 to a slow h2 body and keeps the session serving', async () => {
    const session = await h2Session();
    try {
      const slow = await new Promise<H2Answer>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': '/echo/slow' }, { endStream: false });
        let got: IncomingHttpHeaders = {};
        stream.on('response', (h) => (got = h));
        stream.resume();
        stream.on('error', () => undefined);
        stream.on('close', () => resolve({ headers: got, body: '', rstCode: stream.rstCode ?? 0 }));
        stream.setTimeout(CLIENT_DEADLINE_MS, () => reject(new Error('no 408 for a slow body')));
        stream.write('part of a body that never ends');
      });
      expect(slow.headers[':status']).toBe(408);
      expect((await h2Request(session, { ':path': '/echo/after-slow' })).headers[':status']).toBe(200);
    } finally {
      session.close();
    }
  });

  it('answers 408 to slow HTTP/1.1 heads and bodies', async () => {
    expect(await rawHttp1('GET /echo HTTP/1.1\r\nHost: localhost\r\n', true)).toMatch(/^HTTP\/1\.1 408 /);
    expect(await rawHttp1('POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly a part', true)).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('answers 502 for an app answer HTTP/2 cannot carry (status 601), and keeps serving', async () => {
    const session = await h2Session();
    try {
      const odd = await h2Request(session, { ':path': '/echo/status-601' });
      expect(odd.headers[':status'], JSON.stringify(odd)).toBe(502);
      expect(JSON.parse(odd.body).error.code).toBe('upstream_failed');
      expect((await h2Request(session, { ':path': '/echo/after-601' })).headers[':status']).toBe(200);
    } finally {
      session.close();
    }
  });

  it('drops a client that never starts its TLS handshake once the handshake timeout passes', async () => {
    const started = Date.now();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port });
      socket.on('close', () => resolve(Date.now() - started));
      socket.on('error', () => undefined);
      const deadline = setTimeout(() => {
        socket.destroy();
        reject(new Error(`still open after ${CLIENT_DEADLINE_MS} ms`));
      }, CLIENT_DEADLINE_MS);
      deadline.unref();
    });
    expect(closedAfter).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 50);
  });

  it('fails the handshake of a TLS 1.0/1.1-only client and keeps serving', async () => {
    // The same old client tls-certificates.test.ts proves genuinely offers TLS 1.1.
    const failed = await handshake({ servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }).then(
      () => null,
      (err: NodeJS.ErrnoException) => err,
    );
    expect(failed?.code ?? failed?.message).toMatch(/VERSION|PROTOCOL|ALERT/i);
    expect((await handshake({ servername: 'localhost', ALPNProtocols: ['h2'] })).alpn).toBe('h2');
  });

  it('refuses CONNECT over h2 (405)', async () => {
    const session = await h2Session();
    try {
      const got = await h2Request(session, { ':method': 'CONNECT', ':authority': 'evil.example:443' });
      expect(got.headers[':status']).toBe(405);
    } finally {
      session.close();
    }
  });
});

describe('balancer SNI: one certificate per host name', () => {
  const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
  const defaultCert = () => readFileSync(join(dataDir, 'tls', SERVER_CERT_FILE), 'utf8');

  it('serves each configured name its own certificate and any other name the default one', async () => {
    const a = await handshake({ servername: 'a.test', ca: hostA.caCertPem, rejectUnauthorized: true });
    expect(a.cert.fingerprint256).toBe(fingerprint(hostA.certPem));
    expect(a.cert.subjectAltName).toContain('DNS:a.test');
    expect(a.cert.subjectAltName).not.toContain('DNS:b.test');
    // Configured as B.Test: names match without regard to case.
    const b = await handshake({ servername: 'b.test', ca: hostB.caCertPem, rejectUnauthorized: true });
    expect(b.cert.fingerprint256).toBe(fingerprint(hostB.certPem));
    expect(b.cert.subjectAltName).toContain('DNS:b.test');
    expect(b.cert.subjectAltName).not.toContain('DNS:a.test');

    for (const servername of ['unknown.test', 'localhost']) {
      const other = await handshake({ servername, ALPNProtocols: ['h2'] });
      expect(other.cert.fingerprint256, servername).toBe(fingerprint(defaultCert()));
      expect(other.cert.fingerprint256).not.toBe(fingerprint(hostA.certPem));
    }
    // No SNI at all (an IP address): the default too.
    expect((await handshake({})).cert.fingerprint256).toBe(fingerprint(defaultCert()));

    // And requests flow under a host's certificate, verified against its CA, over h2.
    const session = await h2Session('a.test', hostA.caCertPem);
    try {
      expect((await h2Request(session, { ':path': '/echo/sni' })).headers[':status']).toBe(200);
    } finally {
      session.close();
    }
  });

  it("reloads a host's certificate when its files change", async () => {
    const renewed = await ensureLocalCertificates({ dir: join(certsDir, 'a2'), names: ['a.test'] });
    expect(fingerprint(renewed.certPem)).not.toBe(fingerprint(hostA.certPem));
    // Key first, then the certificate: in between the pair does not match and the old one stays.
    copyFileSync(renewed.keyPath, hostA.keyPath);
    copyFileSync(renewed.certPath, hostA.certPath);
    await waitFor(async () => (await handshake({ servername: 'a.test' })).cert.fingerprint256 === fingerprint(renewed.certPem), { what: 'the renewed a.test certificate served' });
    expect((await handshake({ servername: 'b.test' })).cert.fingerprint256).toBe(fingerprint(hostB.certPem));
  });
});
