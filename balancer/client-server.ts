import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2, createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type SecureServerOptions, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { ClientHello } from './client-hello.js';
import { routeByClientHello } from './hello-router.js';

/** Streams one HTTP/2 client may have open at once (nghttp2's default is unbounded). */
export const MAX_CONCURRENT_STREAMS = 128;
/** Memory (MiB) one HTTP/2 session may hold in buffers before new streams are refused. */
export const MAX_SESSION_MEMORY_MB = 32;

export interface ClientLimits {
  handshakeTimeoutMs: number;
  /** HTTP/1.1: the request head within this (408). HTTP/2 heads arrive whole, within the idle timeout. */
  headersTimeoutMs: number;
  /** Both protocols: the whole request (head and body) within this (408). */
  requestTimeoutMs: number;
  /** Idle HTTP/1.1 connections, and HTTP/2 sessions with no open stream, close after this. */
  keepAliveTimeoutMs: number;
  /** The largest request head: 431 on HTTP/1.1, the stream reset (ENHANCE_YOUR_CALM) on HTTP/2. */
  maxHeaderBytes: number;
}

/**
 * What the balancer's handlers get, whichever protocol the client speaks: HTTP/2 streams
 * come through Node's compatibility API, which implements everything the forwarder uses of
 * IncomingMessage and ServerResponse (url, method, headers, socket.remoteAddress, piping,
 * writeHead with a flat header list, destroy, 'finish'/'close'); what differs (pseudo-headers,
 * :authority instead of Host, a body without Content-Length) the forwarder handles itself.
 */
