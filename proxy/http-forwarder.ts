import type { Agent } from 'undici';
import {
  answerError,
  forwardTarget,
  HOP_HEADER,
  requestHeaders,
  retryingExchange,
  stripPrefix,
  upstreamAgent,
  type AttemptTarget,
  type ClientRequest,
  type ClientResponse,
  type RequestMetrics,
  type RetryPolicy,
  type Route,
  type RouteTable,
  type RoutedInstance,
  type UpstreamHealth,
} from '../forward/index.js';

export interface ForwarderOptions {
  table: RouteTable;
  /** This engine's state of the table's instances (in flight, set aside). */
  health: UpstreamHealth<RoutedInstance>;
  metrics: RequestMetrics;
  /** Where other machines' proxies listen, by machine name: an origin (`http://host:port`). */
  proxyOf: (machine: string) => string | undefined;
  /** Clients whose X-Forwarded-* headers are believed (a balancer, another machine's proxy). */
  trusted: (address: string | undefined) => boolean;
  /** An upstream must send its response headers within this. */
  upstreamTimeoutMs: number;
  connectTimeoutMs: number;
}

/** A request and where it is routed: what each attempt's choice starts from. */
interface RoutedRequest {
  req: ClientRequest;
  route: Route;
  path: string;
  query: string;
  /** It came from another machine's proxy: it goes to an instance here or nowhere. */
  hopped: boolean;
}

/**
 * The proxy's retries: at once to another instance, up to 5 attempts in all, never after a
 * wait (a budget of 0): a request no instance takes is answered at once.
 */
const PROXY_RETRY_POLICY: RetryPolicy = { budgetMs: 0, baseDelayMs: 25, maxDelayMs: 250, maxSpread: 5 };

/**
 * The request path of the proxy, as a chain of small steps: resolve the target, pick an
 * instance (here first, else another machine's proxy), set forwarded headers, stream both
 * ways, and answer clearly when nothing can serve. A request is retried on another instance
 * when it provably never reached the first, and an idempotent one without a body once when
 * its connection was cut before any answer (forward/retry-rule.ts).
 */
export class HttpForwarder {
  private readonly agent: Agent;

  constructor(private readonly o: ForwarderOptions) {
    this.agent = upstreamAgent(o);
  }

  handle(req: ClientRequest, res: ClientResponse): void {
    const started = performance.now();
    const target = forwardTarget(req, res);
    if (target === undefined) return;
    const route = this.o.table.lookup(target.path, req.headers.host);
    if (route === undefined) {
      answerError(res, req.headers.accept, 'no_route', `No app is published on ${target.path}: check the URL, or list the apps with berth apps.`);
      return;
    }
    const { metrics, health } = this.o;
    res.once('finish', () => metrics.request(route.app, res.statusCode, (performance.now() - started) / 1000));
    const hopped = req.headers[HOP_HEADER] !== undefined;
    retryingExchange(req, res, {
      choose: (tried) => this.choose({ req, route, path: target.path, query: target.query, hopped }, tried),
      book: health,
      policy: PROXY_RETRY_POLICY,
      // A hop's `unsent` is that machine refusing it (it had no instance to send it to).
      failed: (_instance, failure) => metrics.upstreamError(route.app, failure === 'cut' ? 'reset' : failure === 'unsent' ? 'refused' : failure),
      giveUp: (failure, code, noneLeft, sent) => {
        // Sent to no app, or to one that cut it (a request that may go again after a cut, which no
        // other instance here could take): the balancer (or the proxy that hopped here) may send it elsewhere.
        if (failure === undefined || failure === 'unsent' || noneLeft) answerError(res, req.headers.accept, 'no_healthy_instance', `No instance of ${route.app} can answer right now: retry in a moment.`, { unsent: sent ? 'cut' : true });
        else if (failure === 'timeout') answerError(res, req.headers.accept, 'upstream_timeout');
        else answerError(res, req.headers.accept, 'upstream_failed', `The instance of ${route.app} failed to answer properly (${code}): retry shortly, or check berth logs ${route.app}.`);
      },
    });
  }

  /** An instance here first; else one hop to a machine that runs the app (never a second hop). */
  private choose(request: RoutedRequest, tried: ReadonlySet<RoutedInstance>): AttemptTarget<RoutedInstance> | undefined {
    const { req, route, path, query, hopped } = request;
    const trusted = this.o.trusted(req.socket.remoteAddress);
    const local = this.o.health.choose(route.local, Date.now(), tried);
    if (local !== undefined) {
      return {
        upstream: local,
        dispatcher: this.agent,
        origin: local.origin,
        path: (route.stripPrefix ? stripPrefix(path, route.prefix) : path) + query,
        headers: requestHeaders(req, { client: req.socket.remoteAddress, trusted, proto: 'http', prefix: route.stripPrefix ? route.prefix : undefined }),
      };
    }
    const remote = hopped ? undefined : this.remoteProxy(route, tried);
    if (remote === undefined) return undefined;
    return {
      upstream: remote.instance,
      dispatcher: this.agent,
      origin: remote.proxy,
      proxy: true,
      path: path + query,
      headers: requestHeaders(req, { client: req.socket.remoteAddress, trusted, proto: 'http', hop: true }),
    };
  }

  private remoteProxy(route: Route, tried: ReadonlySet<RoutedInstance>): { proxy: string; instance: RoutedInstance } | undefined {
    // Weighted by how many instances each machine runs.
    const options: { proxy: string; instance: RoutedInstance }[] = [];
    const now = Date.now();
    for (const [machine, list] of route.remote) {
      const proxy = this.o.proxyOf(machine);
      if (proxy === undefined) continue;
      for (const u of list) if (!tried.has(u) && this.o.health.usable(u, now)) options.push({ proxy, instance: u });
    }
    return options.length === 0 ? undefined : options[(Math.random() * options.length) | 0];
  }

  close(): void {
    void this.agent.destroy().catch(() => undefined);
  }
}
