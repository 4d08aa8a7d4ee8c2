import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Graceful close for an HTTP server: stop accepting, let in-flight requests finish, and
 * close every connection the moment it has no request in flight (Node's own
 * closeIdleConnections misses connections that never sent a request); cut whatever is
 * still open after the grace period.
 */
export function trackConnections(server: Server): { drain(graceMs: number): Promise<void> } {
  const inFlight = new Map<Socket, number>();
  let draining = false;

  server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  server.on('request', (req, res) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      inFlight.set(socket, left);
      if (draining && left === 0) socket.destroy();
    });
  });

  return {
    drain: async (graceMs) => {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
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
