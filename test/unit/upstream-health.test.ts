// The one upstream-health model: a failed upstream is set aside, doubling to a cap, until it answers; choices prefer the usable and the less busy, and fall back to the one free soonest.
import { describe, expect, it } from 'vitest';
import { UpstreamHealth } from '../../forward/index.js';

interface U {
  name: string;
}
const up = (name: string): U => ({ name });

describe('UpstreamHealth', () => {
  it('sets an upstream aside after each failure in a row, doubling up to the cap, until it answers', () => {
    const health = new UpstreamHealth<U>({ firstSetAsideMs: 500, maxSetAsideMs: 2000 });
    const a = up('a');
    expect(health.usable(a, 0)).toBe(true);
    const until = [1, 2, 3, 4].map(() => {
      health.refused(a, 1000, 'ECONNREFUSED');
      return health.of(a).setAsideUntil - 1000;
    });
    expect(until).toEqual([500, 1000, 2000, 2000]);
    expect(health.of(a).setAsideWhy).toBe('connection failed (ECONNREFUSED)');
    expect(health.usable(a, 2999)).toBe(false);
    expect(health.usable(a, 3000)).toBe(true);
    health.answered(a);
    expect(health.of(a)).toMatchObject({ setAsideUntil: 0, setAsideWhy: null, consecutiveFailures: 0 });
  });

  it('counts a failure without setting aside when told not to (a pool keeping a share in use)', () => {
    const health = new UpstreamHealth<U>({ firstSetAsideMs: 1000, maxSetAsideMs: 30_000 });
    const a = up('a');
    health.failed(a, 0, 'x', false);
    expect(health.of(a)).toMatchObject({ consecutiveFailures: 1, setAsideUntil: 0 });
    health.failed(a, 0, 'x');
    expect(health.of(a).setAsideUntil).toBe(2000);
  });

  it('counts requests in flight', () => {
    const health = new UpstreamHealth<U>({ firstSetAsideMs: 500, maxSetAsideMs: 10_000 });
    const a = up('a');
    health.started(a);
    health.started(a);
    health.finished(a);
    expect(health.of(a).inFlight).toBe(1);
  });

  it('chooses the less busy of two usable ones, skips excluded and set-aside ones, else the one free soonest', () => {
    const health = new UpstreamHealth<U>({ firstSetAsideMs: 500, maxSetAsideMs: 10_000 });
    const [a, b, c] = [up('a'), up('b'), up('c')];
    for (let i = 0; i < 5; i++) health.started(a);
    for (let i = 0; i < 50; i++) expect(health.choose([a, b], 0)).toBe(b);
    health.refused(b, 0, 'ECONNREFUSED');
    for (let i = 0; i < 50; i++) expect(health.choose([a, b, c], 0, new Set([c]))).toBe(a);
    health.refused(a, 100, 'ECONNREFUSED');
    // Both set aside: b is free first (at 500, a at 600).
    for (let i = 0; i < 50; i++) expect(health.choose([a, b], 200)).toBe(b);
    expect(health.choose([a, b], 200, new Set([a, b]))).toBeUndefined();
    // One only: it, set aside or not, unless excluded.
    expect(health.choose([a], 200)).toBe(a);
    expect(health.choose([a], 200, new Set([a]))).toBeUndefined();
    expect(health.choose([], 0)).toBeUndefined();
  });

  it('narrows what is usable with a predicate (the balancer health checks)', () => {
    const health = new UpstreamHealth<U>({ firstSetAsideMs: 500, maxSetAsideMs: 10_000 });
    const [a, b, c] = [up('a'), up('b'), up('c')];
    const checked = (u: U) => u !== b;
    for (let i = 0; i < 50; i++) expect(health.choose([a, b, c], 0, undefined, checked)).not.toBe(b);
  });
});
