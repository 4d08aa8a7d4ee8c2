import { IncomingMessage } from 'node:http';
import type { Agent } from 'undici';
import type { ClientRequest, ClientResponse } from './client-exchange.js';
import { connectionTokens, HOP_BY_HOP, HOP_HEADER, IDEMPOTENT } from './http-headers.js';
import { parseRequestTarget, stripPrefix } from './request-path.js';
import { forwardExchange, requestHasBody, upstreamAgent } from './upstream-exchange.js';
import { sendProxyError } from './proxy-errors.js';
import type { ProxyMetrics } from './proxy-metrics.js';
import type { Route, RouteTable, Upstream } from './route-table.js';
import { chooseUpstream, markHealthy, setAside } from './upstream-choice.js';


export interface ForwarderOptions {
  table: RouteTable;
  metrics: ProxyMetrics;
  /** Where other machines' proxies listen, by machine name: an origin (`http://host:port`). */
  proxyOf: (machine: string) => string | undefined;
  /** Clients whose X-Forwarded-* headers are believed (a balancer, another machine's proxy). */
  trusted: (address: string | undefined) => boolean;
  /** An upstream must send its response headers within this. */
  upstreamTimeoutMs: number;
  connectTimeoutMs: number;
}


/** Attempts per request: a refused connection moves on to another instance, up to this many. */
const MAX_ATTEMPTS = 5;

/**
 * The request path of the proxy, as a chain of small steps: resolve the target, pick an
 * instance (here first, else another machine's proxy), set forwarded headers, stream both
 * ways, and answer clearly when nothing can serve. A request is retried on another instance
 * when it provably never reached the first, and an idempotent one without a body once when
 * its connection was cut before any answer.
 */
export class HttpForwarder {
  private readonly agent: Agent;

  constructor(private readonly o: ForwarderOptions) {
    this.agent = upstreamAgent(o);
  }

  handle(req: ClientRequest, res: ClientResponse): void {
    const started = performance.now();
    const target = parseRequestTarget(req.url);
    if ('refused' in target) {
      sendProxyError(res, req.headers.accept, 'bad_path', `Refused: ${target.refused}.`);
      return;
    }
    const route = this.o.table.lookup(target.path);
    if (route === undefined) {
      sendProxyError(res, req.headers.accept, 'no_route', `No app is published on ${target.path}: check the URL, or list the apps with berth apps.`);
      return;
    }
    res.once('finish', () => this.o.metrics.request(route.app, res.statusCode, (performance.now() - started) / 1000));
    const hopped = req.headers[HOP_HEADER] !== undefined;
    this.attempt(req, res, route, target.path, target.query, hopped, new Set(), 0, false);
  }

  private attempt(
    req: ClientRequest,
    res: ClientResponse,
    route: Route,
    path: string,
    query: string,
    hopped: boolean,
    tried: Set<Upstream>,
    attempts: number,
    resent: boolean,
  ): void {
    const now = Date.now();
    let upstream = chooseUpstream(route.local, now, tried);
    let viaMachine: string | undefined;
    let origin: string;
    let forwardPath: string;
    if (upstream !== undefined) {
      origin = upstream.origin;
      forwardPath = (route.stripPrefix ? stripPrefix(path, route.prefix) : path) + query;
    } else {
      // None here: one hop to a machine that runs the app (never a second hop).
      const remote = hopped ? undefined : this.remoteProxy(route, tried);
      if (remote === undefined) {
        sendProxyError(res, req.headers.accept, 'no_healthy_instance', `No instance of ${route.app} can answer right now: retry in a moment.`);
        return;
      }
      upstream = remote.upstream;
      viaMachine = remote.machine;
      origin = remote.proxy;
      forwardPath = path + query;
    }

    const chosen = upstream;
    chosen.inFlight++;
    // Only node:http's requests carry a body: a simple one never has one.
    const body = req instanceof IncomingMessage && requestHasBody(req) ? req : null;
    forwardExchange(this.agent, req, res, {
      origin,
      path: forwardPath,
      headers: this.forwardHeaders(req, route, viaMachine !== undefined),
      body,
      onAnswer: () => markHealthy(chosen),
      onDone: () => chosen.inFlight--,
      onFailure: (failure, code) => {
        if (failure === 'refused') setAside(chosen, Date.now(), `connection failed (${code})`);
        this.o.metrics.upstreamError(route.app, failure === 'cut' ? 'reset' : failure);
        // Never sent: any request may go to another instance. Cut before any answer: an
        // idempotent request without a body may be sent again (RFC 9110 9.2.2), once, so a
        // request that itself kills instances is not carried from one to the next.
        const again = failure === 'refused' || (failure === 'cut' && !resent && IDEMPOTENT.has(req.method ?? '') && body === null);
        if (again && attempts + 1 < MAX_ATTEMPTS) {
          tried.add(chosen);
          this.attempt(req, res, route, path, query, hopped, tried, attempts + 1, resent || failure === 'cut');
          return;
        }
        if (failure === 'timeout') sendProxyError(res, req.headers.accept, 'upstream_timeout');
        else sendProxyError(res, req.headers.accept, 'upstream_failed', `The instance of ${route.app} failed to answer properly (${code}): retry shortly, or check berth logs ${route.app}.`);
      },
    });
  }

  private remoteProxy(route: Route, tried: Set<Upstream>): { machine: string; proxy: string; upstream: Upstream } | undefined {
    // Weighted by how many instances each machine runs.
    const options: { machine: string; proxy: string; upstream: Upstream }[] = [];
    const now = Date.now();
    for (const [machine, list] of route.remote) {
      const proxy = this.o.proxyOf(machine);
      if (proxy === undefined) continue;
      for (const u of list) if (!tried.has(u) && u.setAsideUntil <= now) options.push({ machine, proxy, upstream: u });
    }
    return options.length === 0 ? undefined : options[(Math.random() * options.length) | 0];
  }

  /** The client's headers minus hop-by-hop ones, with X-Forwarded-* set (believed only from trusted clients). */
  private forwardHeaders(req: ClientRequest, route: Route, hop: boolean): string[] {
    const out: string[] = [];
    const raw = req.rawHeaders;
    const incoming = req.headers;
    const dropped = connectionTokens(incoming.connection);
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      // Expect: 100-continue was answered here already (by Node's server).
      if (HOP_BY_HOP.has(lower) || lower === 'expect' || dropped?.has(lower) || lower.startsWith('x-forwarded-')) continue;
      out.push(name, raw[i + 1]!);
    }
    const address = req.socket.remoteAddress;
    const trusted = this.o.trusted(address);
    const client = address ?? '';
    const forwardedFor = incoming['x-forwarded-for'];
    out.push('x-forwarded-for', trusted && forwardedFor ? `${forwardedFor}, ${client}` : client);
    out.push('x-forwarded-proto', trusted && typeof incoming['x-forwarded-proto'] === 'string' ? incoming['x-forwarded-proto'] : 'http');
    out.push('x-forwarded-host', trusted && typeof incoming['x-forwarded-host'] === 'string' ? incoming['x-forwarded-host'] : (incoming.host ?? ''));
    if (route.stripPrefix && !hop) out.push('x-forwarded-prefix', route.prefix);
    if (hop) out.push(HOP_HEADER, '1');
    return out;
  }

  close(): void {
    void this.agent.destroy().catch(() => undefined);
  }
}
