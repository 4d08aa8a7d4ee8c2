import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { parseRequestTarget, stripPrefix } from './request-path.js';
import type { RouteTable } from './route-table.js';
import { chooseUpstream } from './upstream-choice.js';
import { HOP_HEADER } from './http-forwarder.js';

export interface WebSocketForwarderOptions {
  table: RouteTable;
  proxyOf: (machine: string) => string | undefined;
  trusted: (address: string | undefined) => boolean;
  connectTimeoutMs: number;
}

/**
 * WebSocket (and any Upgrade) requests: same routing as HTTP, then the two sockets are
 * joined byte for byte. Whichever side closes or fails, both are closed together.
 */
export class WebSocketForwarder {
  private readonly open = new Set<Socket>();

  constructor(private readonly o: WebSocketForwarderOptions) {}

  handle(req: IncomingMessage, client: Socket, head: Buffer): void {
    client.on('error', () => client.destroy());
    const target = parseRequestTarget(req.url);
    if ('refused' in target) return refuse(client, 400, 'bad_path');
    const route = this.o.table.lookup(target.path);
    if (route === undefined) return refuse(client, 404, 'no_route');
    const hopped = req.headers[HOP_HEADER] !== undefined;
    const local = chooseUpstream(route.local, Date.now());
    let host: string;
    let port: number;
    let path: string;
    let hop = false;
    if (local !== undefined) {
      host = local.host;
      port = local.port;
      path = (route.stripPrefix ? stripPrefix(target.path, route.prefix) : target.path) + target.query;
    } else {
      const machine = hopped ? undefined : [...route.remote.keys()].find((m) => this.o.proxyOf(m) !== undefined);
      const proxy = machine === undefined ? undefined : this.o.proxyOf(machine);
      if (proxy === undefined) return refuse(client, 503, 'no_healthy_instance');
      const url = new URL(proxy);
      host = url.hostname;
      port = Number(url.port || 80);
      path = target.path + target.query;
      hop = true;
    }

    const upstream = connect({ host, port });
    this.open.add(client);
    this.open.add(upstream);
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      this.open.delete(client);
      this.open.delete(upstream);
    };
    upstream.setTimeout(this.o.connectTimeoutMs, () => closeBoth());
    upstream.once('error', () => {
      if (!client.destroyed && client.writable && upstream.bytesRead === 0) refuse(client, 502, 'upstream_failed');
      closeBoth();
    });
    // HTTP server sockets allow half-open connections: a side that ends (FIN) would otherwise
    // leave the other open forever. Either side ending or closing ends both.
    client.once('close', closeBoth);
    upstream.once('close', closeBoth);
    client.once('end', closeBoth);
    upstream.once('end', closeBoth);
    upstream.once('connect', () => {
      upstream.setTimeout(0);
      const lines = [`${req.method} ${path} HTTP/1.1`];
      const address = client.remoteAddress ?? '';
      const trusted = this.o.trusted(client.remoteAddress);
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i]!;
        const lower = name.toLowerCase();
        if (lower.startsWith('x-forwarded-') || lower === HOP_HEADER) continue;
        lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
      }
      const xff = trusted && req.headers['x-forwarded-for'] ? `${req.headers['x-forwarded-for']}, ${address}` : address;
      lines.push(`X-Forwarded-For: ${xff}`);
      lines.push(`X-Forwarded-Proto: ${trusted && typeof req.headers['x-forwarded-proto'] === 'string' ? req.headers['x-forwarded-proto'] : 'http'}`);
      if (route.stripPrefix && !hop) lines.push(`X-Forwarded-Prefix: ${route.prefix}`);
      if (hop) lines.push(`${HOP_HEADER}: 1`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
  }

  closeAll(): void {
    for (const s of this.open) s.destroy();
    this.open.clear();
  }
}

function refuse(client: Socket, status: number, code: string): void {
  const body = JSON.stringify({ error: { code, message: `WebSocket refused: ${code}` } });
  client.end(`HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
