import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { HOP_HEADER, parseRequestTarget, refuseUpgrade, stripPrefix, tunnelUpgrade, upgradeHeaderLines, type RoutedInstance, type RouteTable, type UpstreamHealth } from '../forward/index.js';

export interface WebSocketForwarderOptions {
  table: RouteTable;
  /** The HTTP forwarder's state of the instances: set-aside ones are not chosen. */
  health: UpstreamHealth<RoutedInstance>;
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
    if ('refused' in target) return refuseUpgrade(client, 'bad_path');
    const route = this.o.table.lookup(target.path, req.headers.host);
    if (route === undefined) return refuseUpgrade(client, 'no_route');
    const hopped = req.headers[HOP_HEADER] !== undefined;
    const local = this.o.health.choose(route.local, Date.now());
    let at: { host: string; port: number; path: string };
    let hop = false;
    if (local !== undefined) {
      at = { host: local.host, port: local.port, path: (route.stripPrefix ? stripPrefix(target.path, route.prefix) : target.path) + target.query };
    } else {
      const machine = hopped ? undefined : [...route.remote.keys()].find((m) => this.o.proxyOf(m) !== undefined);
      const proxy = machine === undefined ? undefined : this.o.proxyOf(machine);
      if (proxy === undefined) return refuseUpgrade(client, 'no_healthy_instance');
      const url = new URL(proxy);
      // URL.hostname keeps an IPv6 address in its brackets; a socket connects without them.
      at = { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 80), path: target.path + target.query };
      hop = true;
    }
    const headerLines = upgradeHeaderLines(req, {
      client: client.remoteAddress,
      trusted: this.o.trusted(client.remoteAddress),
      proto: 'http',
      prefix: route.stripPrefix && !hop ? route.prefix : undefined,
      hop,
    });
    tunnelUpgrade(req, client, head, { ...at, connectTimeoutMs: this.o.connectTimeoutMs, headerLines, open: this.open });
  }

  closeAll(): void {
    for (const s of this.open) s.destroy();
    this.open.clear();
  }
}
