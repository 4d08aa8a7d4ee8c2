/** What the health model keeps of one upstream (an app instance, a machine's proxy). */
export interface UpstreamState {
  /** Requests sent and not yet answered. */
  inFlight: number;
  /** Set aside after a failure until this time (ms, Date.now()); 0 when usable. */
  setAsideUntil: number;
  /** Why it was last set aside, for the reports. */
  setAsideWhy: string | null;
  consecutiveFailures: number;
}

export interface UpstreamHealthOptions {
  /** The first set-aside after a failure, doubled after each further failure in a row. */
  firstSetAsideMs: number;
  /** The longest set-aside. */
  maxSetAsideMs: number;
}

/**
 * What an exchange tells of each attempt (see retryingExchange): UpstreamHealth itself, or
 * a pool that keeps more books around it (the balancer's).
 */
export interface AttemptBook<U> {
  started(u: U): void;
  /** Its answer started: it is healthy. */
  answered(u: U): void;
  /** The attempt is over, whichever way: called once per started(). */
  finished(u: U): void;
  /** Its connection failed, so nothing was sent (`code` says how). */
  refused(u: U, now: number, code: string): void;
}

/**
 * The one upstream-health model of the proxy and the balancer (undici's balanced pool in
 * spirit): requests in flight per upstream, and an upstream whose connection fails is set
 * aside for a while, longer after each failure in a row, until it answers again. The state
 * lives beside the upstreams, keyed by their objects: the routing that lists them knows
 * nothing of it, and an upstream dropped from the routing takes its state with it.
 */
export class UpstreamHealth<U extends object> implements AttemptBook<U> {
  private readonly states = new WeakMap<U, UpstreamState>();

  constructor(private readonly o: UpstreamHealthOptions) {}

  of(u: U): UpstreamState {
    let state = this.states.get(u);
    if (state === undefined) {
      state = { inFlight: 0, setAsideUntil: 0, setAsideWhy: null, consecutiveFailures: 0 };
      this.states.set(u, state);
    }
    return state;
  }

  usable(u: U, now: number): boolean {
    return this.of(u).setAsideUntil <= now;
  }

  private readonly isUsable = (u: U, now: number): boolean => this.usable(u, now);

  started(u: U): void {
    this.of(u).inFlight++;
  }

  finished(u: U): void {
    this.of(u).inFlight--;
  }

  answered(u: U): void {
    const state = this.of(u);
    if (state.consecutiveFailures !== 0) {
      state.consecutiveFailures = 0;
      state.setAsideUntil = 0;
      state.setAsideWhy = null;
    }
  }

  refused(u: U, now: number, code: string): void {
    this.failed(u, now, `connection failed (${code})`);
  }

  /** A failure: counted, and the upstream set aside unless `setAside` is false (a pool that keeps a share of its upstreams in use). */
  failed(u: U, now: number, why: string, setAside = true): void {
    const state = this.of(u);
    state.consecutiveFailures++;
    if (!setAside) return;
    state.setAsideUntil = now + Math.min(this.o.firstSetAsideMs * 2 ** (state.consecutiveFailures - 1), this.o.maxSetAsideMs);
    state.setAsideWhy = why;
  }

  /**
   * Power of two choices on requests in flight: two random usable upstreams, the less busy
   * wins. Spreads load like least-connections without scanning, and never herds onto one.
   * When none is usable, the one free soonest is tried (better than refusing outright).
   * `usable` may narrow what counts as usable (the balancer's health checks).
   */
  choose(upstreams: readonly U[], now: number, exclude?: ReadonlySet<U>, usable?: (u: U, now: number) => boolean): U | undefined {
    const ok = usable ?? this.isUsable;
    const n = upstreams.length;
    if (n === 0) return undefined;
    if (n === 1) {
      const only = upstreams[0]!;
      return exclude?.has(only) ? undefined : only;
    }
    let a: U | undefined;
    let b: U | undefined;
    const start = (Math.random() * n) | 0;
    for (let i = 0; i < n; i++) {
      const u = upstreams[(start + i) % n]!;
      if (exclude?.has(u) || !ok(u, now)) continue;
      if (a === undefined) a = u;
      else {
        b = u;
        break;
      }
    }
    if (a !== undefined && b !== undefined) {
      // Second pick at random among the rest, so two fixed neighbours do not take all load.
      const j = (start + 1 + ((Math.random() * (n - 1)) | 0)) % n;
      const c = upstreams[j]!;
      if (c !== a && !exclude?.has(c) && ok(c, now)) b = c;
      return this.of(b).inFlight < this.of(a).inFlight ? b : a;
    }
    if (a !== undefined) return a;
    // None usable: the one free soonest, from a random start so that ties are spread.
    let soonest: U | undefined;
    let soonestAt = Infinity;
    for (let i = 0; i < n; i++) {
      const u = upstreams[(start + i) % n]!;
      if (exclude?.has(u)) continue;
      const at = this.of(u).setAsideUntil;
      if (at < soonestAt) {
        soonest = u;
        soonestAt = at;
      }
    }
    return soonest;
  }
}
