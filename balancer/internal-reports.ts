import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The paths that are berth's own, not an app's: the balancer's status and metrics, and the
 * proxies' reports (/_berth/load, /_berth/culprit, /_berth/routes…). They name machines,
 * instances, pids, ports and CPU by app, so the public door answers them only to a request
 * with a berth token; `/_berth/health` stays open for load balancers in front.
 */
export function isInternalPath(path: string): boolean {
  if (path === '/_berth/health') return false;
  return path === '/metrics' || path === '/_berth' || path.startsWith('/_berth/');
}

/** Checks a request's bearer token without holding any token: by digest, against the admin ones and the named ones. */
export class ReportAccess {
  private readonly admin: Buffer[];

  constructor(
    /** sha256 (hex) of the admin tokens (BERTH_TOKEN_SHA256). */
    adminDigests: readonly string[],
    /** Whether a named token with this sha256 (hex) exists (the registry's tokens in Redis), when Redis is there. */
    private readonly named: ((digest: string) => Promise<boolean>) | undefined,
  ) {
    this.admin = adminDigests.map((d) => Buffer.from(d, 'hex'));
  }

  async allows(headers: IncomingHttpHeaders): Promise<boolean> {
    const match = headers.authorization === undefined ? null : /^Bearer ([\x21-\x7e]{1,512})$/i.exec(headers.authorization);
    if (match === null) return false;
    const given = createHash('sha256').update(match[1]!).digest();
    let ok = false;
    for (const d of this.admin) ok = (d.length === given.length && timingSafeEqual(d, given)) || ok;
    if (ok) return true;
    if (this.named === undefined) return false;
    return this.named(given.toString('hex')).catch(() => false);
  }
}
