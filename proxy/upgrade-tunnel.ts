import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';

/**
 * Joins an Upgrade request (WebSocket) to an upstream byte for byte: sends the request head
 * as given, then pipes both ways. Whichever side ends, closes or fails, both are closed —
 * HTTP server sockets allow half-open connections, which would otherwise linger.
 */
export function tunnelUpgrade(
  req: IncomingMessage,
  client: Socket,
  head: Buffer,
  upstreamAt: { host: string; port: number; path: string; connectTimeoutMs: number },
  headerLines: string[],
  open: Set<Socket>,
): void {
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
    if (!client.destroyed && client.writable && upstream.bytesRead === 0) refuseUpgrade(client, 502, 'upstream_failed');
    closeBoth();
  });
  for (const side of [client, upstream]) {
    side.once('close', closeBoth);
    side.once('end', closeBoth);
  }
  upstream.once('connect', () => {
    upstream.setTimeout(0);
    upstream.write(`${[`${req.method} ${upstreamAt.path} HTTP/1.1`, ...headerLines].join('\r\n')}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
}

/** Answers an Upgrade request that cannot be served, and closes the connection. */
export function refuseUpgrade(client: Socket, status: number, code: string): void {
  const body = JSON.stringify({ error: { code, message: `WebSocket refused: ${code}` } });
  client.end(`HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
