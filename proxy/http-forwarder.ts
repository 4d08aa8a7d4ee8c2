import { Agent, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { connectionTokens, hasBody, HOP_BY_HOP, HOP_HEADER, IDEMPOTENT } from './http-headers.js';
import { parseRequestTarget, stripPrefix } from './request-path.js';
import { wireExchange } from './upstream-exchange.js';
import { sendProxyError } from './proxy-errors.js';
import type { ProxyMetrics } from './proxy-metrics.js';
import type { Route, RouteTable, Upstream } from './route-table.js';
import { chooseUpstream, markHealthy, setAside } from './upstream-choice.js';


export interface ForwarderOptions {
  table: RouteTable;
  metrics: ProxyMetrics;
  /** Where other machines' proxies listen, by machine name. */
  proxyOf: (machine: string) => string | undefined;
  /** Clients whose X-Forwarded-* headers are believed (a balancer, another machine's proxy). */
  trusted: (address: string | undefined) => boolean;
  /** An upstream must send its response headers within this. */
  upstreamTimeoutMs: number;
  connectTimeoutMs: number;
}


/**
 * The request path of the proxy, as a chain of small steps: resolve the target, pick an
 * instance (here first, else another machine's proxy), set forwarded headers, stream both
 * ways, and answer clearly when nothing can serve. A request is retried on another instance
 * only when it provably never reached the first.
 */
export class HttpForwarder {
  /** Keep-alive to every upstream; idle sockets close before an app's own keep-alive would (5 s in Node). */
  readonly agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, timeout: 4000, scheduling: 'lifo' });

  constructor(private readonly o: ForwarderOptions) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
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
    this.attempt(req, res, route, target.path, target.query, hopped, new Set(), 0);
  }

  private attempt(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    path: string,
    query: string,
    hopped: boolean,
    tried: Set<Upstream>,
    attempts: number,
  ): void {
    const now = Date.now();
    let upstream = chooseUpstream(route.local, now, tried);
    let viaMachine: string | undefined;
    let host: string;
    let port: number;
    let forwardPath: string;
    if (upstream !== undefined) {
      host = upstream.host;
      port = upstream.port;
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
      host = remote.url.hostname;
      port = Number(remote.url.port || 80);
      forwardPath = path + query;
    }

    const headers = this.forwardHeaders(req, route, viaMachine !== undefined);
    const chosen = upstream;
    chosen.inFlight++;
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        chosen.inFlight--;
      }
    };
    const proxyReq = request({ host, port, method: req.method, path: forwardPath, headers, agent: this.agent, timeout: this.o.connectTimeoutMs });
    wireExchange(req, res, proxyReq, { upstreamTimeoutMs: this.o.upstreamTimeoutMs, onResponse: () => markHealthy(chosen), finish });
    proxyReq.once('error', (err: NodeJS.ErrnoException) => {
      finish();
      // (The client's request may be fully read, hence "destroyed": only the response matters.)
      if (res.destroyed || res.writableEnded) return;
      const code = err.code ?? '';
      const refused = code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'BERTH_CONNECT_TIMEOUT';
      // A reused keep-alive socket the app had just closed: the request went nowhere, but
      // only a request without a body and without side effects is safe to send again.
      const staleSocket = code === 'ECONNRESET' && proxyReq.reusedSocket && IDEMPOTENT.has(req.method ?? '') && !hasBody(req);
      if (refused) setAside(chosen, Date.now(), `connection failed (${code})`);
      this.o.metrics.upstreamError(route.app, refused ? 'refused' : code === 'BERTH_UPSTREAM_TIMEOUT' ? 'timeout' : code === 'ECONNRESET' ? 'reset' : 'bad_response');
      if ((refused || staleSocket) && !res.headersSent && attempts < 4) {
        tried.add(chosen);
        this.attempt(req, res, route, path, query, hopped, tried, attempts + 1);
        return;
      }
      if (code === 'BERTH_UPSTREAM_TIMEOUT') sendProxyError(res, req.headers.accept, 'upstream_timeout');
      else sendProxyError(res, req.headers.accept, 'upstream_failed', `The instance of ${route.app} failed to answer properly (${code || err.message}): retry shortly, or check berth logs ${route.app}.`);
    });
  }

  private remoteProxy(route: Route, tried: Set<Upstream>): { machine: string; url: URL; upstream: Upstream } | undefined {
    // Weighted by how many instances each machine runs.
    const options: { machine: string; url: URL; upstream: Upstream }[] = [];
    for (const [machine, list] of route.remote) {
      const proxy = this.o.proxyOf(machine);
      if (proxy === undefined) continue;
      for (const u of list) if (!tried.has(u) && u.setAsideUntil <= Date.now()) options.push({ machine, url: new URL(proxy), upstream: u });
    }
    return options.length === 0 ? undefined : options[(Math.random() * options.length) | 0];
  }

  private forwardHeaders(req: IncomingMessage, route: Route, hop: boolean): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    const incoming: IncomingHttpHeaders = req.headers;
    const dropped = connectionTokens(incoming.connection);
    for (const name in incoming) {
      if (HOP_BY_HOP.has(name) || dropped?.has(name)) continue;
      if (name.startsWith('x-forwarded-')) continue;
      out[name] = incoming[name]!;
    }
    const address = req.socket.remoteAddress;
    const trusted = this.o.trusted(address);
    const client = address ?? '';
    out['x-forwarded-for'] = trusted && incoming['x-forwarded-for'] ? `${incoming['x-forwarded-for']}, ${client}` : client;
    out['x-forwarded-proto'] = trusted && typeof incoming['x-forwarded-proto'] === 'string' ? incoming['x-forwarded-proto'] : 'http';
    out['x-forwarded-host'] = trusted && typeof incoming['x-forwarded-host'] === 'string' ? incoming['x-forwarded-host'] : (incoming.host ?? '');
    if (route.stripPrefix && !hop) out['x-forwarded-prefix'] = route.prefix;
    if (hop) out[HOP_HEADER] = '1';
    return out;
  }

  close(): void {
    this.agent.destroy();
  }
}
