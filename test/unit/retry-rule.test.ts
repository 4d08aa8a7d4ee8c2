// When the balancer sends a request again: never-sent ones (any method, with a body too) until
// the budget is spent, at once to a proxy not tried yet, else after a growing jittered wait to
// any; cut ones only when idempotent without a body, once; answered ones never.
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, retryDecision, type Attempts, type RetryPolicy } from '../../forward/index.js';

const policy: RetryPolicy = { budgetMs: 2000, baseDelayMs: 20, maxDelayMs: 200, maxSpread: 5 };
const first: Attempts = { method: 'GET', hasBody: false, resent: false, attempts: 1, waits: 0, elapsedMs: 3, untriedLeft: false };
const at = (over: Partial<Attempts>): Attempts => ({ ...first, ...over });
const top = () => 0.999999;
const bottom = () => 0;

describe('retryDecision', () => {
  it('sends a never-sent request of any method, with a body or not, again', () => {
    for (const method of ['GET', 'POST', 'PATCH', 'DELETE']) {
      for (const hasBody of [false, true]) {
        expect(retryDecision('refused', at({ method, hasBody }), policy).retry, `${method} body=${hasBody}`).toBe(true);
      }
    }
  });

  it('goes at once to a proxy not tried yet, up to maxSpread attempts', () => {
    expect(retryDecision('refused', at({ untriedLeft: true }), policy)).toEqual({ retry: true, delayMs: 0, anyUpstream: false, resend: false });
    expect(retryDecision('refused', at({ untriedLeft: true, attempts: 4 }), policy)).toMatchObject({ delayMs: 0 });
    // Past maxSpread, waits instead (and may go to any proxy).
    expect(retryDecision('refused', at({ untriedLeft: true, attempts: 5 }), policy, top)).toMatchObject({ retry: true, anyUpstream: true, delayMs: 20 });
  });

  it('every proxy tried: waits, doubling to the cap, jittered down to half, then any proxy (the same one too)', () => {
    const delays = [0, 1, 2, 3, 4, 5].map((waits) => retryDecision('refused', at({ waits }), policy, top));
    expect(delays.map((d) => (d.retry ? d.delayMs : -1))).toEqual([20, 40, 80, 160, 200, 200]);
    expect(delays.every((d) => d.retry && d.anyUpstream)).toBe(true);
    expect(retryDecision('refused', at({ waits: 3 }), policy, bottom)).toMatchObject({ delayMs: 80 });
  });

  it('stops once the wait would end past the budget', () => {
    expect(retryDecision('refused', at({ waits: 8, elapsedMs: 1800 }), policy, top)).toMatchObject({ retry: true, delayMs: 200 });
    expect(retryDecision('refused', at({ waits: 8, elapsedMs: 1801 }), policy, top)).toEqual({ retry: false, why: 'budget_spent' });
    // With a budget of 0: only the at-once attempts on the other proxies.
    const none = { ...policy, budgetMs: 0 };
    expect(retryDecision('refused', at({ untriedLeft: true }), none)).toMatchObject({ retry: true, delayMs: 0 });
    expect(retryDecision('refused', at({ elapsedMs: 0 }), none)).toEqual({ retry: false, why: 'budget_spent' });
  });

  it('a budget lasts a proxy restart: enough waits fit in it, none beyond it', () => {
    let elapsed = 0;
    let waits = 0;
    for (;;) {
      const d = retryDecision('refused', at({ waits, elapsedMs: elapsed, attempts: waits + 1 }), DEFAULT_RETRY_POLICY, top);
      if (!d.retry) break;
      elapsed += d.delayMs;
      waits++;
    }
    expect(elapsed).toBeLessThanOrEqual(DEFAULT_RETRY_POLICY.budgetMs);
    expect(elapsed).toBeGreaterThan(DEFAULT_RETRY_POLICY.budgetMs - DEFAULT_RETRY_POLICY.maxDelayMs);
    // Never more than one wait's length between attempts: a proxy back is used within 250 ms.
    expect(waits).toBeGreaterThan(DEFAULT_RETRY_POLICY.budgetMs / DEFAULT_RETRY_POLICY.maxDelayMs);
  });

  it('sends a request a proxy sent nowhere (unsent) at once to a proxy not tried yet, and never after a wait', () => {
    expect(retryDecision('unsent', at({ untriedLeft: true }), policy)).toEqual({ retry: true, delayMs: 0, anyUpstream: false, resend: false });
    expect(retryDecision('unsent', at({ untriedLeft: false }), policy)).toEqual({ retry: false, why: 'budget_spent' });
    expect(retryDecision('unsent', at({ untriedLeft: true, attempts: 5 }), policy)).toEqual({ retry: false, why: 'budget_spent' });
  });

  it('sends a cut idempotent request without a body again once, marked as the resend', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) {
      expect(retryDecision('cut', at({ method, untriedLeft: true }), policy), method).toEqual({ retry: true, delayMs: 0, anyUpstream: false, resend: true });
    }
    // One proxy only: the resend waits for it, like a never-sent request.
    expect(retryDecision('cut', at({}), policy, top)).toEqual({ retry: true, delayMs: 20, anyUpstream: true, resend: true });
    expect(retryDecision('cut', at({ resent: true, untriedLeft: true }), policy)).toEqual({ retry: false, why: 'may_have_been_sent' });
    // After its one resend, a refused connection is still never sent: that goes again.
    expect(retryDecision('refused', at({ resent: true }), policy).retry).toBe(true);
  });

  it('never sends a cut request that may have had effects again', () => {
    for (const method of ['POST', 'PATCH', 'CONNECT', 'get']) {
      expect(retryDecision('cut', at({ method, untriedLeft: true }), policy), method).toEqual({ retry: false, why: 'may_have_been_sent' });
    }
    // An idempotent method with a body: the body was read, it cannot be sent whole again.
    expect(retryDecision('cut', at({ method: 'PUT', hasBody: true, untriedLeft: true }), policy)).toEqual({ retry: false, why: 'may_have_been_sent' });
  });

  it('never sends a request whose proxy answered badly or late again', () => {
    expect(retryDecision('timeout', at({ untriedLeft: true }), policy)).toEqual({ retry: false, why: 'answered' });
    expect(retryDecision('bad_response', at({ untriedLeft: true }), policy)).toEqual({ retry: false, why: 'answered' });
  });
});
