import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { access, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { BerthError } from '../common/errors.js';

/** The CA is trusted once by users, so it lives long. */
export const DEFAULT_CA_VALIDITY_DAYS = 3650;
/** Browsers refuse server certificates valid for more than 398 days; stay under. */
export const DEFAULT_SERVER_VALIDITY_DAYS = 396;
/** Certificates this close to expiry are replaced rather than reused. */
export const DEFAULT_RENEW_BEFORE_DAYS = 30;

const DAY_MS = 86_400_000;
/** notBefore is set this far back so that clients with a slightly slow clock accept a fresh certificate. */
const CLOCK_SKEW_MS = 3_600_000;

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';
export const SERVER_CERT_FILE = 'server.pem';
export const SERVER_KEY_FILE = 'server-key.pem';

export interface LocalCertificatesOptions {
  /** Where the CA and server certificate are kept (created 0700); normally inside the data directory. */
  dir: string;
  /**
   * Extra host names and IP addresses the server certificate must cover. localhost,
   * 127.0.0.1, ::1 and the machine's host name are always included.
   * @default []
   */
  names?: string[];
}

export interface LocalCertificates {
  /** The CA certificate users add to their trust store (0644, so it can be copied). */
  caCertPath: string;
  /** The server certificate followed by the CA certificate. */
  certPath: string;
  /** The server's private key (0600). */
  keyPath: string;
  caCertPem: string;
  certPem: string;
  keyPem: string;
  /**
   * What this call had to make: nothing (all reused), a new server certificate, or a new CA
   * too — the one case where users must trust the CA again, so worth logging loudly.
   */
  made: 'nothing' | 'server' | 'ca';
}

/**
 * A local CA and a server certificate signed by it, for serving HTTPS when no certificate is
 * configured. Both are kept in `dir` and reused across restarts; when the requested names
 * change or the server certificate nears expiry, only the server certificate is replaced and
 * the CA stays, so a user who trusted it once keeps trusting what berth serves.
 *
 * node-forge only builds and signs certificates here; every check of what is on disk is
 * done with Node's own X509Certificate.
 */
export async function ensureLocalCertificates(options: LocalCertificatesOptions): Promise<LocalCertificates> {
  const names = requestedNames(options.names ?? []);
  const { dir } = options;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caCertPath = join(dir, CA_CERT_FILE);
  const caKeyPath = join(dir, CA_KEY_FILE);
  const certPath = join(dir, SERVER_CERT_FILE);
  const keyPath = join(dir, SERVER_KEY_FILE);

  let made: LocalCertificates['made'] = 'nothing';
  let ca = await loadCa(caCertPath, caKeyPath);
  if (ca === null) {
    ca = makeCa();
    // Key first: a crash between the two writes leaves no ca.pem, so nobody can have trusted
    // a CA whose key is lost, and the next start simply makes a new one.
    await writeAtomically(caKeyPath, ca.keyPem, 0o600);
    await writeAtomically(caCertPath, ca.certPem, 0o644);
    made = 'ca';
  }

  const existing = await loadServer(certPath, keyPath);
  if (made === 'nothing' && existing !== null && serverStillFits(existing, ca, names)) {
    return { caCertPath, certPath, keyPath, caCertPem: ca.certPem, certPem: existing.certPem, keyPem: existing.keyPem, made };
  }

  const server = makeServerCertificate(ca, names);
  // Key first: a crash in between leaves a mismatched pair, which the next call detects and replaces.
  await writeAtomically(keyPath, server.keyPem, 0o600);
  await writeAtomically(certPath, server.certPem, 0o644);
  if (made === 'nothing') made = 'server';
  return { caCertPath, certPath, keyPath, caCertPem: ca.certPem, certPem: server.certPem, keyPem: server.keyPem, made };
}

interface RequestedNames {
  dns: string[];
  ips: string[];
}

const DNS_NAME = /^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function requestedNames(extra: string[]): RequestedNames {
  const dns = new Set<string>();
  const ips = new Set<string>();
  for (const raw of ['localhost', '127.0.0.1', '::1', hostname(), ...extra]) {
    // Accept "[::1]" as written in URLs, and "example.com." as written in DNS zones.
    const name = raw.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
    if (isIP(name) !== 0) ips.add(name);
    else if (name.length <= 253 && DNS_NAME.test(name)) dns.add(name);
    else throw new BerthError('invalid_config', `TLS certificate name ${JSON.stringify(raw)} is neither a host name nor an IP address: fix the configured TLS names.`);
  }
  return { dns: [...dns], ips: [...ips] };
}

interface Pair {
  certPem: string;
  keyPem: string;
  cert: X509Certificate;
  key: KeyObject;
}

/** Reads a certificate and its key; null when either file is missing. */
async function readPair(certPath: string, keyPath: string): Promise<{ certPem: string; keyPem: string } | null> {
  try {
    return { certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function parsePair(certPem: string, keyPem: string): Pair | null {
  try {
    const cert = new X509Certificate(certPem);
    const key = createPrivateKey(keyPem);
    return cert.checkPrivateKey(key) ? { certPem, keyPem, cert, key } : null;
  } catch {
    return null;
  }
}

function validForMoreThan(cert: X509Certificate, ms: number): boolean {
  return Date.parse(cert.validTo) - Date.now() > ms;
}

async function loadCa(certPath: string, keyPath: string): Promise<Pair | null> {
  const files = await readPair(certPath, keyPath);
  if (files === null) {
    // A ca.pem without its key may already be trusted by users: replacing it silently would
    // break them, so say what to do instead.
    if (await exists(certPath)) {
      throw new BerthError('invalid_config', `The local CA key ${keyPath} is missing: restore it, or delete ${certPath} to make a new CA (which users must trust again).`);
    }
    return null;
  }
  const ca = parsePair(files.certPem, files.keyPem);
  if (ca === null || !ca.cert.ca) {
    throw new BerthError('invalid_config', `The local CA in ${certPath} and ${keyPath} is unreadable or its key does not match: restore them, or delete both to make a new CA (which users must trust again).`);
  }
  // An expiring CA is of no use to anyone: only then is a new one made on its own.
  return validForMoreThan(ca.cert, DEFAULT_RENEW_BEFORE_DAYS * DAY_MS) ? ca : null;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function loadServer(certPath: string, keyPath: string): Promise<Pair | null> {
  const files = await readPair(certPath, keyPath);
  return files === null ? null : parsePair(files.certPem, files.keyPem);
}

function serverStillFits(server: Pair, ca: Pair, names: RequestedNames): boolean {
  if (!server.cert.checkIssued(ca.cert) || !server.cert.verify(ca.cert.publicKey)) return false;
  // An RSA server certificate from an older berth is replaced by a P-256 one (same CA).
  if (server.key.asymmetricKeyType !== 'ec') return false;
  if (!validForMoreThan(server.cert, DEFAULT_RENEW_BEFORE_DAYS * DAY_MS)) return false;
  // Exact SAN entries rather than checkHost: a wildcard entry must not stand in for a name
  // that was asked for explicitly, and a requested wildcard is not a host checkHost accepts.
  const sanDns = new Set(
    (server.cert.subjectAltName ?? '')
      .split(', ')
      .filter((entry) => entry.startsWith('DNS:'))
      .map((entry) => entry.slice(4).toLowerCase()),
  );
  return names.dns.every((name) => sanDns.has(name)) && names.ips.every((ip) => server.cert.checkIP(ip) !== undefined);
}

/** The CA's key: RSA 2048, which every client verifies. */
function newKeyPair(): { keyPem: string; privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  // Node generates the key natively (forge's pure-JS RSA generation takes seconds); forge
  // only needs the key to sign.
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return {
    keyPem,
    privateKey: forge.pki.privateKeyFromPem(keyPem),
    publicKey: forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }) as string),
  };
}

/** 16 random bytes, positive and minimally encoded in DER (first byte set and below 0x80). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function toPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

function makeCa(): Pair {
  const { keyPem, privateKey, publicKey } = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(Date.now() + DEFAULT_CA_VALIDITY_DAYS * DAY_MS);
  const subject = [
    // X.509 caps a common name at 64 characters.
    { name: 'commonName', value: `berth local CA (${hostname().slice(0, 40)})` },
    { name: 'organizationName', value: 'berth' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(privateKey, forge.md.sha256.create());
  const certPem = toPem(cert);
  return { certPem, keyPem, cert: new X509Certificate(certPem), key: createPrivateKey(keyPem) };
}

/**
 * The server's key is ECDSA P-256, not RSA: a full TLS handshake signs with it, and P-256
 * signs about 20 times faster than RSA 2048 (bench/tls: the balancer's handshakes per second
 * went from 0.43-0.46x nginx's to 0.50-0.69x). The CA stays RSA, so a CA users already trust
 * signs the new certificates.
 */
function newServerKey(): { keyPem: string; spkiDer: Buffer; point: Buffer } {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = pair.publicKey.export({ format: 'jwk' });
  return {
    keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    spkiDer: pair.publicKey.export({ type: 'spki', format: 'der' }),
    // The uncompressed point (0x04 || X || Y): the subjectPublicKey bits.
    point: Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]),
  };
}

