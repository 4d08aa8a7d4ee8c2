import type { Logger } from 'pino';
import { BerthError } from '../common/errors.js';

/** After a failed renewal, the next try comes this soon. */
const RENEW_RETRY_MS = 150;
/** A run of failed renewals is logged at most this often. */
const FAILURE_LOG_EVERY_MS = 5000;

/** The control-plane grace (control-plane-grace.ts' ControlPlaneWatch), as a lease sees it. */
export interface GraceHook {
  /** While Redis is away for every machine: how far past `validUntil` an app may keep running; undefined: not past it. */
  extendedUntil(validUntil: number): number | undefined;
}

export interface LeaseKeeperOptions {
  /** Sends one renewal of the claim; resolves the instance's state as the registry has it. */
  renew: () => Promise<{ state: string }>;
  leaseMs: number;
  /** Renewals come this often (well inside the lease). */
  renewEveryMs: number;
  /** Kept between the moment the app must be dead and the lease's end (a renewal's round trip, the reaper's tick). */
  fenceMarginMs: number;
  /** Absent: never past the lease. */
  controlPlane?: GraceHook;
  /** The instance's logger. */
  logger: Logger;
  /** The instance in messages: `app/id`. */
  label: string;
  /** The deadline moved (a renewal came through): tell the shim. */
  onDeadline: () => void;
  /** The registry retires the instance (seen at a renewal): stop it and confirm. */
  onRetired: () => Promise<void>;
  /**
   * Stop the app: the claim is gone (another epoch holds it, or the instance is), or
   * (`fenced`) it cannot be renewed before the lease may end, so it may be claimed elsewhere.
   */
  onLost: (fenced: boolean) => Promise<void>;
}

/**
 * One claim's lease on this machine: renews it on a timer, knows the monotonic deadline
 * before which the app must be dead (the lease's, or later while Redis is away for every
 * machine: the control-plane grace), and fences (stops the app itself) when a renewal cannot
 * come in time.
 */
export class LeaseKeeper {
  /** Monotonic time (ms) before which the app must be dead unless the lease is renewed. */
  private validUntil: number;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private renewing = false;
  private closed = false;
  private pastLeaseLogged = false;
  private lastFailureLogged = 0;

  constructor(
    private readonly o: LeaseKeeperOptions,
    /** Monotonic time the claim (or the renewal that re-adopted it) was sent. */
    claimSentAt: number,
  ) {
    this.validUntil = claimSentAt + o.leaseMs - o.fenceMarginMs;
  }

  /** Renews every renewEveryMs from now on. */
  start(): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.renewOnce(), this.o.renewEveryMs);
  }

  /** No more renewals (the instance is done here, or left to its shim). */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
  }

  /** Renews at once (Redis is back: renewals come before anything else). */
  renewNow(): Promise<void> {
    return this.renewOnce();
  }

  /** Monotonic time before which the app must be dead: the lease's, or later while Redis is away for everyone. */
  deadline(): number {
    const extended = this.o.controlPlane?.extendedUntil(this.validUntil);
    return extended === undefined ? this.validUntil : Math.max(this.validUntil, extended);
  }

  /** How long from now the app may run unless renewed (what its shim is told). */
  validForMs(): number {
    return Math.max(0, this.deadline() - performance.now());
  }

  private async renewOnce(): Promise<void> {
    if (this.renewing || this.closed) return;
    this.renewing = true;
    const sentAt = performance.now();
    const { logger: log, label } = this.o;
    try {
      const { state } = await this.o.renew();
      this.validUntil = sentAt + this.o.leaseMs - this.o.fenceMarginMs;
      this.pastLeaseLogged = false;
      this.o.onDeadline();
      if (state === 'stopping') await this.o.onRetired();
    } catch (err) {
      if (err instanceof BerthError && (err.code === 'stale_epoch' || err.code === 'instance_not_found')) {
        log.warn({ code: err.code }, `lost the claim on ${label}: stopping it`);
        await this.o.onLost(false);
      } else if (performance.now() >= this.deadline()) {
        // Self-fencing: the lease may run out before Redis hears from us again.
        if (this.pastLeaseLogged) log.error({ err: errMessage(err) }, `Redis stayed away past the control-plane grace: stopping ${label}`);
        else log.error({ err: errMessage(err) }, `cannot renew the lease of ${label} in time: stopping it before it can be claimed elsewhere`);
        await this.o.onLost(true);
      } else {
        if (performance.now() >= this.validUntil && !this.pastLeaseLogged) {
          this.pastLeaseLogged = true;
          log.warn(
            { msLeft: Math.round(this.deadline() - performance.now()) },
            `cannot renew the lease of ${label} in time, but Redis is away for every machine: it keeps running past its lease (for a bounded grace)`,
          );
        }
        if (performance.now() - this.lastFailureLogged > FAILURE_LOG_EVERY_MS) {
          this.lastFailureLogged = performance.now();
          log.warn({ err: errMessage(err), msLeft: Math.round(this.validUntil - performance.now()) }, 'lease renewal failed: retrying');
        }
        // Every moment counts now: try again soon rather than at the next regular renewal.
        clearTimeout(this.retryTimer);
        if (!this.closed) this.retryTimer = setTimeout(() => void this.renewOnce(), RENEW_RETRY_MS);
      }
    } finally {
      this.renewing = false;
    }
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
