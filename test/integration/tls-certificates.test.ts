// The self-made local CA (RSA) and server certificate (P-256) are sound by Node's own checks and in real handshakes, are reused across calls and re-issued by the same CA when names change or an older berth's RSA server certificate is found; the server refuses TLS 1.0/1.1 cleanly, resumes sessions, times out silent handshakes, and swaps in replaced certificate files live while ignoring broken ones.
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, get as httpsGet, type Server as HttpsServer } from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions, type TLSSocket } from 'node:tls';
import forge from 'node-forge';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureLocalCertificates, type LocalCertificates } from '../../balancer/local-certificates.js';
import { tlsServerOptions, watchCertificateFiles, type TlsServerOptions } from '../../balancer/tls-options.js';
import { waitFor } from '../helpers/wait-for.js';

/** A deadline, not a sleep: how long a session ticket may take to arrive. */
const TICKET_DEADLINE_MS = 5000;

const EXTRA_NAME = 'berth.example.test';
const EXTRA_IP = '10.11.12.13';

let root: string;
let dir: string;
let first: LocalCertificates;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'berth-tls-'));
  dir = join(root, 'data', 'tls');
  first = await ensureLocalCertificates({ dir, names: [EXTRA_NAME, EXTRA_IP] });
});

afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean();
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** An HTTPS server on a free loopback port answering "ok"; closed after the test. */
async function startHttps(options: TlsServerOptions): Promise<{ server: HttpsServer; port: number; clientErrors: Error[] }> {
  const server = createHttpsServer(options, (_req, res) => res.end('ok'));
  const clientErrors: Error[] = [];
  server.on('tlsClientError', (err) => clientErrors.push(err));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { server, port: (server.address() as AddressInfo).port, clientErrors };
}

