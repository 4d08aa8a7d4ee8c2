import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Pool } from 'undici';
import {
  answerError,
  CUT_AT_APP,
  forwardTarget,
  DEFAULT_RETRY_POLICY,
  parseRequestTarget,
  refuseUpgrade,
  requestHeaders,
  retryingExchange,
  tunnelUpgrade,
  upgradeHeaderLines,
  upstreamPool,
  type RequestMetrics,
  type RetryPolicy,
  type RouteTable,
} from '../forward/index.js';
import type { Backend, BackendPool } from './backend-pool.js';

export interface BalancerForwarderOptions {
  pool: BackendPool;
  /** Which machines run which prefixes (from the registry), or undefined without one. */
  table: RouteTable | undefined;
  metrics: RequestMetrics;
  upstreamTimeoutMs: number;
  connectTimeoutMs: number;
  /** When and how often a request that failed is sent again (see forward/retry-rule.ts). */
  retry?: RetryPolicy;
}

/**
 * Spreads requests over the machines' proxies: to a machine that runs the requested prefix
 * when the registry says which (weighted by how many instances it runs there, so most
 * requests take one hop), else to any healthy proxy. A request that failed goes again as
 * forward's retry rule says: one never sent (refused connection) to another proxy, or, when every
 * one was tried, to any (the same included) after a backoff, within a budget, so that a
 * proxy's restart costs nothing; one cut before any answer only when idempotent without a
 * body, once (as is one whose app, behind the proxy, cut it: UNSENT_AFTER_CUT). Connections to a
 * proxy that refused one or cut one, or that says it is draining, are closed from this side as
 * soon as they are idle (a draining proxy then has none left to close under a request), and a
 * draining one is never chosen: when every proxy drains (one machine, its proxy restarting),
 * requests wait for one to be back, as never-sent ones do, within the same budget.
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

  /** `proto`: what the client spoke (plain HTTP is forwarded only for a domain without its own certificate yet). */
  handle(req: IncomingMessage, res: ServerResponse, proto: 'https' | 'http' = 'https'): void {
    const started = performance.now();
    const target = forwardTarget(req, res);
    if (target === undefined) return;
    const host = requestHost(req);
    const app = this.o.table?.lookup(target.path, host)?.app ?? '-';
    res.once('finish', () => this.o.metrics.request(app, res.statusCode, (performance.now() - started) / 1000));
    const forwardPath = target.path + target.query;
    let headers: string[] | undefined;
    retryingExchange(req, res, {
      choose: (tried) => {
        const backend = this.choose(target.path, tried, host);
        if (backend === undefined) return undefined;
        // The balancer is the edge: what a client says of itself is not believed.
        headers ??= requestHeaders(req, { client: req.socket.remoteAddress, trusted: false, proto, host });
        return { upstream: backend, dispatcher: this.dispatcher(backend), origin: backend.origin, proxy: true, path: forwardPath, headers };
      },
      book: this.o.pool,
      policy: this.retry,
      // Stopping: chosen no more, and its connections closed from here as they go idle, before
      // it closes them (or its listener) under a request.
      draining: (backend) => {
        if (this.o.pool.draining(backend)) this.recycle(backend);
      },
      // Every proxy left drains (one machine, its proxy restarting): wait for it to be back.
      hold: () => this.o.pool.anyDraining(),
      // Its other connections may be to a process that is gone or going: close them once idle
      // (not when its app cut the request: the proxy itself answered).
      failed: (backend, failure, code) => {
        if (failure === 'refused' || (failure === 'cut' && code !== CUT_AT_APP)) this.recycle(backend);
      },
      stopping: () => this.closed,
      waiting: (waits) => {
        this.waiting += waits ? 1 : -1;
      },
      giveUp: (failure, code) => {
        if (failure === 'unsent') answerError(res, req.headers.accept, 'no_healthy_instance', `No machine's proxy has an instance of ${app} that can answer right now (the request reached none): retry in a moment.`);
        else if (failure === undefined) {
          if (this.closed) answerError(res, req.headers.accept, 'no_healthy_instance', 'The balancer is stopping: retry in a moment.');
          else answerError(res, req.headers.accept, 'no_healthy_instance', 'No machine of the platform can answer right now: retry in a moment.');
        } else if (failure === 'timeout') answerError(res, req.headers.accept, 'upstream_timeout');
        else if (failure === 'refused') answerError(res, req.headers.accept, 'no_healthy_instance', `No machine's proxy took the request (${code}); it was not sent: retry in a moment.`);
        else answerError(res, req.headers.accept, 'upstream_failed', `A machine's proxy failed to answer (${code}); the request may have reached the app: retry it only if that is safe.`);
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

  /** Route-aware first, weighted by instances per machine; else the less busy of two random healthy proxies (forward's health model). */
  choose(path: string, tried: ReadonlySet<Backend>, host?: string): Backend | undefined {
    const now = Date.now();
    const pool = this.o.pool;
    const route = this.o.table?.lookup(path, host);
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
    const any = pool.health.choose(pool.all, now, tried, (b, at) => pool.usable(b, at));
    // None usable, and the fallback drains: its listener may close under a new connection.
    if (any === undefined || !any.draining) return any;
    return pool.health.choose(
      pool.all.filter((b) => !b.draining),
      now,
      tried,
      (b, at) => pool.usable(b, at),
    );
  }

  handleUpgrade(req: IncomingMessage, client: Socket, head: Buffer): void {
    client.on('error', () => client.destroy());
    const target = parseRequestTarget(req.url);
    if ('refused' in target) return refuseUpgrade(client, 'bad_path');
    const backend = this.choose(target.path, new Set(), requestHost(req));
    if (backend === undefined) return refuseUpgrade(client, 'no_healthy_instance');
    const headerLines = upgradeHeaderLines(req, { client: client.remoteAddress, trusted: false, proto: 'https' });
    tunnelUpgrade(req, client, head, { host: backend.host, port: backend.port, path: target.path + target.query, connectTimeoutMs: this.o.connectTimeoutMs, headerLines, open: this.open });
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
