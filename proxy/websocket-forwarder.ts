import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { HOP_HEADER } from './http-headers.js';
import { parseRequestTarget, stripPrefix } from './request-path.js';
import type { RouteTable } from './route-table.js';
import { refuseUpgrade, tunnelUpgrade } from './upgrade-tunnel.js';
import { chooseUpstream } from './upstream-choice.js';

export interface WebSocketForwarderOptions {
  table: RouteTable;
  proxyOf: (machine: string) => string | undefined;
  trusted: (address: string | undefined) => boolean;
  connectTimeoutMs: number;
}

/** WebSocket (and any Upgrade) requests: the same routing as HTTP, then a byte tunnel. */
export class WebSocketForwarder {
  private readonly open = new Set<Socket>();

  constructor(private readonly o: WebSocketForwarderOptions) {}

  handle(req: IncomingMessage, client: Socket, head: Buffer): void {
    client.on('error', () => client.destroy());
    const target = parseRequestTarget(req.url);
    if ('refused' in target) return refuseUpgrade(client, 400, 'bad_path');
    const route = this.o.table.lookup(target.path);
    if (route === undefined) return refuseUpgrade(client, 404, 'no_route');
    const hopped = req.headers[HOP_HEADER] !== undefined;
    const local = chooseUpstream(route.local, Date.now());
    let at: { host: string; port: number; path: string };
    let hop = false;
    if (local !== undefined) {
      at = { host: local.host, port: local.port, path: (route.stripPrefix ? stripPrefix(target.path, route.prefix) : target.path) + target.query };
    } else {
      const machine = hopped ? undefined : [...route.remote.keys()].find((m) => this.o.proxyOf(m) !== undefined);
      const proxy = machine === undefined ? undefined : this.o.proxyOf(machine);
      if (proxy === undefined) return refuseUpgrade(client, 503, 'no_healthy_instance');
      const url = new URL(proxy);
      // URL.hostname keeps an IPv6 address in its brackets; a socket connects without them.
      at = { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 80), path: target.path + target.query };
      hop = true;
    }
    const lines: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      const lower = name.toLowerCase();
      if (lower.startsWith('x-forwarded-') || lower === HOP_HEADER) continue;
      lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
    }
    const address = client.remoteAddress ?? '';
    const trusted = this.o.trusted(client.remoteAddress);
    lines.push(`X-Forwarded-For: ${trusted && req.headers['x-forwarded-for'] ? `${req.headers['x-forwarded-for']}, ${address}` : address}`);
    lines.push(`X-Forwarded-Proto: ${trusted && typeof req.headers['x-forwarded-proto'] === 'string' ? req.headers['x-forwarded-proto'] : 'http'}`);
    if (route.stripPrefix && !hop) lines.push(`X-Forwarded-Prefix: ${route.prefix}`);
    if (hop) lines.push(`${HOP_HEADER}: 1`);
    tunnelUpgrade(req, client, head, { ...at, connectTimeoutMs: this.o.connectTimeoutMs }, lines, this.open);
  }

  closeAll(): void {
    for (const s of this.open) s.destroy();
    this.open.clear();
  }
}
