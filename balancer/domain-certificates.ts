import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { CertificateStore } from '../registry/store/index.js';
import { tlsServerOptions } from './tls-options.js';

interface Pair {
  context: SecureContext;
  notAfter: number;
}

/** A domain's certificates, at most one per key type. */
interface Served {
  ecdsa?: Pair;
  rsa?: Pair;
}

const valid = (p: Pair | undefined, now: number): p is Pair => p !== undefined && p.notAfter > now;

/**
 * The certificates of the apps' domains (ACME's and operators'), kept from Redis for SNI: a
 * new or renewed one is picked up from its `certificate-changed` event (and by a periodic
 * reload), and served to new connections from then on; connections open keep theirs. A
 * domain here has a trusted certificate: plain HTTP on it is redirected, and HSTS is sent.
 *
 * A domain may have an ECDSA and an RSA certificate. Node copies one certificate of a context
 * chosen by SNI into the connection, beside the default context's (berth's own ECDSA one), so
 * an RSA certificate is served from a context of its own on a listener without a default
 * certificate (client-server.ts), chosen before the handshake from the client's hello
 * (wantsRsa): to clients that cannot take ECDSA, and when the domain has no ECDSA certificate.
 */
export class DomainCertificates {
  private readonly served = new Map<string, Served>();

  constructor(private readonly o: { certificates: CertificateStore; logger: Logger }) {}

  /** Reads every certificate again (at start, and as a safety net besides events). */
  async reloadAll(): Promise<void> {
    const domains = new Set(await this.o.certificates.domains());
    for (const domain of [...this.served.keys()]) if (!domains.has(domain)) this.served.delete(domain);
    for (const domain of domains) await this.reload(domain);
  }

  async reload(domain: string): Promise<void> {
    try {
      const c = await this.o.certificates.servable(domain);
      const now = Date.now();
      const pairs = (c?.pairs ?? []).filter((p) => p.notAfter > now);
      if (c === undefined || pairs.length === 0) {
        this.served.delete(domain);
        return;
      }
      const known = this.served.get(domain);
      const next: Served = {};
      for (const p of pairs) next[p.keyType] = { context: createSecureContext(tlsServerOptions({ cert: p.cert, key: p.key })), notAfter: p.notAfter };
      this.served.set(domain, next);
      for (const p of pairs) {
        if (known?.[p.keyType]?.notAfter !== p.notAfter) this.o.logger.info({ domain, source: c.source, keyType: p.keyType, notAfter: new Date(p.notAfter).toISOString() }, `serving a${p.keyType === 'rsa' ? 'n RSA' : 'n ECDSA'} certificate for ${domain}`);
      }
    } catch (err) {
      this.o.logger.warn({ domain, err: err instanceof Error ? err.message : String(err) }, `cannot serve the certificate of ${domain} (a key sealed with another BERTH_ACME_KEY_FILE?): keeping what was served`);
    }
  }

  /** The context for a name (lowercase, no trailing dot) on the main listener: its ECDSA certificate, else its RSA one. */
  contextFor(name: string): SecureContext | undefined {
    const now = Date.now();
    const s = this.entryFor(name, now);
    return s === undefined ? undefined : valid(s.ecdsa, now) ? s.ecdsa.context : s.rsa?.context;
  }

  /** The RSA context for a name, for the listener without a default certificate. */
  rsaContextFor(name: string): SecureContext | undefined {
    const now = Date.now();
    const rsa = this.entryFor(name, now)?.rsa;
    return valid(rsa, now) ? rsa.context : undefined;
  }

  /** Whether a client asking for `name` is to get its RSA certificate: it has one, and no ECDSA one the client takes. */
  wantsRsa(name: string, acceptsEcdsa: boolean): boolean {
    const now = Date.now();
    const s = this.entryFor(name, now);
    return s !== undefined && valid(s.rsa, now) && !(acceptsEcdsa && valid(s.ecdsa, now));
  }

  /** Whether any domain has an RSA certificate (only then are clients' hellos read before the handshake). */
  get servesRsa(): boolean {
    for (const s of this.served.values()) if (s.rsa !== undefined) return true;
    return false;
  }

  /** Whether `name` has a trusted certificate here now. */
  trusted(name: string): boolean {
    return this.entryFor(name, Date.now()) !== undefined;
  }

  /** Exact, then the wildcard one level up: the first with a certificate valid now. */
  private entryFor(name: string, now: number): Served | undefined {
    const live = (s: Served | undefined) => (s !== undefined && (valid(s.ecdsa, now) || valid(s.rsa, now)) ? s : undefined);
    const exact = live(this.served.get(name));
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? live(this.served.get(`*${name.slice(dot)}`)) : undefined;
  }
}
