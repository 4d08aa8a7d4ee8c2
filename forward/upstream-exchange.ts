import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Readable } from 'node:stream';
import { Agent, Pool, type Dispatcher } from 'undici';
import type { ClientResponse } from './client-exchange.js';
import { DRAINING_HEADER, hasBody, HOP_BY_HOP, UNSENT_AFTER_CUT, UNSENT_HEADER } from './http-headers.js';
import { answerError } from './error-answer.js';

/**
 * Why a forwarded request got no answer to relay, which decides whether another upstream may
 * have it: `refused` never reached the upstream (connection refused, unreachable, connect
 * timeout); `cut` was sent and the connection closed before any answer; `timeout` got no
 * answer in time; `bad_response` got an answer that is not valid HTTP; `unsent`: the upstream,
 * a proxy, answered that it sent the request to no app (its UNSENT_HEADER), and the request had
 * no body: it may go elsewhere as a refused one may, but the upstream itself is healthy. A
 * proxy whose one app cut the request (UNSENT_AFTER_CUT) gives `cut` with the code CUT_AT_APP.
 */
export type ExchangeFailure = 'refused' | 'cut' | 'timeout' | 'bad_response' | 'unsent';

/** The code of a `cut` that happened behind a proxy (at its app), not on the connection to the proxy. */
export const CUT_AT_APP = 'cut at the app';

/** Keep-alive connections to upstreams, only when idle: this short, under Node's 5 s, so the upstream never closes one under a request. */
const UPSTREAM_IDLE_MS = 4000;
/** Per upstream (an app instance or a machine's proxy); more requests wait for a free connection. */
const UPSTREAM_CONNECTIONS = 1024;

/**
 * The pool of upstream connections for a proxy or a balancer: undici's HTTP/1.1 client, which
 * the proxy benchmark measured about 1.5 times as fast as node:http's (its parser is llhttp
 * compiled to WebAssembly, and a request is one write). `Keep-Alive: timeout=` hints are
 * honoured with a margin, so an idle connection the upstream is about to close is not reused.
 */
export function upstreamAgent(o: { connectTimeoutMs: number; upstreamTimeoutMs: number }): Agent {
  return new Agent(upstreamOptions(o));
}

/** The same for one upstream only (the balancer's, one per proxy, so that it can close its idle connections). */
export function upstreamPool(origin: string, o: { connectTimeoutMs: number; upstreamTimeoutMs: number }): Pool {
  return new Pool(origin, upstreamOptions(o));
}

function upstreamOptions(o: { connectTimeoutMs: number; upstreamTimeoutMs: number }) {
  return {
    connections: UPSTREAM_CONNECTIONS,
    pipelining: 1,
    keepAliveTimeout: UPSTREAM_IDLE_MS,
    keepAliveMaxTimeout: UPSTREAM_IDLE_MS,
    connect: { timeout: o.connectTimeoutMs },
    // The answer must start in time; a long or quiet body (SSE, slow readers) is fine.
    headersTimeout: o.upstreamTimeoutMs,
    bodyTimeout: 0,
  };
}

export interface ExchangeOptions {
  /** `http://host:port` of the upstream. */
  origin: string;
  path: string;
  /** Request headers as a flat [name, value, …] list, hop-by-hop ones already removed. */
  headers: string[];
  /** The client's request body to stream on (see requestHasBody), or null without one. */
  body: Readable | null;
  /** The upstream's answer started (it is healthy). */
  onAnswer: () => void;
  /** The upstream is a proxy: its answer that it sent the request nowhere is the failure `unsent`, not an answer to relay. */
  unsentIsFailure?: boolean;
  /** The upstream, a proxy, said it is draining (DRAINING_HEADER): send it nothing new. */
  onDraining?: () => void;
  /** The exchange is over, whichever way: called exactly once. */
  onDone: () => void;
  /** Nothing was relayed to the client yet: the caller retries elsewhere or answers with an error. */
  onFailure: (failure: ExchangeFailure, code: string) => void;
}

/**
 * Forwards one request and relays its answer, the same way for the proxy and the balancer.
 * The request body streams only once a connection is up (a refused connection leaves it
 * unread, so another upstream can still get all of it); the answer is relayed minus
 * hop-by-hop headers, with backpressure; an upstream that dies mid-answer breaks the client's
 * response rather than leaving it waiting; a client that goes away ends the upstream request.
 */
export function forwardExchange(agent: Dispatcher, req: ExchangeRequest, res: ClientResponse, o: ExchangeOptions): void {
  const exchange = new UpstreamExchange(req, res, o);
  try {
    agent.dispatch({ origin: o.origin, path: o.path, method: req.method ?? 'GET', headers: o.headers, body: o.body }, exchange);
  } catch (err) {
    // A request undici will not send (a header it refuses): the client's fault, nothing sent.
    exchange.refuseRequest(err as Error);
  }
}

/** What an exchange reads of the client's request itself (its headers go in ExchangeOptions). */
export interface ExchangeRequest {
  method?: string | undefined;
  headers: { accept?: string | undefined };
}

