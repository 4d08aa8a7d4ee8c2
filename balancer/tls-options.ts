import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions, type SecureVersion } from 'node:tls';
import { BerthError } from '../common/errors.js';

/**
 * ECDHE only (forward secrecy), AEAD only (GCM, ChaCha20-Poly1305), as in Mozilla's
 * "intermediate" profile minus DHE. These apply to TLS 1.2; TLS 1.3 keeps OpenSSL's default
 * suites, which are all modern.
 */
export const DEFAULT_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
export const DEFAULT_ECDH_CURVE = 'X25519:P-256:P-384';
/** Seconds a session may be resumed for. */
export const DEFAULT_SESSION_TIMEOUT_S = 300;
/** A client that has not finished its handshake by then is dropped (Node's own default is 120 s). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How often watched certificate files are polled. */
export const DEFAULT_WATCH_INTERVAL_MS = 1000;

export interface TlsServerOptionsInput {
  /** PEM: the certificate, optionally followed by its chain. */
  cert: string | Buffer;
  /** PEM private key matching `cert`. */
  key: string | Buffer;
  /** @default DEFAULT_HANDSHAKE_TIMEOUT_MS */
  handshakeTimeoutMs?: number;
  /** @default DEFAULT_SESSION_TIMEOUT_S */
  sessionTimeoutS?: number;
}

export interface TlsServerOptions extends SecureContextOptions {
  cert: string | Buffer;
  key: string | Buffer;
  minVersion: SecureVersion;
  ciphers: string;
  honorCipherOrder: boolean;
  ecdhCurve: string;
  ticketKeys: Buffer;
  sessionTimeout: number;
  /** A tls.Server option, not a context one: setSecureContext ignores it. */
  handshakeTimeout: number;
}

// One set of ticket keys per process: contexts rebuilt on a certificate reload keep them, so
// sessions issued before the reload still resume after it.
let processTicketKeys: Buffer | undefined;

/** Options for https.createServer / tls.createServer and for server.setSecureContext. */
export function tlsServerOptions(input: TlsServerOptionsInput): TlsServerOptions {
  const handshakeTimeout = input.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const sessionTimeout = input.sessionTimeoutS ?? DEFAULT_SESSION_TIMEOUT_S;
  if (!(Number.isSafeInteger(handshakeTimeout) && handshakeTimeout > 0)) {
    throw new RangeError(`tlsServerOptions handshakeTimeoutMs must be a positive integer, got ${handshakeTimeout}.`);
  }
  if (!(Number.isSafeInteger(sessionTimeout) && sessionTimeout > 0)) {
    throw new RangeError(`tlsServerOptions sessionTimeoutS must be a positive integer, got ${sessionTimeout}.`);
  }
  processTicketKeys ??= randomBytes(48);
  return {
    cert: input.cert,
    key: input.key,
    minVersion: 'TLSv1.2',
    ciphers: DEFAULT_TLS12_CIPHERS,
    honorCipherOrder: true,
    ecdhCurve: DEFAULT_ECDH_CURVE,
    ticketKeys: processTicketKeys,
    sessionTimeout,
    handshakeTimeout,
  };
}

/**
 * Checks that `certPem` and `keyPem` form a pair a server can use: both parse, the key
 * belongs to the (first) certificate, and OpenSSL accepts them under our TLS settings.
 * Throws a BerthError (invalid_config) saying which file to fix.
 */
export function checkCertificatePair(certPem: string, keyPem: string, names: { certPath?: string; keyPath?: string } = {}): void {
  const certName = names.certPath ?? 'the certificate';
  const keyName = names.keyPath ?? 'the key';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new BerthError('invalid_config', `TLS certificate ${certName} is not a PEM certificate: fix or replace it.`, { cause: err });
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new BerthError('invalid_config', `TLS key ${keyName} is not an unencrypted PEM private key: fix or replace it.`, { cause: err });
  }
  if (!cert.checkPrivateKey(key)) {
    throw new BerthError('invalid_config', `TLS key ${keyName} does not belong to certificate ${certName}: install the matching pair.`);
  }
  try {
    // What setSecureContext would do: catches what parses but OpenSSL refuses (a key too weak, a broken chain entry).
    createSecureContext(tlsServerOptions({ cert: certPem, key: keyPem }));
  } catch (err) {
    throw new BerthError('invalid_config', `TLS certificate ${certName} with key ${keyName} is refused by OpenSSL: ${(err as Error).message}.`, { cause: err });
  }
}

