import type { Logger } from 'pino';
import type { RegistryStore } from '../registry/store/index.js';

/**
 * Claims whose apps this machine stopped because it could not renew their leases (Redis out
 * of reach): their claims may still stand in Redis. Once Redis answers again they are given
 * back (release reason `fenced`), so that they run again at once rather than when their
 * leases expire.
 */
export class FencedClaims {
  private readonly claims = new Map<string, { app: string; id: string; epoch: number; until: number }>();

  constructor(private readonly o: { store: RegistryStore; machine: string; logger: Logger }) {}

  /** Remember a claim fenced now; worth giving back only for `forMs` (after that its lease has surely ended). */
  add(claim: { app: string; id: string; epoch: number }, forMs: number): void {
    this.claims.set(claim.id, { app: claim.app, id: claim.id, epoch: claim.epoch, until: performance.now() + forMs });
  }

  /** Gives back every claim remembered (each once; a failure is left to its lease). */
  async giveBack(): Promise<void> {
    const now = performance.now();
    for (const [id, f] of this.claims) {
      this.claims.delete(id);
      if (now > f.until) continue;
      await this.o.store
        .release({ service: f.app, id: f.id, machine: this.o.machine, epoch: f.epoch, reason: 'fenced' })
        .then(() => this.o.logger.info({ app: f.app, instance: f.id, epoch: f.epoch }, `gave back the claim on ${f.app}/${f.id}, stopped while Redis was out of reach: it runs again as soon as it is claimed`))
        .catch(() => undefined);
    }
  }
}
