import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Pool } from 'undici';
import { connectionTokens, HOP_BY_HOP, HOP_HEADER } from '../proxy/http-headers.js';
import { sendProxyError } from '../proxy/proxy-errors.js';
import type { ProxyMetrics } from '../proxy/proxy-metrics.js';
import { parseRequestTarget } from '../proxy/request-path.js';
import { forwardExchange, requestHasBody, upstreamPool } from '../proxy/upstream-exchange.js';
import type { RouteTable } from '../proxy/route-table.js';
import { refuseUpgrade, tunnelUpgrade } from '../proxy/upgrade-tunnel.js';
import type { Backend, BackendPool } from './backend-pool.js';
import { DEFAULT_RETRY_POLICY, retryDecision, type RetryPolicy } from './never-sent-retry.js';

export interface BalancerForwarderOptions {
  pool: BackendPool;
  /** Which machines run which prefixes (from the registry), or undefined without one. */
  table: RouteTable | undefined;
  metrics: ProxyMetrics;
  upstreamTimeoutMs: number;
  connectTimeoutMs: number;
  /** When and how often a request that failed is sent again (see never-sent-retry.ts). */
  retry?: RetryPolicy;
}

/** One request's attempts so far. */
interface RequestAttempts {
  readonly startedAt: number;
  readonly tried: Set<Backend>;
  attempts: number;
  waits: number;
  resent: boolean;
}

/**
 * Spreads requests over the machines' proxies: to a machine that runs the requested prefix
 * when the registry says which (weighted by how many instances it runs there, so most
 * requests take one hop), else to any healthy proxy. A request that failed goes again as
 * retryDecision says: one never sent (refused connection) to another proxy, or, when every
 * one was tried, to any (the same included) after a backoff, within a budget, so that a
 * proxy's restart costs nothing; one cut before any answer only when idempotent without a
 * body, once. Connections to a proxy that refused one or cut one are closed from this side
 * as soon as they are idle (a draining proxy then has none left to close under a request).
 * Forwarded headers are the balancer's own: a client's claims are never passed on.
 */
export class BalancerForwarder {
  /** One connection pool per proxy, replaced (the old one closed when idle) after a failure. */
  private readonly pools = new Map<string, Pool>();
  private readonly open = new Set<Socket>();
  private readonly retry: RetryPolicy;
  private closed = false;
  /** Requests waiting to be tried again (every proxy refused them so far). */
  waiting = 0;

  constructor(private readonly o: BalancerForwarderOptions) {
    this.retry = o.retry ?? DEFAULT_RETRY_POLICY;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const target = parseRequestTarget(req.url);
    if ('refused' in target) {
      sendProxyError(res, req.headers.accept, 'bad_path', `Refused: ${target.refused}.`);
      return;
    }
    const app = this.o.table?.lookup(target.path)?.app ?? '-';
    res.once('finish', () => this.o.metrics.request(app, res.statusCode, (performance.now() - started) / 1000));
    this.attempt(req, res, target.path + target.query, target.path, { startedAt: Date.now(), tried: new Set(), attempts: 0, waits: 0, resent: false });
  }

  private attempt(req: IncomingMessage, res: ServerResponse, forwardPath: string, path: string, state: RequestAttempts): void {
    const backend = this.choose(path, state.tried);
    if (backend === undefined) {
      sendProxyError(res, req.headers.accept, 'no_healthy_instance', 'No machine of the platform can answer right now: retry in a moment.');
      return;
    }
    backend.inFlight++;
    backend.requests++;
    state.attempts++;
    const body = requestHasBody(req) ? req : null;
    forwardExchange(this.dispatcher(backend), req, res, {
      origin: backend.origin,
      path: forwardPath,
      headers: this.headers(req),
      body,
      onAnswer: () => this.o.pool.succeeded(backend),
      onDone: () => backend.inFlight--,
      onFailure: (failure, code) => {
        if (failure === 'refused') this.o.pool.failed(backend, Date.now());
        // Its other connections may be to a process that is gone or going: close them once idle.
        if (failure === 'refused' || failure === 'cut') this.recycle(backend);
        state.tried.add(backend);
        const decision = retryDecision(
          failure,
          {
            method: req.method ?? '',
            hasBody: body !== null,
            resent: state.resent,
            attempts: state.attempts,
            waits: state.waits,
            elapsedMs: Date.now() - state.startedAt,
            untriedLeft: this.o.pool.all.some((b) => !state.tried.has(b)),
          },
          this.retry,
        );
        if (decision.retry && !this.closed) {
          if (decision.resend) state.resent = true;
          const again = () => {
            // The client went away meanwhile: nothing to answer.
            if (res.destroyed || res.writableEnded) return;
            if (this.closed) return sendProxyError(res, req.headers.accept, 'no_healthy_instance', 'The balancer is stopping: retry in a moment.');
            if (decision.anyProxy) state.tried.clear();
            this.attempt(req, res, forwardPath, path, state);
          };
          if (decision.delayMs === 0) again();
          else {
            state.waits++;
            this.waiting++;
            setTimeout(() => {
              this.waiting--;
              again();
            }, decision.delayMs);
          }
          return;
        }
        if (failure === 'timeout') sendProxyError(res, req.headers.accept, 'upstream_timeout');
        else if (failure === 'refused') sendProxyError(res, req.headers.accept, 'no_healthy_instance', `No machine's proxy took the request (${code}); it was not sent: retry in a moment.`);
        else sendProxyError(res, req.headers.accept, 'upstream_failed', `A machine's proxy failed to answer (${code}); the request may have reached the app: retry it only if that is safe.`);
      },
    });
  }