/** Reads a configured certificate and key and checks them (see checkCertificatePair). */
export async function loadCertificatePair(paths: { certPath: string; keyPath: string }): Promise<{ cert: string; key: string }> {
  const [cert, key] = await Promise.all([readFile(paths.certPath, 'utf8'), readFile(paths.keyPath, 'utf8')]);
  checkCertificatePair(cert, key, paths);
  return { cert, key };
}

export interface WatchCertificateFilesOptions {
  certPath: string;
  keyPath: string;
  /** A new, valid pair: hand it to server.setSecureContext. */
  onChange: (options: TlsServerOptions) => void;
  /** The files changed but are not a usable pair (yet): the old one stays in use. */
  onError: (err: Error) => void;
  /** @default DEFAULT_WATCH_INTERVAL_MS */
  intervalMs?: number;
  /** Passed through to tlsServerOptions. */
  handshakeTimeoutMs?: number;
  sessionTimeoutS?: number;
}

/**
 * Polls the certificate and key files and reports each new valid pair. Polling (rather than
 * fs.watch) follows editors and tools like certbot that replace files by rename. A change to
 * one file while the other is not yet replaced reports an error and keeps the old pair; the
 * change to the second file then succeeds.
 */
export function watchCertificateFiles(options: WatchCertificateFilesOptions): { close: () => void } {
  const { certPath, keyPath, onChange, onError } = options;
  const interval = options.intervalMs ?? DEFAULT_WATCH_INTERVAL_MS;
  // Content, not mtime, decides: a touch, or both files' events for one renewal, must not
  // rebuild the context twice.
  let current = digestOf(readOrNull(certPath), readOrNull(keyPath));
  let closed = false;
  let running = false;
  let again = false;

  const reload = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        let cert: string;
        let key: string;
        try {
          [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
        } catch (err) {
          if (!closed) onError(new BerthError('invalid_config', `TLS files could not be read (${(err as Error).message}): keeping the current certificate.`, { cause: err }));
          continue;
        }
        const digest = digestOf(cert, key);
        if (digest === current || closed) continue;
        try {
          checkCertificatePair(cert, key, { certPath, keyPath });
        } catch (err) {
          onError(err as Error);
          continue;
        }
        current = digest;
        try {
          onChange(tlsServerOptions({ cert, key, handshakeTimeoutMs: options.handshakeTimeoutMs, sessionTimeoutS: options.sessionTimeoutS }));
        } catch (err) {
          // A throwing setSecureContext must not become an unhandled rejection of the poller.
          onError(err as Error);
        }
      } while (again && !closed);
    } finally {
      running = false;
    }
  };

  // Each file's identity as last seen, taken now (synchronously): fs.watchFile takes its first
  // look later, on the thread pool, and a file replaced before that look would go unnoticed.
  const seen = new Map([certPath, keyPath].map((path) => [path, identityOf(path)] as const));
  const timer = setInterval(() => {
    let changed = false;
    for (const [path, before] of seen) {
      const now = identityOf(path);
      if (now !== before) {
        seen.set(path, now);
        changed = true;
      }
    }
    if (changed) void reload();
  }, interval);
  // Not persistent: the watcher alone must not keep a daemon alive; its server does.
  timer.unref();

  return {
    close: () => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
    },
  };
}

/** What tells a file's content changed without reading it: its inode, size and modification time. */
function identityOf(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function digestOf(cert: string | null, key: string | null): string {
  return createHash('sha256').update(`${cert ?? ''}\0${key ?? ''}`).digest('hex');
}
