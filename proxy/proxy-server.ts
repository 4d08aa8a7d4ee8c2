import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { trackConnections, type ConnectionTracker } from '../common/http-drain.js';
import { serveFastPath } from './fast-path.js';
import { acceptProxyProtocol } from './proxy-protocol.js';
import type { HttpForwarder } from './http-forwarder.js';
import { answerError, DRAINING_HEADER, type RouteTable } from '../forward/index.js';
import type { WebSocketForwarder } from './websocket-forwarder.js';

export interface ProxyServerOptions {
  table: RouteTable;
  http: HttpForwarder;
  websocket: WebSocketForwarder;
  /** Answers for /_berth/* and /metrics, by path (a worker's may have to ask its siblings). */
  reports: Record<string, () => unknown>;
  /** Prometheus text; a worker's asks its siblings for their numbers first. */
  metricsText: () => string | Promise<string>;
  isReady: () => boolean;
  /** Limits, each set explicitly (Node's defaults are not a policy). */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Client keep-alive; the proxy's own upstream keep-alive is shorter than apps' (see the forwarder). */
  keepAliveTimeoutMs: number;
  maxHeaderSize: number;
  maxConnections: number;
  /** false hands every connection to node:http at once (scripts/bench/fast-path compares the two). */
  fastPath?: boolean;
  /** Each connection starts with a PROXY protocol v1 line (haproxy in front, the haproxy engine). */
  proxyProtocol?: boolean;
}

export interface ProxyServer {
  /** Accepts the connections: listen, address and errors are its. */
  listener: NetServer;
  /** node:http, for every request the fast path leaves to it. */
  http: Server;
  connections: ConnectionTracker;
}

/**
 * The proxy's server. Each connection starts on the fast path (simple GET and HEAD requests,
 * forwarded without node:http's objects) and moves to node:http at its first other request,
 * which then serves berth's own endpoints, routes everything else, and enforces its limits.
 */
export function createProxyServer(o: ProxyServerOptions): ProxyServer {
  const server = createServer(
    {
      headersTimeout: o.headersTimeoutMs,
      requestTimeout: o.requestTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      maxHeaderSize: o.maxHeaderSize,
      // How often Node enforces the two timeouts above (30 s by default, far too coarse).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(o.headersTimeoutMs / 2))),
      // Refuse absolute-form and other odd targets in the router, not by crashing.
      insecureHTTPParser: false,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const url = req.url ?? '';
      const draining = connections.draining();
      // node:http says Connection: close itself (trackConnections); this tells a balancer why.
      if (draining) res.setHeader(DRAINING_HEADER, '1');
      if (isOwn(url)) {
        own(req, res, url, o, draining);
        return;
      }
      o.http.handle(req, res);
    },
  );
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => o.websocket.handle(req, socket, head));
  // A broken client connection (bad request line, oversized headers) is answered by Node; never a crash.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Once an earlier request's answer has started, an error answer would land inside it: cut
    // the connection instead (node:http's own check, on the answer it is writing).
    const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!socket.writable || answering?.headersSent === true) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  const listener = createNetServer({ noDelay: true });
  listener.maxConnections = o.maxConnections;
  const connections = trackConnections(server, listener);
  const handOver = (socket: Socket) => server.emit('connection', socket);
  const serve = (socket: Socket) => {
    if (o.fastPath === false) return handOver(socket);
    serveFastPath(socket, {
      handle: (req, res) => o.http.handle(req, res),
      isOwn,
      handOver,
      started: connections.started,
      finished: connections.finished,
      draining: connections.draining,
      headersTimeoutMs: o.headersTimeoutMs,
      keepAliveTimeoutMs: o.keepAliveTimeoutMs,
      maxHeaderSize: o.maxHeaderSize,
    });
  };
  listener.on('connection', (socket: Socket) => (o.proxyProtocol === true ? acceptProxyProtocol(socket, serve) : serve(socket)));
  // node:http starts checking its headers and request timeouts when it listens; here the
  // listener does, and hands it connections.
  listener.on('listening', () => server.emit('listening'));
  return { listener, http: server, connections };
}

function isOwn(url: string): boolean {
  return url.startsWith('/_berth/') || url === '/metrics';
}

function own(req: IncomingMessage, res: ServerResponse, url: string, o: ProxyServerOptions, draining: boolean): void {
  const path = url.split('?')[0]!;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    answerError(res, req.headers.accept, 'method_not_allowed', `${path} answers GET and HEAD only.`);
    return;
  }
  if (path === '/metrics') {
    answer(req, res, o.metricsText, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' }, (text) => text as string);
    return;
  }
  if (path === '/_berth/health') {
    // A draining proxy is unhealthy: balancers stop choosing it before it stops listening.
    const status = draining ? 'draining' : o.isReady() ? 'ok' : 'starting';
    const body = `${JSON.stringify({ status, routes: o.table.size })}\n`;
    res.writeHead(status === 'ok' ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
    return;
  }
  const report = o.reports[path];
  if (report === undefined) {
    answerError(res, req.headers.accept, 'not_found', `No endpoint ${path}: try /_berth/load, /_berth/culprit, /_berth/routes, /_berth/control-plane, /_berth/health or /metrics.`);
    return;
  }
  answer(req, res, report, { 'content-type': 'application/json', 'cache-control': 'no-store' }, (value) => `${JSON.stringify(value)}\n`);
}

/** Sends what `make` gives (now or later); a report that fails is a 500, never a hung request. */
function answer(req: IncomingMessage, res: ServerResponse, make: () => unknown, headers: Record<string, string>, body: (value: unknown) => string): void {
  Promise.resolve()
    .then(make)
    .then(
      (value) => {
        if (!res.destroyed) res.writeHead(200, headers).end(body(value));
      },
      () => {
        if (!res.destroyed && !res.headersSent) answerError(res, req.headers.accept, 'internal_error', 'The report failed: see the proxy log.');
      },
    );
}
