import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { CertificateStore } from '../registry/store/index.js';
import { tlsServerOptions } from './tls-options.js';

interface Served {
  context: SecureContext;
  notAfter: number;
}

/**
 * The certificates of the apps' domains (ACME's and operators'), kept from Redis for SNI: a
 * new or renewed one is picked up from its `certificate-changed` event (and by a periodic
 * reload), and served to new connections from then on; connections open keep theirs. A
 * domain here has a trusted certificate: plain HTTP on it is redirected, and HSTS is sent.
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
      if (c === undefined || c.notAfter <= Date.now()) {
        this.served.delete(domain);
        return;
      }
      const known = this.served.get(domain);
      this.served.set(domain, { context: createSecureContext(tlsServerOptions({ cert: c.cert, key: c.key })), notAfter: c.notAfter });
      if (known === undefined || known.notAfter !== c.notAfter) this.o.logger.info({ domain, source: c.source, notAfter: new Date(c.notAfter).toISOString() }, `serving a certificate for ${domain}`);
    } catch (err) {
      this.o.logger.warn({ domain, err: err instanceof Error ? err.message : String(err) }, `cannot serve the certificate of ${domain} (a key sealed with another BERTH_ACME_KEY_FILE?): keeping what was served`);
    }
  }

  /** The context for a name (lowercase, no trailing dot): exact, then the wildcard one level up. */
  contextFor(name: string): SecureContext | undefined {
    const exact = this.served.get(name);
    if (exact !== undefined && exact.notAfter > Date.now()) return exact.context;
    const dot = name.indexOf('.');
    const wildcard = dot > 0 ? this.served.get(`*${name.slice(dot)}`) : undefined;
    return wildcard !== undefined && wildcard.notAfter > Date.now() ? wildcard.context : undefined;
  }

  /** Whether `name` has a trusted certificate here now. */
  trusted(name: string): boolean {
    return this.contextFor(name) !== undefined;
  }
}
