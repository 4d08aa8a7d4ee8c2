import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Agent } from 'undici';
import { connectionTokens, HOP_BY_HOP, HOP_HEADER, IDEMPOTENT } from '../proxy/http-headers.js';
import { sendProxyError } from '../proxy/proxy-errors.js';
import type { ProxyMetrics } from '../proxy/proxy-metrics.js';
import { parseRequestTarget } from '../proxy/request-path.js';
import { forwardExchange, requestHasBody, upstreamAgent } from '../proxy/upstream-exchange.js';
import type { RouteTable } from '../proxy/route-table.js';
import { refuseUpgrade, tunnelUpgrade } from '../proxy/upgrade-tunnel.js';
import type { Backend, BackendPool } from './backend-pool.js';

export interface BalancerForwarderOptions {
  pool: BackendPool;
  /** Which machines run which prefixes (from the registry), or undefined without one. */
  table: RouteTable | undefined;
  metrics: ProxyMetrics;
  upstreamTimeoutMs: number;
  connectTimeoutMs: number;
}

/** Attempts per request: a refused connection moves on to another proxy, up to this many. */
const MAX_ATTEMPTS = 5;

/**
 * Spreads requests over the machines' proxies: to a machine that runs the requested prefix
 * when the registry says which (weighted by how many instances it runs there, so most
 * requests take one hop), else to any healthy proxy. Retries another proxy when the
 * connection was refused (the request went nowhere), or cut before any answer for an
 * idempotent request without a body, once (a proxy killed mid-request). Forwarded headers
 * are the balancer's own: a client's claims are never passed on.
 */
export class BalancerForwarder {
  private readonly agent: Agent;
  private readonly open = new Set<Socket>();

  constructor(private readonly o: BalancerForwarderOptions) {
    this.agent = upstreamAgent(o);
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
    this.attempt(req, res, target.path + target.query, target.path, new Set(), 0, false);
  }

  private attempt(req: IncomingMessage, res: ServerResponse, forwardPath: string, path: string, tried: Set<Backend>, attempts: number, resent: boolean): void {
    const backend = this.choose(path, tried);
    if (backend === undefined) {
      sendProxyError(res, req.headers.accept, 'no_healthy_instance', 'No machine of the platform can answer right now: retry in a moment.');
      return;
    }
    backend.inFlight++;
    backend.requests++;
    const body = requestHasBody(req) ? req : null;
    forwardExchange(this.agent, req, res, {
      origin: backend.origin,
      path: forwardPath,
      headers: this.headers(req),
      body,
      onAnswer: () => this.o.pool.succeeded(backend),
      onDone: () => backend.inFlight--,
      onFailure: (failure, code) => {
        if (failure === 'refused') this.o.pool.failed(backend, Date.now());
        // A proxy that dies (or closes a kept-alive connection) before answering cuts the
        // connection: an idempotent request without a body may be sent again (RFC 9110 9.2.2),
        // to another proxy, once: a request that itself crashes proxies must not be carried
        // to one machine after another.
        const again = failure === 'refused' || (failure === 'cut' && !resent && IDEMPOTENT.has(req.method ?? '') && body === null);
        if (again && attempts + 1 < MAX_ATTEMPTS) {
          tried.add(backend);
          this.attempt(req, res, forwardPath, path, tried, attempts + 1, resent || failure === 'cut');
          return;
        }
        if (failure === 'timeout') sendProxyError(res, req.headers.accept, 'upstream_timeout');
        else sendProxyError(res, req.headers.accept, 'upstream_failed', `A machine's proxy failed to answer (${code}): retry shortly.`);
      },
    });
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
      return pool.all.find((b) => !tried.has(b));
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
    for (const s of this.open) s.destroy();
    void this.agent.destroy().catch(() => undefined);
  }
}

/** The host a client asked for: Host on HTTP/1.1, :authority on HTTP/2 (which may carry Host too). */
function requestHost(req: IncomingMessage): string {
  const authority = req.headers[':authority'];
  return req.headers.host ?? (typeof authority === 'string' ? authority : '');
}
