import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { ERROR_CATALOGUE, type ErrorCode } from '../common/errors.js';

export interface TunnelOptions {
  host: string;
  port: number;
  /** The request target sent on. */
  path: string;
  connectTimeoutMs: number;
  /** The request's header lines (see upgradeHeaderLines). */
  headerLines: string[];
  /** Both sockets are in it while the tunnel is open, so that a close can end them all. */
  open: Set<Socket>;
}

/**
 * Joins an Upgrade request (WebSocket) to an upstream byte for byte: sends the request head
 * as given, then pipes both ways. Whichever side ends, closes or fails, both are closed —
 * HTTP server sockets allow half-open connections, which would otherwise linger.
 */
export function tunnelUpgrade(req: IncomingMessage, client: Socket, head: Buffer, upstreamAt: TunnelOptions): void {
  const { open } = upstreamAt;
  const upstream = connect({ host: upstreamAt.host, port: upstreamAt.port });
  open.add(client);
  open.add(upstream);
  const closeBoth = () => {
    client.destroy();
    upstream.destroy();
    open.delete(client);
    open.delete(upstream);
  };
  upstream.setTimeout(upstreamAt.connectTimeoutMs, closeBoth);
  upstream.once('error', () => {
    if (!client.destroyed && client.writable && upstream.bytesRead === 0) refuseUpgrade(client, 'upstream_failed');
    closeBoth();
  });
  for (const side of [client, upstream]) {
    side.once('close', closeBoth);
    side.once('end', closeBoth);
  }
  upstream.once('connect', () => {
    upstream.setTimeout(0);
    upstream.write(`${[`${req.method} ${upstreamAt.path} HTTP/1.1`, ...upstreamAt.headerLines].join('\r\n')}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
}

/** Answers an Upgrade request that cannot be served with an error of the catalogue, and closes the connection. */
export function refuseUpgrade(client: Socket, code: ErrorCode, message = `WebSocket refused: ${code}`): void {
  const { status } = ERROR_CATALOGUE[code];
  const body = JSON.stringify({ error: { code, message } });
  client.end(`HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