/** A finished TLS handshake (authorized or not), or the error that ended it. */
function handshake(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...options });
    cleanups.push(() => void socket.destroy());
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** GET / over HTTPS trusting only `ca`: the body, or the error. */
function httpsGetBody(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsGet({ host: '127.0.0.1', port, path: '/', ca, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

/** Every certificate in a PEM bundle, in order. */
function certificatesIn(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block));
}

describe('ensureLocalCertificates', () => {
  it('makes a CA and a server certificate with private keys readable only by the owner', () => {
    expect(first.made).toBe('ca');
    expect(modeOf(dir)).toBe(0o700);
    expect(modeOf(first.keyPath)).toBe(0o600);
    expect(modeOf(join(dir, 'ca-key.pem'))).toBe(0o600);
    expect(modeOf(first.caCertPath)).toBe(0o644);
    expect(readFileSync(first.certPath, 'utf8')).toBe(first.certPem);
    expect(readFileSync(first.keyPath, 'utf8')).toBe(first.keyPem);
    expect(readFileSync(first.caCertPath, 'utf8')).toBe(first.caCertPem);
  });

  it('issues a server certificate that Node verifies against the CA for every name', () => {
    const ca = new X509Certificate(first.caCertPem);
    const [server, chained, ...rest] = certificatesIn(first.certPem);
    expect(rest).toHaveLength(0);
    expect(chained?.fingerprint256).toBe(ca.fingerprint256);

    expect(ca.ca).toBe(true);
    expect(ca.subject).toContain(`CN=berth local CA (${hostname().slice(0, 40)}`);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(Date.parse(ca.validTo) - Date.now()).toBeGreaterThan(9 * 365 * 86_400_000);

    expect(server).toBeDefined();
    const cert = server!;
    expect(cert.ca).toBe(false);
    // A P-256 key for the server (cheap handshakes), signed by an RSA CA.
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(ca.publicKey.asymmetricKeyType).toBe('rsa');
    expect(cert.checkPrivateKey(createPrivateKey(first.keyPem))).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // extendedKeyUsage serverAuth
    expect(cert.serialNumber).toMatch(/^[0-9A-F]{32}$/);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBeLessThanOrEqual(397 * 86_400_000);
    for (const host of ['localhost', hostname().toLowerCase(), EXTRA_NAME]) expect(cert.checkHost(host), host).toBe(host);
    for (const ip of ['127.0.0.1', '::1', EXTRA_IP]) expect(cert.checkIP(ip), ip).toBeDefined();
    expect(cert.checkHost('other.example.test')).toBeUndefined();
  });

  it('serves a handshake that a client trusting only the CA authorizes, under each name', async () => {
    const { port } = await startHttps(tlsServerOptions({ cert: first.certPem, key: first.keyPem }));
    for (const servername of ['localhost', hostname().toLowerCase(), EXTRA_NAME]) {
      const socket = await handshake(port, { ca: first.caCertPem, servername });
      expect(socket.authorized, servername).toBe(true);
      expect(socket.getProtocol()).toBe('TLSv1.3');
      socket.destroy();
    }
    // No servername: Node checks the IP address the client dialled against the IP SANs.
    const byIp = await handshake(port, { ca: first.caCertPem });
    expect(byIp.authorized).toBe(true);

    const tls12 = await handshake(port, { ca: first.caCertPem, servername: 'localhost', maxVersion: 'TLSv1.2' });
    expect(tls12.getProtocol()).toBe('TLSv1.2');
    expect(tls12.getCipher().name).toMatch(/^ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    expect(await httpsGetBody(port, first.caCertPem)).toBe('ok');
  });

  it('reuses the same files on a later call with the same names', async () => {
    const mtime = statSync(first.certPath).mtimeMs;
    const again = await ensureLocalCertificates({ dir, names: [EXTRA_NAME, EXTRA_IP] });
    expect(again.made).toBe('nothing');
    expect(new X509Certificate(again.certPem).fingerprint256).toBe(new X509Certificate(first.certPem).fingerprint256);
    expect(again.keyPem).toBe(first.keyPem);
    expect(statSync(first.certPath).mtimeMs).toBe(mtime);
  });

  it('re-issues the server certificate from the same CA when a name is added', async () => {
    const added = 'added.example.test';
    const next = await ensureLocalCertificates({ dir, names: [EXTRA_NAME, EXTRA_IP, added] });
    expect(next.made).toBe('server');
    expect(new X509Certificate(next.caCertPem).fingerprint256).toBe(new X509Certificate(first.caCertPem).fingerprint256);
    const cert = new X509Certificate(next.certPem);
    expect(cert.fingerprint256).not.toBe(new X509Certificate(first.certPem).fingerprint256);
    expect(cert.verify(new X509Certificate(first.caCertPem).publicKey)).toBe(true);
    expect(cert.checkHost(added)).toBe(added);
    expect(cert.checkHost(EXTRA_NAME)).toBe(EXTRA_NAME);
    expect(modeOf(next.keyPath)).toBe(0o600);

    const { port } = await startHttps(tlsServerOptions({ cert: next.certPem, key: next.keyPem }));
    const socket = await handshake(port, { ca: first.caCertPem, servername: added });
    expect(socket.authorized).toBe(true);
  });
});

describe('ensureLocalCertificates after an older berth', () => {
  it('replaces an RSA server certificate by a P-256 one from the same CA, which stays', async () => {
    const oldDir = join(root, 'older', 'tls');
    const made = await ensureLocalCertificates({ dir: oldDir });
    // What berth made before: an RSA 2048 server key, signed by the same CA.
    const caCert = forge.pki.certificateFromPem(made.caCertPem);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const leaf = forge.pki.createCertificate();
    leaf.publicKey = forge.pki.publicKeyFromPem(rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string);
    leaf.serialNumber = '4a01';
    leaf.validity.notBefore = new Date(Date.now() - 3_600_000);
    leaf.validity.notAfter = new Date(Date.now() + 300 * 86_400_000);
    leaf.setSubject([{ name: 'commonName', value: 'localhost' }]);
    leaf.setIssuer(caCert.subject.attributes);
    leaf.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 2, value: hostname().toLowerCase() }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] }]);
    leaf.sign(forge.pki.privateKeyFromPem(readFileSync(join(oldDir, 'ca-key.pem'), 'utf8')), forge.md.sha256.create());
    writeFileSync(made.keyPath, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    writeFileSync(made.certPath, forge.pki.certificateToPem(leaf) + made.caCertPem);
    expect(new X509Certificate(readFileSync(made.certPath, 'utf8')).publicKey.asymmetricKeyType).toBe('rsa');

    const next = await ensureLocalCertificates({ dir: oldDir });
    expect(next.made).toBe('server');
    expect(next.caCertPem).toBe(made.caCertPem);
    const cert = new X509Certificate(next.certPem);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.verify(new X509Certificate(made.caCertPem).publicKey)).toBe(true);
    const { port } = await startHttps(tlsServerOptions({ cert: next.certPem, key: next.keyPem }));
    expect((await handshake(port, { ca: made.caCertPem, servername: 'localhost' })).authorized).toBe(true);
  });
});

