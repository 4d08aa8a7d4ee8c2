/** The first restart after a crash waits this long, doubling with each crash in the window. */
export const FIRST_RESTART_MS = 250;
/** The longest wait before a restart. */
export const MAX_RESTART_MS = 10_000;

/** How an app's process ended, as its shim saw it. */
export interface AppExit {
  code: number | null;
  signal: string | null;
  /** The kernel killed it for going over its cgroup's memory limit. */
  oom?: boolean;
}

export type CrashVerdict =
  /** Start it again after `backoffMs`. */
  | { kind: 'restart'; backoffMs: number; crashes: number }
  /**
   * Too many crashes in the window: release the instance as `reason` (`out_of_memory` when the
   * last was the kernel's kill at its memory limit), with `summary` as its detail's first line.
   */
  | { kind: 'crash_loop'; reason: 'crash_loop' | 'out_of_memory'; crashes: number; summary: string };

/** Wait before restarting an app that crashed `crashes` times within the window (this one included). */
export function restartBackoffMs(crashes: number): number {
  return Math.min(FIRST_RESTART_MS * 2 ** (Math.max(1, crashes) - 1), MAX_RESTART_MS);
}

/**
 * One instance's crashes: each exit of its app (or stop for failing its health check while
 * it ran) is a crash; `limit` of them within `windowMs` make a crash loop, and before that each
 * restart waits a little longer. Pure: the caller gives the (monotonic) time.
 */
export class CrashPolicy {
  private crashes: number[] = [];
  /** Why the app was last stopped for failing its health check, quoted if that becomes a crash loop. */
  private unhealthy: string | undefined;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {
    if (!(Number.isSafeInteger(limit) && limit > 0)) throw new RangeError(`CrashPolicy limit must be a positive integer, got ${limit}.`);
    if (!(windowMs > 0)) throw new RangeError(`CrashPolicy windowMs must be positive, got ${windowMs}.`);
  }

  /** The app is being stopped for failing its health check (`detail`: what the checks saw): its exit is that crash. */
  failedHealthCheck(detail: string): void {
    this.unhealthy = detail;
  }

  /** The app ended at `now`: restart it, or it is crash-looping. */
  exited(exit: AppExit, now: number): CrashVerdict {
    this.crashes = [...this.crashes.filter((t) => now - t < this.windowMs), now];
    const crashes = this.crashes.length;
    if (crashes >= this.limit) {
      const how = exit.oom ? 'went over its memory limit' : this.unhealthy !== undefined ? `failed its health check (${this.unhealthy})` : exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      return { kind: 'crash_loop', reason: exit.oom ? 'out_of_memory' : 'crash_loop', crashes, summary: `${how}, ${crashes} times in ${Math.round(this.windowMs / 1000)} s` };
    }
    this.unhealthy = undefined;
    return { kind: 'restart', backoffMs: restartBackoffMs(crashes), crashes };
  }
}
