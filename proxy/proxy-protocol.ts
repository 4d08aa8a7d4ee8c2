import type { Socket } from 'node:net';

/** A PROXY protocol v1 line is at most 107 bytes (haproxy's spec). */
const MAX_LINE = 107;

/**
 * Reads the PROXY protocol v1 line HAProxy sends first on each connection to berth's Node
 * listener (`send-proxy`), so that the Node engine sees the real client's address (for
 * X-Forwarded-For and trust), then hands the socket on with the bytes after it put back. A
 * connection without a valid line is closed: only haproxy connects there.
 */
export function acceptProxyProtocol(socket: Socket, next: (socket: Socket) => void): void {
  let buffered = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf('\r\n');
    if (end < 0) {
      if (buffered.length > MAX_LINE) socket.destroy();
      return;
    }
    socket.off('data', onData);
    socket.pause();
    const fields = buffered.toString('latin1', 0, end).split(' ');
    if (fields[0] !== 'PROXY' || (fields[1] !== 'UNKNOWN' && fields.length !== 6)) {
      socket.destroy();
      return;
    }
    if (fields[1] === 'TCP4' || fields[1] === 'TCP6') {
      // node:net reads these as getters of the handle: an own property of the socket shadows them.
      Object.defineProperty(socket, 'remoteAddress', { value: fields[2], configurable: true });
      Object.defineProperty(socket, 'remotePort', { value: Number(fields[4]), configurable: true });
    }
    const rest = buffered.subarray(end + 2);
    if (rest.length > 0) socket.unshift(rest);
    next(socket);
    socket.resume();
  };
  socket.on('data', onData);
}
