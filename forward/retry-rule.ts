import { IDEMPOTENT } from './http-headers.js';
import type { ExchangeFailure } from './upstream-exchange.js';

/*
 * When a request goes again after an attempt failed, for the proxy (to another instance) and
 * the balancer (to another machine's proxy) alike, as one pure function (no clock, no sockets:
 * the caller says what happened and how long it has been), so that the rule can be read and
 * tested on its own. retryingExchange applies it.
 *
 * - Never sent (`refused`: the connection to the upstream was refused, unreachable or timed
 *   out, so no byte of the request left, and its body was not read either): safe for every
 *   method. It goes at once to an upstream not tried yet; when every one was tried (one
 *   machine, or all restarting), it waits (backoff with jitter) and tries any again, the same
 *   one included, for as long as the budget allows: a proxy being restarted is back within
 *   about a second. The proxy's budget is 0: it never waits.
 * - Cut (`cut`: the request was written, then the connection closed before any answer): it may
 *   have reached the app. Only an idempotent request without a body goes again (RFC 9110
 *   9.2.2), and once: a request that itself kills upstreams is not carried from one to the
 *   next. After that one resend, further never-sent failures are retried as above.
 * - Sent nowhere (`unsent`: a proxy answered 503 with UNSENT_HEADER, having had no instance to
 *   send it to, and it has no body): at once to another upstream not tried yet, as never-sent;
 *   never after a wait (that proxy is up: its instances are what is missing).
 * - `timeout` and `bad_response`: an upstream answered or may still be working on it: never again.
 *
 * A request body is never buffered: a body is only sent again when no byte of it was read,
 * which is exactly the never-sent case (undici reads it only once connected).
 */

export interface RetryPolicy {
  /** Never-sent requests are retried until this long after their first attempt began. */
  budgetMs: number;
  /** The first wait, doubled after each until maxDelayMs; each one is jittered by up to half. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Attempts that go at once to an upstream not tried yet (the waits are bounded by the budget instead). */
  maxSpread: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { budgetMs: 5000, baseDelayMs: 25, maxDelayMs: 250, maxSpread: 5 };

/** What the caller knows of one request's attempts so far, the last one included. */
export interface Attempts {
  method: string;
  hasBody: boolean;
  /** It was sent again once already after a cut (the one resend a cut request gets). */
  resent: boolean;
  /** Attempts made (at least 1). */
  attempts: number;
  /** Waits made before attempts. */
  waits: number;
  /** Milliseconds since the first attempt began. */
  elapsedMs: number;
  /** An upstream this request has not tried yet can be chosen now. */
  untriedLeft: boolean;
}

export type RetryDecision =
  | { retry: false; why: 'may_have_been_sent' | 'answered' | 'budget_spent' }
  | {
      retry: true;
      /** Wait this long first (0: at once). */
      delayMs: number;
      /** Every upstream may be chosen again, the ones tried included. */
      anyUpstream: boolean;
      /** This attempt is the one resend of a cut request. */
      resend: boolean;
    };

/** May the request go again, when, and where. `random` (0 ≤ r < 1) jitters the wait. */
export function retryDecision(failure: ExchangeFailure, a: Attempts, policy: RetryPolicy = DEFAULT_RETRY_POLICY, random: () => number = Math.random): RetryDecision {
  if (failure === 'timeout' || failure === 'bad_response') return { retry: false, why: 'answered' };
  // A proxy that had no instance for it: another may have one, but waiting for this one would
  // only delay the answer (it is up; its instances are what is missing).
  if (failure === 'unsent' && !(a.untriedLeft && a.attempts < policy.maxSpread)) return { retry: false, why: 'budget_spent' };
  const resend = failure === 'cut';
  if (resend && (a.resent || a.hasBody || !IDEMPOTENT.has(a.method))) return { retry: false, why: 'may_have_been_sent' };
  if (a.untriedLeft && a.attempts < policy.maxSpread) return { retry: true, delayMs: 0, anyUpstream: false, resend };
  const full = Math.min(policy.baseDelayMs * 2 ** a.waits, policy.maxDelayMs);
  const delayMs = Math.round(full / 2 + (full / 2) * random());
  if (a.elapsedMs + delayMs > policy.budgetMs) return { retry: false, why: 'budget_spent' };
  return { retry: true, delayMs, anyUpstream: true, resend };
}
