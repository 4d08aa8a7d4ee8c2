import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { parseClientHello, type ClientHello } from './client-hello.js';

export interface HelloRouterOptions {
  /** Whether hellos are read at all now: when nothing could go to `other`, connections go straight to `main`. */
  active: () => boolean;
  /** Whether the connection of this hello is `other`'s. */
  toOther: (hello: ClientHello) => boolean;
  /** A client that has not sent its hello by then is dropped (as the handshake timeout would). */
  timeoutMs: number;
}

/**
 * Makes the connections `main` accepts go through a reading of their ClientHello first, and
 * hands each to `main` or to `other` (a TLS server that never listens) by what it says. The
 * bytes read are put back on the socket: the TLS server chosen reads them as if first. A hello
 * that cannot be read goes to `main`, which answers it as it would any.
 */
export function routeByClientHello(main: TlsServer, other: TlsServer, o: HelloRouterOptions): void {
  const tlsListeners = main.listeners('connection') as ((socket: Socket) => void)[];
  main.removeAllListeners('connection');
  const toMain = (socket: Socket) => {
    for (const listener of tlsListeners) listener.call(main, socket);
  };
  main.on('connection', (socket: Socket) => {
    if (!o.active()) return toMain(socket);
    let data = Buffer.alloc(0);
    const stop = () => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', drop);
      socket.off('error', drop);
    };
    const drop = () => {
      stop();
      socket.destroy();
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) data = Buffer.concat([data, chunk]);
      const hello = parseClientHello(data);
      if (hello === 'more') return;
      stop();
      socket.unshift(data);
      if (hello !== undefined && o.toOther(hello)) other.emit('connection', socket);
      else toMain(socket);
    };
    const timer = setTimeout(drop, o.timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', drop);
    socket.once('error', drop);
  });
}
