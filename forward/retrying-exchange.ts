import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import { isStreamed, type ClientRequest, type ClientResponse } from './client-exchange.js';
import { retryDecision, type RetryPolicy } from './retry-rule.js';
import type { AttemptBook } from './upstream-health.js';
import { forwardExchange, requestHasBody, type ExchangeFailure } from './upstream-exchange.js';

/** Where one attempt goes: the upstream (what `tried` holds) and how to reach it. */
export interface AttemptTarget<U> {
  upstream: U;
  dispatcher: Dispatcher;
  /** `http://host:port`. */
  origin: string;
  path: string;
  /** Request headers as a flat [name, value, …] list (see requestHeaders). */
  headers: string[];
  /** The upstream is a proxy, whose UNSENT_HEADER answers are failures (`unsent`) rather than answers. */
  proxy?: boolean;
}

export interface RetryingExchangeOptions<U> {
  /** The next upstream to try, never one in `tried` (each failed this request); undefined when none is left. */
  choose: (tried: ReadonlySet<U>) => AttemptTarget<U> | undefined;
  /** Told of each attempt: requests in flight, answers, refused connections. */
  book: AttemptBook<U>;
  /** When a failed request goes again (see retry-rule.ts). */
  policy: RetryPolicy;
  /**
   * Answers a request that gets no further attempt. `failure` is the last attempt's, or
   * undefined when no upstream could be chosen at all; `noneLeft` says that it would have been
   * tried again had an upstream been left (and the budget allows no wait); `sent` that an
   * attempt may have reached an app (one was cut, timed out or answered badly).
   */
  giveUp: (failure: ExchangeFailure | undefined, code: string, noneLeft: boolean, sent: boolean) => void;
  /** An upstream said it is draining (a proxy stopping): it should get no new request. */
  draining?: (upstream: U) => void;
  /**
   * No upstream can be chosen now, but one will be back soon (a proxy draining to restart): the
   * request waits, as one never sent whose upstreams all refused, within the budget.
   */
  hold?: () => boolean;
  /** Also told of each failed attempt (metrics, recycling connections). */
  failed?: (upstream: U, failure: ExchangeFailure, code: string) => void;
  /** A daemon that stops sends nothing again. */
  stopping?: () => boolean;
  /** A request starts (true) or ends (false) waiting to be tried again. */
  waiting?: (waits: boolean) => void;
}

/**
 * Forwards one request, trying again on the upstream `choose` gives as retry-rule.ts allows:
 * the proxy over an app's instances, the balancer over the machines' proxies. Each attempt is
 * one forwardExchange; its outcome goes to the book (the health model) before the next.
 */
export function retryingExchange<U>(req: ClientRequest, res: ClientResponse, o: RetryingExchangeOptions<U>): void {
  new Attempts(req, res, o).next(o.choose(new Set()));
}

/** One request's attempts so far. */
class Attempts<U> {
  private readonly startedAt = Date.now();
  private readonly tried = new Set<U>();
  private readonly body: IncomingMessage | null;
  private attempts = 0;
  private waits = 0;
  private resent = false;
  /** An attempt may have reached an app: every failure so far was not `refused` or `unsent`. */
  private sent = false;

  constructor(
    private readonly req: ClientRequest,
    private readonly res: ClientResponse,
    private readonly o: RetryingExchangeOptions<U>,
  ) {
    // Only node:http's requests (HTTP/1.1 and HTTP/2) carry a body: a head-only one never has one.
    this.body = isStreamed(req) && requestHasBody(req) ? req : null;
  }

  next(target: AttemptTarget<U> | undefined): void {
    if (target === undefined) {
      if (this.o.hold?.() === true && this.o.stopping?.() !== true) {
        // Nothing of it left: waiting is safe for any method, as after a refused connection.
        const decision = retryDecision('refused', this.so(false), this.o.policy);
        if (decision.retry) return this.wait(decision.delayMs);
      }
      return this.o.giveUp(undefined, '', true, this.sent);
    }
    const { upstream } = target;
    const book = this.o.book;
    this.attempts++;
    book.started(upstream);
    forwardExchange(target.dispatcher, this.req, this.res, {
      origin: target.origin,
      path: target.path,
      headers: target.headers,
      body: this.body,
      unsentIsFailure: target.proxy,
      ...(this.o.draining ? { onDraining: () => this.o.draining?.(upstream) } : {}),
      onAnswer: () => book.answered(upstream),
      onDone: () => book.finished(upstream),
      onFailure: (failure, code) => this.failed(upstream, failure, code),
    });
  }

  private failed(upstream: U, failure: ExchangeFailure, code: string): void {
    const o = this.o;
    if (failure === 'refused') o.book.refused(upstream, Date.now(), code);
    if (failure !== 'refused' && failure !== 'unsent') this.sent = true;
    o.failed?.(upstream, failure, code);
    this.tried.add(upstream);
    // Only a request that may go again looks for another upstream (past the spread, it waits
    // instead). A cut one with a body never does: its body is spent (and undici destroyed it).
    const mayGo = failure === 'refused' || failure === 'unsent' || (failure === 'cut' && this.body === null);
    const next = mayGo && this.attempts < o.policy.maxSpread ? o.choose(this.tried) : undefined;
    const decision = retryDecision(failure, this.so(next !== undefined), o.policy);
    if (!decision.retry || o.stopping?.() === true) {
      const noneLeft = !decision.retry && decision.why === 'budget_spent' && next === undefined && this.attempts < o.policy.maxSpread;
      return o.giveUp(failure, code, noneLeft, this.sent);
    }
    if (decision.resend) this.resent = true;
    if (decision.delayMs === 0) return this.next(next);
    this.wait(decision.delayMs);
  }

  /** What retry-rule.ts is told of this request's attempts so far. */
  private so(untriedLeft: boolean): Parameters<typeof retryDecision>[1] {
    return {
      method: this.req.method ?? '',
      hasBody: this.body !== null,
      resent: this.resent,
      attempts: Math.max(1, this.attempts),
      waits: this.waits,
      elapsedMs: Date.now() - this.startedAt,
      untriedLeft,
    };
  }

  /** Waits, then tries any upstream again (the ones tried included: a wait is only ever made once every one was). */
  private wait(delayMs: number): void {
    const o = this.o;
    this.waits++;
    o.waiting?.(true);
    setTimeout(() => {
      o.waiting?.(false);
      // The client went away meanwhile: nothing to answer.
      if (this.res.destroyed || this.res.writableEnded) return;
      if (o.stopping?.() === true) return o.giveUp(undefined, '', false, this.sent);
      this.tried.clear();
      this.next(o.choose(this.tried));
    }, delayMs);
  }
}