export type ClientHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Certificates served from a second TLS server that has no default certificate (an RSA one
 * of a domain, which beside berth's own ECDSA default would never be chosen): the listener
 * reads each client's hello first and hands it over when `wantsRsa` says so.
 */
export interface RsaSide {
  SNICallback: (servername: string, done: (err: Error | null, ctx?: SecureContext) => void) => void;
  /** Whether any certificate is served there now (hellos are read only then). */
  active: () => boolean;
  wantsRsa: (hello: ClientHello) => boolean;
}

export interface ClientServer {
  server: Http2SecureServer;
  /** Stop accepting; finish what is in flight (HTTP/2: GOAWAY); cut the rest after graceMs. */
  drain(graceMs: number): Promise<void>;
}

/**
 * The balancer's HTTPS listener: HTTP/2 and HTTP/1.1 on one port, chosen by ALPN (h2 when a
 * client offers it), with the same limits for both protocols. HTTP/1.1 gets Node's own
 * header, request and keep-alive timeouts, Upgrade (WebSocket) and clean 400/408/431 answers;
 * HTTP/2 gets bounded header lists, streams and session memory, a whole-request timeout per
 * stream (408) and an idle timeout per session.
 */
export function createClientServer(
  tls: SecureServerOptions,
  limits: ClientLimits,
  handlers: { request: ClientHandler; upgrade: (req: IncomingMessage, socket: Socket, head: Buffer) => void },
  rsa?: RsaSide,
): ClientServer {
  const sessions = new Set<ServerHttp2Session>();
  // HTTP/1.1 connections with their requests in flight, so a drain closes each when it is idle.
  const sockets = new Map<TLSSocket, number>();
  let draining = false;
  const make = (options: SecureServerOptions): Http2SecureServer => {
    const server = createSecureServer({
      ...options,
      allowHTTP1: true,
      // https.Server sets this by default, a TLS server does not: without it Nagle's algorithm
      // holds back small answers until the client's delayed ACK (tens of ms per request).
      noDelay: true,
      handshakeTimeout: limits.handshakeTimeoutMs,
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
      peerMaxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: limits.maxHeaderBytes, enablePush: false },
    });
    // The HTTP/1.1 side is Node's http server code running on this server object: it reads
    // these properties (the types of Http2SecureServer do not declare them).
    Object.assign(server, {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 2))),
    });

    server.on('request', (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
      if (req.httpVersionMajor === 2) {
        // The advertised SETTINGS limit binds only once the client has acknowledged it: a
        // session's first requests are measured here (as HTTP/2 counts: 32 bytes per field).
        let size = 0;
        for (const field of req.rawHeaders) size += field.length + 16;
        if (size > limits.maxHeaderBytes) {
          res.writeHead(431, { 'content-length': '0' }).end();
          return;
        }
        limitStream(req as Http2ServerRequest, res as Http2ServerResponse, limits.requestTimeoutMs);
      }
      handlers.request(req as IncomingMessage, res as ServerResponse);
    });
    server.on('upgrade', handlers.upgrade);
    // CONNECT would make the balancer a tunnel to anywhere: refused on both protocols.
    server.on('connect', (_req: IncomingMessage | Http2ServerRequest, out: Socket | Http2ServerResponse) => {
      if ('writeHead' in out) out.writeHead(405, { 'content-length': '0' }).end();
      else out.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (!socket.writable) return socket.destroy();
      const statusLine = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${statusLine}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    // A failed handshake is over: Node closes the socket on OpenSSL's errors, but on a handshake
    // timeout an HTTP/2 server only reports it, leaving the silent client connected.
    server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
    // Session and stream errors are a client's problem, already answered with GOAWAY/RST_STREAM.
    server.on('sessionError', () => undefined);

    server.on('session', (session: ServerHttp2Session) => {
      sessions.add(session);
      let open = 0;
      session.on('stream', (stream) => {
        open++;
        stream.once('close', () => open--);
      });
      // Quiet streams (SSE, long polls) keep their session; only an empty one is closed.
      session.setTimeout(limits.keepAliveTimeoutMs, () => {
        if (open === 0) session.close();
      });
      session.once('close', () => sessions.delete(session));
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      sockets.set(socket, 0);
      socket.once('close', () => sockets.delete(socket));
    });
    server.prependListener('request', (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
      if (req.httpVersionMajor === 2) return;
      const socket = req.socket as TLSSocket;
      sockets.set(socket, (sockets.get(socket) ?? 0) + 1);
      // Draining: this answer says Connection: close, and node:http closes the connection after it.
      if (draining) (res as ServerResponse).shouldKeepAlive = false;
      res.once('close', () => {
        const left = (sockets.get(socket) ?? 1) - 1;
        sockets.set(socket, left);
        // An answer begun before the drain said keep-alive: close once it is all written.
        if (draining && left === 0) socket.destroySoon();
      });
    });
    return server;
  };

  const server = make(tls);
  let rsaServer: Http2SecureServer | undefined;
  if (rsa !== undefined) {
    // The RSA side has no default certificate: the one its SNI callback gives is all a connection has.
    const { cert: _cert, key: _key, SNICallback: _sni, ...shared } = tls;
    rsaServer = make({ ...shared, SNICallback: rsa.SNICallback });
    // It never listens (its connections are the main listener's, counted there), but its
    // HTTP/1.1 header and request timeouts are checked from 'listening' on: started as if it did.
    rsaServer.emit('listening');
    routeByClientHello(server, rsaServer, { active: rsa.active, toOther: rsa.wantsRsa, timeoutMs: limits.handshakeTimeoutMs });
  }

  return {
    server,
    drain: async (graceMs) => {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Stops its timeout checks; its connections are the main listener's, awaited by `closed`.
      rsaServer?.close(() => undefined);
      // HTTP/2: GOAWAY; the client opens no new stream on the session, and those open finish.
      for (const session of sessions) session.close();
      for (const [socket, n] of sockets) {
        if (socket.alpnProtocol === 'h2') continue;
        // Idle: closed now. A client sending on it this very moment sees it close unanswered;
        // nothing of that request was read, so it may send it again on a new connection.
        if (n === 0) socket.destroy();
        else {
          // In flight: its answer, if not started yet, says Connection: close.
          const answering = (socket as TLSSocket & { _httpMessage?: ServerResponse | null })._httpMessage;
          if (answering && !answering.headersSent) answering.shouldKeepAlive = false;
        }
      }
      const cut = setTimeout(() => {
        for (const session of sessions) session.destroy();
        for (const socket of sockets.keys()) socket.destroy();
      }, graceMs);
      try {
        await closed;
      } finally {
        clearTimeout(cut);
      }
    },
  };
}

/**
 * HTTP/2 has no request timeout of Node's: a stream whose body has not all arrived within
 * requestTimeoutMs is answered 408 (when nothing was answered yet) and reset.
 */
function limitStream(req: Http2ServerRequest, res: Http2ServerResponse, requestTimeoutMs: number): void {
  if (req.stream.endAfterHeaders) return;
  const timer = setTimeout(() => {
    if (req.complete) return;
    // As the HTTP/1.1 side answers a slow request: 408 with no body.
    if (!res.headersSent) {
      res.writeHead(408, { 'content-length': '0', 'cache-control': 'no-store' });
      res.end(() => req.stream.close(h2.NGHTTP2_CANCEL));
    } else req.stream.close(h2.NGHTTP2_CANCEL);
  }, requestTimeoutMs);
  timer.unref();
  const clear = () => clearTimeout(timer);
  req.once('end', clear);
  req.once('close', clear);
  res.once('close', clear);
}