  private dispatcher(b: Backend): Pool {
    let pool = this.pools.get(b.origin);
    if (pool === undefined) {
      pool = upstreamPool(b.origin, this.o);
      this.pools.set(b.origin, pool);
    }
    return pool;
  }

  /** New requests to `b` get new connections; the old ones close as their requests end (none is cut). */
  private recycle(b: Backend): void {
    const old = this.pools.get(b.origin);
    if (old === undefined) return;
    this.pools.delete(b.origin);
    void old.close().catch(() => undefined);
  }

  /** Route-aware first, weighted by instances per machine; else the least busy of two random healthy proxies. */
  choose(path: string, tried: ReadonlySet<Backend>): Backend | undefined {
    const now = Date.now();
    const pool = this.o.pool;
    const route = this.o.table?.lookup(path);
    if (route !== undefined) {
      let total = 0;
      const weighted: [Backend, number][] = [];
      for (const [machine, instances] of route.remote) {
        const b = pool.byMachine(machine);
        if (b !== undefined && !tried.has(b) && pool.usable(b, now)) {
          weighted.push([b, instances.length]);
          total += instances.length;
        }
      }
      if (total > 0) {
        let r = Math.random() * total;
        for (const [b, w] of weighted) if ((r -= w) < 0) return b;
        return weighted[weighted.length - 1]![0];
      }
    }
    const usable = pool.all.filter((b) => !tried.has(b) && pool.usable(b, now));
    if (usable.length === 0) {
      // All ejected or failing checks: try one not yet tried rather than refuse outright.
      const left = pool.all.filter((b) => !tried.has(b));
      return left.length === 0 ? undefined : left[(Math.random() * left.length) | 0];
    }
    const a = usable[(Math.random() * usable.length) | 0]!;
    const b = usable[(Math.random() * usable.length) | 0]!;
    return b.inFlight < a.inFlight ? b : a;
  }

  handleUpgrade(req: IncomingMessage, client: Socket, head: Buffer): void {
    client.on('error', () => client.destroy());
    const target = parseRequestTarget(req.url);
    if ('refused' in target) return refuseUpgrade(client, 400, 'bad_path');
    const backend = this.choose(target.path, new Set());
    if (backend === undefined) return refuseUpgrade(client, 503, 'no_healthy_instance');
    const lines: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const lower = req.rawHeaders[i]!.toLowerCase();
      if (lower.startsWith('x-forwarded-') || lower === HOP_HEADER) continue;
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    }
    lines.push(`X-Forwarded-For: ${client.remoteAddress ?? ''}`, 'X-Forwarded-Proto: https', `X-Forwarded-Host: ${req.headers.host ?? ''}`);
    tunnelUpgrade(req, client, head, { host: backend.host, port: backend.port, path: target.path + target.query, connectTimeoutMs: this.o.connectTimeoutMs }, lines, this.open);
  }

  private headers(req: IncomingMessage): string[] {
    const out: string[] = [];
    const raw = req.rawHeaders;
    const dropped = connectionTokens(req.headers.connection);
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are not HTTP/1.1 headers.
      if (name.charCodeAt(0) === 58) continue;
      const lower = name.toLowerCase();
      // Expect: 100-continue was answered here already (by Node's server); Host is set below.
      if (HOP_BY_HOP.has(lower) || lower === 'expect' || lower === 'host' || dropped?.has(lower) || lower.startsWith('x-forwarded-')) continue;
      out.push(name, raw[i + 1]!);
    }
    const host = requestHost(req);
    if (host !== '') out.push('host', host);
    // The balancer is the edge: what a client says of itself is not believed.
    out.push('x-forwarded-for', req.socket.remoteAddress ?? '', 'x-forwarded-proto', 'https', 'x-forwarded-host', host);
    return out;
  }

  close(): void {
    this.closed = true;
    for (const s of this.open) s.destroy();
    for (const pool of this.pools.values()) void pool.destroy().catch(() => undefined);
    this.pools.clear();
  }
}

/** The host a client asked for: Host on HTTP/1.1, :authority on HTTP/2 (which may carry Host too). */
function requestHost(req: IncomingMessage): string {
  const authority = req.headers[':authority'];
  return req.headers.host ?? (typeof authority === 'string' ? authority : '');
}