describe('tlsServerOptions', () => {
  // Node's client needs both a lowered minimum and security level 0 to offer TLS 1.0/1.1 at all.
  const oldClient: ConnectionOptions = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' };

  it('lets the old client through on a permissive server, proving it genuinely offers TLS 1.1', async () => {
    const server = createTlsServer({ cert: first.certPem, key: first.keyPem, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }, (s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const socket = await handshake((server.address() as AddressInfo).port, { ...oldClient, ca: first.caCertPem, servername: 'localhost' });
    expect(socket.getProtocol()).toBe('TLSv1.1');
  });

  it('fails the handshake of a TLS 1.0/1.1-only client cleanly and keeps serving good clients', async () => {
    const { port, clientErrors } = await startHttps(tlsServerOptions({ cert: first.certPem, key: first.keyPem }));
    const err = await handshake(port, { ...oldClient, ca: first.caCertPem, servername: 'localhost' }).then(
      () => null,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toMatch(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/);
    const serverSide = await waitFor(() => clientErrors[0], { deadlineMs: 5000, what: "the server's tlsClientError" });
    expect((serverSide as NodeJS.ErrnoException).code).toBe('ERR_SSL_UNSUPPORTED_PROTOCOL');
    expect(await httpsGetBody(port, first.caCertPem)).toBe('ok');
  });

  it('resumes sessions with the tickets it issued, over TLS 1.3 and TLS 1.2', async () => {
    const { port } = await startHttps(tlsServerOptions({ cert: first.certPem, key: first.keyPem }));
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const options: ConnectionOptions = { ca: first.caCertPem, servername: 'localhost', maxVersion };
      const firstSocket = tlsConnect({ host: '127.0.0.1', port, ...options });
      cleanups.push(() => void firstSocket.destroy());
      // TLS 1.3 tickets arrive after the handshake: wait for the 'session' event, not secureConnect.
      const session = await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no session ticket over ${maxVersion} within 5 s`)), TICKET_DEADLINE_MS);
        firstSocket.once('session', (s: Buffer) => {
          clearTimeout(timer);
          resolve(s);
        });
        firstSocket.once('error', reject);
      });
      expect(firstSocket.isSessionReused()).toBe(false);
      firstSocket.destroy();
      const resumed = await handshake(port, { ...options, session });
      expect(resumed.isSessionReused(), maxVersion).toBe(true);
      expect(resumed.authorized).toBe(true);
    }
  });

  it('drops a client that never completes its handshake once the handshake timeout passes', async () => {
    const { port, clientErrors } = await startHttps(tlsServerOptions({ cert: first.certPem, key: first.keyPem, handshakeTimeoutMs: 300 }));
    const raw = netConnect({ host: '127.0.0.1', port });
    cleanups.push(() => void raw.destroy());
    const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
    raw.on('error', () => {});
    await waitFor(() => clientErrors.some((e) => (e as NodeJS.ErrnoException).code === 'ERR_TLS_HANDSHAKE_TIMEOUT'), {
      deadlineMs: 5000,
      what: 'a handshake timeout on the server',
    });
    await closed;
  });
});

describe('watchCertificateFiles', () => {
  /** Writes beside and renames over, as editors and certbot do. */
  function replace(path: string, content: string): void {
    writeFileSync(`${path}.new`, content, { mode: 0o600 });
    renameSync(`${path}.new`, path);
  }

  it('swaps in a replaced valid pair live and keeps serving it when the files turn to garbage', async () => {
    const other = await ensureLocalCertificates({ dir: join(root, 'other-tls'), names: [] });
    const liveDir = join(root, 'live');
    mkdirSync(liveDir);
    const certPath = join(liveDir, 'cert.pem');
    const keyPath = join(liveDir, 'key.pem');
    writeFileSync(certPath, first.certPem);
    writeFileSync(keyPath, first.keyPem, { mode: 0o600 });

    const { server, port } = await startHttps(tlsServerOptions({ cert: first.certPem, key: first.keyPem }));
    const changes: TlsServerOptions[] = [];
    const errors: Error[] = [];
    const watcher = watchCertificateFiles({
      certPath,
      keyPath,
      intervalMs: 100,
      onChange: (options) => {
        changes.push(options);
        server.setSecureContext(options);
      },
      onError: (err) => errors.push(err),
    });
    cleanups.push(() => watcher.close());

    const servedFingerprint = async (): Promise<string> => {
      const socket = await handshake(port, { rejectUnauthorized: false, servername: 'localhost' });
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      return fingerprint;
    };
    const firstFingerprint = new X509Certificate(first.certPem).fingerprint256;
    const otherFingerprint = new X509Certificate(other.certPem).fingerprint256;
    expect(await servedFingerprint()).toBe(firstFingerprint);

    replace(keyPath, other.keyPem);
    replace(certPath, other.certPem);
    await waitFor(() => changes.length > 0, { deadlineMs: 10_000, what: 'onChange after replacing the pair' });
    expect(changes).toHaveLength(1);
    expect(await servedFingerprint()).toBe(otherFingerprint);
    const resumedTrust = await handshake(port, { ca: other.caCertPem, servername: 'localhost' });
    expect(resumedTrust.authorized).toBe(true);

    const errorsBefore = errors.length;
    replace(certPath, 'not a certificate\n');
    await waitFor(() => errors.length > errorsBefore, { deadlineMs: 10_000, what: 'onError after writing garbage' });
    expect((errors.at(-1) as NodeJS.ErrnoException).code).toBe('invalid_config');
    expect(errors.at(-1)?.message).toContain(certPath);
    expect(changes).toHaveLength(1);
    expect(await servedFingerprint()).toBe(otherFingerprint);

    // A valid but mismatched pair is refused too.
    const mismatchErrors = errors.length;
    replace(certPath, first.certPem);
    await waitFor(() => errors.length > mismatchErrors, { deadlineMs: 10_000, what: 'onError for a key that does not match' });
    expect(errors.at(-1)?.message).toContain('does not belong');
    expect(changes).toHaveLength(1);
    expect(await servedFingerprint()).toBe(otherFingerprint);
  });
});
