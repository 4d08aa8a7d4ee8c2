import type { RedisClient } from '../common/redis-connection.js';

/** How often the proxy checks that it reaches Redis. */
export const REDIS_PROBE_EVERY_MS = 250;
/** A probe unanswered this long counts as failed. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * The body of `GET /_berth/control-plane` (internal: a machine's hoster asks the others' proxies
 * directly; the balancer does not forward it). With it a hoster that cannot reach Redis tells
 * "Redis is away for every machine" (keep the apps running) from "this machine alone is cut
 * off" (stop them before their leases end): see hoster/control-plane-grace.ts.
 */
export interface ControlPlaneReport {
  machine: string;
  redis: {
    /** How long ago this proxy last got an answer from Redis; null: never since it started. */
    reachedAgoMs: number | null;
    /**
     * How long ago a probe last failed (no answer in time, or an error); null: none did. Silence
     * is believed only with a recent failure: a proxy that merely stalled has none.
     */
    failedAgoMs: number | null;
    /** How often it asks: `reachedAgoMs` may be this much older than the truth. */
    probeEveryMs: number;
  };
  /**
   * Instances its machine runs by this proxy's last table (routed ones and workers): then its
   * hoster holds claims, which the asking hoster may not have read yet (claims made just before
   * Redis went away). Absent from proxies before it was added.
   */
  localInstances?: number;
}

/**
 * Knows when this proxy last reached Redis: a PING every REDIS_PROBE_EVERY_MS on its command
 * connection (never two at once). Measured on the monotonic clock.
 */
export class RedisContact {
  private lastOk: number | undefined;
  private lastFailed: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly machine: string,
    /** How many instances this machine runs, by the proxy's table. */
    private readonly localInstances: () => number = () => 0,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.probe(), REDIS_PROBE_EVERY_MS);
    this.timer.unref();
    void this.probe();
  }

  close(): void {
    clearInterval(this.timer);
  }

  report(): ControlPlaneReport {
    const ago = (t: number | undefined) => (t === undefined ? null : Math.round(performance.now() - t));
    return { machine: this.machine, redis: { reachedAgoMs: ago(this.lastOk), failedAgoMs: ago(this.lastFailed), probeEveryMs: REDIS_PROBE_EVERY_MS }, localInstances: this.localInstances() };
  }

  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.redis.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('probe timed out')), PROBE_TIMEOUT_MS);
        }),
      ]);
      this.lastOk = performance.now();
    } catch {
      this.lastFailed = performance.now();
    } finally {
      clearTimeout(timer);
      this.probing = false;
    }
  }
}
