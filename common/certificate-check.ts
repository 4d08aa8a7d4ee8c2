import { createPrivateKey, X509Certificate } from 'node:crypto';

/** What berth shows of a certificate: who issued it and when it is valid (ms since the epoch). */
export interface CertificateFacts {
  issuer: string;
  notBefore: number;
  notAfter: number;
  /** Hex, as openssl prints it: tells one issuance from the next. */
  serial: string;
}

/** The facts of the first certificate of a PEM chain; throws when it is not one. */
export function certificateFacts(certPem: string): CertificateFacts {
  const x = new X509Certificate(certPem);
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(x.issuer)?.[1];
  return { issuer: cn ?? x.issuer.replace(/\n/g, ', '), notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo), serial: x.serialNumber };
}

/** The two kinds of key a balancer serves certificates for: a domain may have one of each. */
export type CertificateKeyType = 'ecdsa' | 'rsa';

/** The key type of the first certificate of a PEM chain (undefined: neither RSA nor ECDSA); throws when it is not one. */
export function certificateKeyType(certPem: string): CertificateKeyType | undefined {
  const type = new X509Certificate(certPem).publicKey.asymmetricKeyType;
  return type === 'ec' ? 'ecdsa' : type === 'rsa' ? 'rsa' : undefined;
}

/**
 * Why the pair cannot serve `domain` (a sentence to show a user), or undefined when it can:
 * not a PEM certificate or key, a key that is not the certificate's, expired (or not valid
 * yet), a certificate whose names do not cover the domain (a wildcard domain needs the
 * same wildcard in the certificate), or a key neither RSA nor ECDSA.
 */
export function certificateProblem(certPem: string, keyPem: string, domain: string, now = Date.now()): string | undefined {
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
  } catch {
    return 'the certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)';
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return 'the key is not a PEM private key (unencrypted: -----BEGIN PRIVATE KEY-----)';
  }
  if (!x.checkPrivateKey(key)) return 'the key does not match the certificate: give the key the certificate was made for';
  if (Date.parse(x.validTo) <= now) return `the certificate expired on ${new Date(x.validTo).toISOString()}: renew it first`;
  if (Date.parse(x.validFrom) > now) return `the certificate is not valid before ${new Date(x.validFrom).toISOString()}`;
  const names = (x.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  const covered = domain.startsWith('*.') ? names.includes(domain) : x.checkHost(domain, { subject: 'never' }) !== undefined;
  if (!covered) return `the certificate does not cover ${domain} (it names ${names.length === 0 ? 'no DNS name' : names.join(', ')})`;
  // Ed25519 and the like: no browser accepts them from a server yet.
  if (key.asymmetricKeyType !== 'ec' && key.asymmetricKeyType !== 'rsa') return `its key is ${key.asymmetricKeyType?.toUpperCase() ?? 'of an unknown type'}: the balancers serve RSA and ECDSA certificates; have it made for one of those keys`;
  return undefined;
}
