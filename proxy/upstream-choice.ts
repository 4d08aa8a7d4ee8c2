import type { Upstream } from './route-table.js';

/**
 * Power of two choices on requests in flight: two random usable upstreams, the less busy
 * wins. Spreads load like least-connections without scanning, and never herds onto one.
 * Upstreams set aside after a failure are skipped until their time is up; when all are set
 * aside, the one free soonest is tried (better than refusing outright).
 */
export function chooseUpstream(upstreams: readonly Upstream[], now: number, exclude?: ReadonlySet<Upstream>): Upstream | undefined {
  const n = upstreams.length;
  if (n === 0) return undefined;
  if (n === 1) {
    const only = upstreams[0]!;
    return exclude?.has(only) ? undefined : only;
  }
  let a: Upstream | undefined;
  let b: Upstream | undefined;
  const start = (Math.random() * n) | 0;
  for (let i = 0; i < n; i++) {
    const u = upstreams[(start + i) % n]!;
    if (u.setAsideUntil > now || exclude?.has(u)) continue;
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
    if (c !== a && c.setAsideUntil <= now && !exclude?.has(c)) b = c;
    return b.inFlight < a.inFlight ? b : a;
  }
  if (a !== undefined) return a;
  let soonest: Upstream | undefined;
  for (const u of upstreams) if (!exclude?.has(u) && (soonest === undefined || u.setAsideUntil < soonest.setAsideUntil)) soonest = u;
  return soonest;
}

/** Sets an upstream aside for a while, longer after each failure in a row (up to 10 s). */
export function setAside(u: Upstream, now: number, why: string): void {
  u.consecutiveFailures++;
  u.setAsideUntil = now + Math.min(500 * 2 ** (u.consecutiveFailures - 1), 10_000);
  u.setAsideWhy = why;
}

export function markHealthy(u: Upstream): void {
  if (u.consecutiveFailures !== 0) {
    u.consecutiveFailures = 0;
    u.setAsideUntil = 0;
    u.setAsideWhy = null;
  }
}
