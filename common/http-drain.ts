import type { Server, ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';

export interface ConnectionTracker {
  /**
   * Stops accepting and closes every connection once it has no request in flight; cuts the
   * rest after graceMs. With idleLingerMs, an idle connection is left to its client for that
   * long first; with listenLingerMs, new connections are still accepted (and served, each
   * answer its connection's last) for that long first (see trackConnections).
   */
  drain(graceMs: number, linger?: DrainLinger): Promise<void>;
  /** A drain has begun: an answer not yet started should say `Connection: close` (node:http's are told here). */
  draining(): boolean;
  /**
   * A drain is coming and answers say so from now, while the server still serves as before:
   * for a server behind another that drains first (the proxy's Node listener behind haproxy).
   */
  announceDrain(): void;
  /** A request on this connection began or ended outside node:http (the proxy's fast path). */
  started(socket: Socket): void;
  finished(socket: Socket): void;
  /** Connections open now. */
  open(): number;
}

export interface DrainLinger {
  /** How long an idle connection is left for its client to close or use once more. @default 0 */
  idleLingerMs?: number;
  /** How long the listener keeps accepting once the drain began. @default 0 */
  listenLingerMs?: number;
}

/**
 * Graceful close for an HTTP server: stop accepting, let in-flight requests finish, and
 * close every connection the moment it has no request in flight (Node's own
 * closeIdleConnections misses connections that never sent a request); cut whatever is
 * still open after the grace period. `listener` is the server that accepts the connections
 * when it is not `server` itself (the proxy's, which gives some of them to node:http).
 *
 * Closing an idle kept-alive connection races with a client that is sending a request on it
 * that very moment: the client cannot tell whether that request was read, and must not send
 * a POST again. With `idleLingerMs` the drain avoids the race where it can: every answer it
 * has not started yet says `Connection: close` (the client then sends nothing more on that
 * connection, and it closes after the answer), and an idle connection is left open for that
 * long, for its client to close (a balancer closes its connections to a proxy that says it
 * is draining) or to use once more; only then is it closed from this side. Closing the
 * listener itself resets every connection still queued on it, each perhaps with a request
 * already sent: with `listenLingerMs` it keeps accepting that long first, while clients learn
 * from the answers that this server is draining and stop connecting.
 */
export function trackConnections(server: Server, listener: NetServer = server): ConnectionTracker {
  const inFlight = new Map<Socket, number>();
  let draining = false;
  /** Idle connections are closed at once from then on (until then they linger). */
  let closeIdle = false;

  const started = (socket: Socket) => {
    if (!socket.destroyed) inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
  };
  const finished = (socket: Socket) => {
    const now = inFlight.get(socket);
    // Closed already (a client that went away before its answer ended): forgotten, not re-added.
    if (now === undefined) return;
    const left = now - 1;
    inFlight.set(socket, left);
    if (closeIdle && left === 0) socket.destroy();
  };
  listener.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  // Before the app's own handler, which may answer at once.
  server.prependListener('request', (req, res) => {
    // Captured now: node:http lets go of the socket before the answer's 'close'.
    const socket = req.socket;
    started(socket);
    if (draining) res.shouldKeepAlive = false;
    res.once('close', () => finished(socket));
  });

  const closeIdleNow = () => {
    closeIdle = true;
    // node:http, fed connections by the listener, stops its timeout checks and idle connections.
    if (listener !== server) server.close();
    for (const [socket, n] of inFlight) if (n === 0) socket.destroy();
  };

  return {
    started,
    finished,
    draining: () => draining,
    announceDrain: () => {
      draining = true;
    },
    open: () => inFlight.size,
    drain: async (graceMs, { idleLingerMs = 0, listenLingerMs = 0 } = {}) => {
      draining = true;
      const cut = setTimeout(() => {
        for (const socket of inFlight.keys()) socket.destroy();
      }, graceMs);
      let linger: NodeJS.Timeout | undefined;
      try {
        if (idleLingerMs > 0) {
          // Answers in flight that have not started yet close their connection when done.
          for (const [socket, n] of inFlight) {
            const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
            if (n > 0 && answering && !answering.headersSent) answering.shouldKeepAlive = false;
          }
        }
        const listening = Math.min(listenLingerMs, graceMs);
        if (listening > 0) await new Promise((resolve) => setTimeout(resolve, listening));
        const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
        if (idleLingerMs > 0) linger = setTimeout(closeIdleNow, Math.min(idleLingerMs, Math.max(0, graceMs - listening)));
        else closeIdleNow();
        await closed;
      } finally {
        clearTimeout(cut);
        clearTimeout(linger);
      }
    },
  };
}