/** HTTP/2 bodies need no Content-Length: a stream that did not end with its headers has one. */
export function requestHasBody(req: IncomingMessage): boolean {
  if (req.httpVersionMajor === 2) return !(req as unknown as Http2ServerRequest).stream.endAfterHeaders;
  return hasBody(req);
}

/** Upstream error codes that prove the request never reached the upstream. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);
/** The connection closed under a sent request, before any answer. */
const CUT = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

function failureOf(code: string): ExchangeFailure {
  if (NOT_CONNECTED.has(code)) return 'refused';
  if (CUT.has(code)) return 'cut';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'timeout';
  return 'bad_response';
}

/** undici's dispatch handler for one exchange (its callback interface, the one its core calls without a wrapper). */
class UpstreamExchange implements Dispatcher.DispatchHandler {
  private abortUpstream: ((err: Error) => void) | undefined;
  private answered = false;
  private over = false;
  private resume: (() => void) | undefined;
  private readonly onClientClose = () => {
    // Gone before the answer ended: stop the upstream request too.
    if (!this.over) this.abort(new Error('the client went away'));
  };
  private readonly onDrain = () => this.resume?.();

  constructor(
    private readonly req: ExchangeRequest,
    private readonly res: ClientResponse,
    private readonly o: ExchangeOptions,
  ) {
    res.once('close', this.onClientClose);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.res.destroyed) this.abort(new Error('the client went away'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // Informational answers (103 Early Hints) are not passed on: the final one follows.
    if (statusCode < 200) return true;
    if (this.o.onDraining !== undefined && hasHeader(rawHeaders, DRAINING_HEADER)) this.o.onDraining();
    const unsent = statusCode === 503 && this.o.unsentIsFailure === true && this.o.body === null ? headerValue(rawHeaders, UNSENT_HEADER) : undefined;
    if (unsent !== undefined) {
      // Nothing of it reached an app (or one that cut it), and there is no body to have been read: another may take it.
      this.stopUpstream('sent nowhere');
      if (unsent === UNSENT_AFTER_CUT) this.o.onFailure('cut', CUT_AT_APP);
      else this.o.onFailure('unsent', 'no instance there');
      return false;
    }
    this.answered = true;
    this.o.onAnswer();
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      // The client was answered already (the balancer's HTTP/2 request timeout): nothing to relay.
      this.stopUpstream('answered already');
      return false;
    }
    const headers: string[] = [];
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1');
      if (HOP_BY_HOP.has(name.toLowerCase())) continue;
      headers.push(name, rawHeaders[i + 1]!.toString('latin1'));
    }
    try {
      res.writeHead(statusCode, headers);
    } catch (err) {
      // An answer HTTP/1.1 carried but this client's protocol cannot (HTTP/2 allows only
      // statuses 200-599 and is stricter about headers): a 502 for this request, never a crash.
      this.stopUpstream('answer not relayable');
      // The failed writeHead may have kept some of them (a Content-Length would cut the 502's body).
      for (let i = 0; i < headers.length; i += 2) res.removeHeader(headers[i]!);
      answerError(res, this.req.headers.accept, 'upstream_failed', `The app's answer cannot be passed on to this client (${(err as Error).message}): fix its status or headers.`);
      return false;
    }
    this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(): void {
    this.end();
    this.res.end();
  }

  onError(err: Error): void {
    const wasOver = this.over;
    this.end();
    const res = this.res;
    if (wasOver || res.destroyed || res.writableEnded) return;
    // Cut short after the answer started: break the client's answer too, never a 502 in its place.
    if (this.answered) {
      res.destroy();
      return;
    }
    const code = (err as NodeJS.ErrnoException).code ?? '';
    // undici refused to send the request as it is (it reports that here, or by throwing).
    if (code === 'UND_ERR_INVALID_ARG') this.refuseRequest(err);
    else this.o.onFailure(failureOf(code), code || err.message);
  }

  /** The request cannot be sent as it is: the client's to fix, nothing was sent. */
  refuseRequest(err: Error): void {
    this.end();
    if (this.res.headersSent || this.res.destroyed) return;
    answerError(this.res, this.req.headers.accept, 'invalid_request', `The request cannot be forwarded (${err.message}): fix it and send it again.`);
  }

  /** Ends the exchange here and drops the upstream request (its onError then finds it over). */
  private stopUpstream(why: string): void {
    this.end();
    this.abort(new Error(why));
  }

  private abort(err: Error): void {
    if (this.abortUpstream !== undefined) this.abortUpstream(err);
    // Not yet on a connection (queued): onConnect aborts it when it gets one.
  }

  private end(): void {
    if (this.over) return;
    this.over = true;
    this.res.off('close', this.onClientClose);
    this.o.onDone();
  }
}

function hasHeader(rawHeaders: Buffer[], name: string): boolean {
  return headerValue(rawHeaders, name) !== undefined;
}

function headerValue(rawHeaders: Buffer[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toString('latin1').toLowerCase() === name) return rawHeaders[i + 1]?.toString('latin1').trim() ?? '';
  return undefined;
}
