import { resolve } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { BerthError } from '../common/errors.js';
import { loadCertificatePair, tlsServerOptions, watchCertificateFiles } from './tls-options.js';

/** One `--tls-host` entry: the certificate served to clients asking (SNI) for `name`. */
export interface HostCertificateSpec {
  /** Lower case; `*.example.com` matches one label under example.com. */
  name: string;
  certPath: string;
  keyPath: string;
}

const HOST_NAME = /^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * Parses `name=certfile:keyfile` entries (paths relative to the working directory). Throws an
 * invalid_config BerthError naming the bad entry.
 */
export function parseHostCertificates(entries: readonly string[]): HostCertificateSpec[] {
  const seen = new Set<string>();
  return entries.map((entry) => {
    const eq = entry.indexOf('=');
    const colon = entry.lastIndexOf(':');
    const name = entry.slice(0, Math.max(eq, 0)).trim().toLowerCase().replace(/\.$/, '');
    const certPath = entry.slice(eq + 1, colon).trim();
    const keyPath = entry.slice(colon + 1).trim();
    if (eq <= 0 || colon < eq || certPath === '' || keyPath === '' || !HOST_NAME.test(name) || name.length > 253) {
      throw new BerthError('invalid_config', `TLS host entry ${JSON.stringify(entry)} is not name=certfile:keyfile (e.g. shop.example.com=/etc/berth/shop.pem:/etc/berth/shop-key.pem): fix --tls-host / BERTH_TLS_HOSTS.`);
    }
    if (seen.has(name)) throw new BerthError('invalid_config', `TLS host ${name} is given twice: keep one certificate per name in --tls-host / BERTH_TLS_HOSTS.`);
    seen.add(name);
    return { name, certPath: resolve(certPath), keyPath: resolve(keyPath) };
  });
}

/**
 * One certificate per configured host name, chosen by the name a client asks for (SNI);
 * any other name, or none, gets the server's default certificate. Each pair is checked when
 * loaded and reloaded when its files change, as the default certificate is (a bad new pair
 * is refused and the old one kept). Contexts share the process's ticket keys, so a session
 * resumes whichever certificate served it.
 */
export class HostCertificates {
  private readonly contexts = new Map<string, SecureContext>();
  private readonly watchers: { close: () => void }[] = [];

  private constructor() {}

  static async load(specs: readonly HostCertificateSpec[], events: { reloaded: (name: string) => void; failed: (name: string, err: Error) => void }): Promise<HostCertificates> {
    const hosts = new HostCertificates();
    for (const spec of specs) {
      const pair = await loadCertificatePair(spec);
      hosts.contexts.set(spec.name, createSecureContext(tlsServerOptions(pair)));
      hosts.watchers.push(
        watchCertificateFiles({
          certPath: spec.certPath,
          keyPath: spec.keyPath,
          onChange: (options) => {
            hosts.contexts.set(spec.name, createSecureContext(options));
            events.reloaded(spec.name);
          },
          onError: (err) => events.failed(spec.name, err),
        }),
      );
    }
    return hosts;
  }

  get size(): number {
    return this.contexts.size;
  }

  /** The context for `servername`: an exact name first, then a wildcard one label up. */
  contextFor(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = this.contexts.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.contexts.get(`*${name.slice(dot)}`) : undefined;
  }

  /** For the server's SNICallback option: no context means the default certificate. */
  readonly sniCallback = (servername: string, done: (err: Error | null, ctx?: SecureContext) => void): void => {
    done(null, this.contextFor(servername));
  };

  close(): void {
    for (const w of this.watchers) w.close();
  }
}
