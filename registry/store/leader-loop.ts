import type { Logger } from '../../common/logger.js';
import { BerthError } from '../../common/errors.js';
import type { RegistryStore } from './registry-store.js';

export interface LeaderLoopOptions {
  store: RegistryStore;
  /** The lease key (e.g. `store.keys.reconcilerLease`): one holder at a time acts. */
  leaseKey: string;
  /** This process's holder id. */
  holder: string;
  leaseMs: number;
  intervalMs: number;
  logger: Logger;
  /** What the log calls this loop ("reconciler", "scaler") and its two states. */
  says: { name: string; leading: string; following: string };
  /** One round of work, run only while this process holds the lease. */
  round: () => Promise<void>;
  /** Called after each round completed as the holder. */
  onRound?: () => void;
}

/**
 * A loop that any number of processes run and only one acts in: each round first holds (or
 * takes) a lease in Redis, then works; a round that fails is logged and retried, Redis being
 * away is logged once when it goes and once when it comes back; close() gives the lease up.
 */
export class LeaderLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private leading = false;
  private failing = false;

  constructor(private readonly o: LeaderLoopOptions) {}

  start(): this {
    this.schedule(0);
    return this;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** True once close() was called: a long round checks it to stop early. */
  get stopped(): boolean {
    return this.closed;
  }

  /** The lease was found lost mid-round (a fenced write refused): act no more until it is held again. */
  lost(): void {
    this.leading = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
    if (this.leading) {
      await this.o.store.holdLeadership(this.o.leaseKey, this.o.holder, this.o.leaseMs, 'drop').catch(() => undefined);
      this.leading = false;
    }
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.running = this.runRound().finally(() => this.schedule(this.o.intervalMs));
    }, delayMs);
  }

  private async runRound(): Promise<void> {
    const { logger: log, says } = this.o;
    try {
      const leading = await this.o.store.holdLeadership(this.o.leaseKey, this.o.holder, this.o.leaseMs, 'hold');
      if (leading !== this.leading) log.info({ holder: this.o.holder }, leading ? says.leading : says.following);
      this.leading = leading;
      if (!leading) return;
      await this.o.round();
      if (this.failing) log.info(`${says.name} reaches Redis again`);
      this.failing = false;
      this.o.onRound?.();
    } catch (err) {
      if (err instanceof BerthError && err.code === 'redis_unavailable') {
        if (!this.failing) log.warn(`${says.name} cannot reach Redis: will keep trying`);
        this.failing = true;
      } else log.error({ err }, `${says.name} round failed: will retry`);
    }
  }
}
