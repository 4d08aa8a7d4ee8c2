import type { Server } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';

export interface ConnectionTracker {
  /** Stops accepting, closes idle connections now and busy ones when their requests end; cuts the rest after graceMs. */
  drain(graceMs: number): Promise<void>;
  /** A request on this connection began or ended outside node:http (the proxy's fast path). */
  started(socket: Socket): void;
  finished(socket: Socket): void;
  /** Connections open now. */
  open(): number;
}

/**
 * Graceful close for an HTTP server: stop accepting, let in-flight requests finish, and
 * close every connection the moment it has no request in flight (Node's own
 * closeIdleConnections misses connections that never sent a request); cut whatever is
 * still open after the grace period. `listener` is the server that accepts the connections
 * when it is not `server` itself (the proxy's, which gives some of them to node:http).
 */
export function trackConnections(server: Server, listener: NetServer = server): ConnectionTracker {
  const inFlight = new Map<Socket, number>();
  let draining = false;

  const started = (socket: Socket) => {
    if (!socket.destroyed) inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
  };
  const finished = (socket: Socket) => {
    const now = inFlight.get(socket);
    // Closed already (a client that went away before its answer ended): forgotten, not re-added.
    if (now === undefined) return;
    const left = now - 1;
    inFlight.set(socket, left);
    if (draining && left === 0) socket.destroy();
  };
  listener.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  server.on('request', (req, res) => {
    // Captured now: node:http lets go of the socket before the answer's 'close'.
    const socket = req.socket;
    started(socket);
    res.once('close', () => finished(socket));
  });

  return {
    started,
    finished,
    open: () => inFlight.size,
    drain: async (graceMs) => {
      draining = true;
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      // node:http, fed connections by the listener, stops its timeout checks and idle connections.
      if (listener !== server) server.close();
      for (const [socket, n] of inFlight) if (n === 0) socket.destroy();
      const cut = setTimeout(() => {
        for (const socket of inFlight.keys()) socket.destroy();
      }, graceMs);
      try {
        await closed;
      } finally {
        clearTimeout(cut);
      }
    },
  };
}