/** What node-forge has and its type definitions do not declare. */
const forgeUndeclared = forge as unknown as {
  pki: { getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1 };
  asn1: { fromDer(bytes: string, options: { decodeBitStrings: boolean }): forge.asn1.Asn1 };
};

function makeServerCertificate(ca: Pair, names: RequestedNames): { certPem: string; keyPem: string } {
  const { asn1, pki } = forge;
  const { keyPem, spkiDer, point } = newServerKey();
  // Parsing the CA with forge is only to copy its subject and key identifier into the new
  // certificate; whether the CA is sound was checked with Node.
  const caCert = pki.certificateFromPem(ca.certPem);
  const cert = pki.createCertificate();
  // forge writes only RSA key info: the CA's public key stands in until the P-256 key info
  // replaces it in the signed part below.
  cert.publicKey = caCert.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(Date.now() + DEFAULT_SERVER_VALIDITY_DAYS * DAY_MS);
  cert.setSubject([{ name: 'commonName', value: names.dns.find((n) => n !== 'localhost' && !n.startsWith('*') && n.length <= 64) ?? 'localhost' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...names.dns.map((value) => ({ type: 2, value })), ...names.ips.map((ip) => ({ type: 7, ip }))],
    },
    // RFC 5280 4.2.1.2, method 1: the SHA-1 of the subjectPublicKey bits.
    { name: 'subjectKeyIdentifier', value: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, createHash('sha1').update(point).digest('binary')) },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.siginfo.algorithmOid = pki.oids.sha256WithRSAEncryption!;
  const tbs = forgeUndeclared.pki.getTBSCertificate(cert);
  // TBSCertificate: version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, extensions.
  (tbs.value as forge.asn1.Asn1[])[6] = forgeUndeclared.asn1.fromDer(spkiDer.toString('binary'), { decodeBitStrings: false });
  const tbsDer = asn1.toDer(tbs).getBytes();
  // Signed by the CA's RSA key with Node (PKCS #1 v1.5 with SHA-256, as the algorithm above says).
  const signature = sign('sha256', Buffer.from(tbsDer, 'binary'), ca.key);
  const signed = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(pki.oids.sha256WithRSAEncryption!).getBytes()),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
    ]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\0${signature.toString('binary')}`),
  ]);
  const certPem = forge.pem.encode({ type: 'CERTIFICATE', body: asn1.toDer(signed).getBytes() }).replace(/\r\n/g, '\n');
  // The chain goes with the certificate so that clients given only the CA can build the path.
  return { certPem: certPem + ca.certPem, keyPem };
}

/** Temp file + rename, so a reader (or a crash) never sees a half-written file; the mode is set before the rename. */
async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', mode);
  try {
    // chmod as well as open's mode: a strict umask would otherwise make ca.pem unreadable to the users meant to copy it.
    await handle.chmod(mode);
    await handle.writeFile(content);
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw err;
  }
}
