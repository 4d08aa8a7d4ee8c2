import type { IncomingHttpHeaders } from 'node:http';
import { connectionTokens, HOP_BY_HOP, HOP_HEADER } from './http-headers.js';

/** What the request a client sent, as forwarding reads its head. */
export interface RequestHead {
  rawHeaders: string[];
  headers: IncomingHttpHeaders;
}

export interface ForwardedOptions {
  /** The client's own address (its socket's). */
  client: string | undefined;
  /** The client is a berth balancer or proxy in front: its X-Forwarded-* are believed and extended. At the edge, never. */
  trusted: boolean;
  /** The scheme the client spoke, unless a trusted X-Forwarded-Proto says otherwise. */
  proto: 'http' | 'https';
  /** The Host to send instead of the client's (HTTP/2's :authority); undefined keeps the client's Host where it is. */
  host?: string | undefined;
  /** X-Forwarded-Prefix to send: the app's prefix, when it is taken off the path. */
  prefix?: string | undefined;
  /** The request goes on to another machine's proxy (marked, so that it hops once at most). */
  hop?: boolean | undefined;
}

/**
 * The headers an upstream gets for a request: the client's minus hop-by-hop ones (and those
 * its Connection header names), with X-Forwarded-* set here, as a flat [name, value, …] list.
 */
export function requestHeaders(req: RequestHead, o: ForwardedOptions): string[] {
  const out: string[] = [];
  const raw = req.rawHeaders;
  const dropped = connectionTokens(req.headers.connection);
  const replaceHost = o.host !== undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are not HTTP/1.1 headers.
    if (name.charCodeAt(0) === 58) continue;
    const lower = name.toLowerCase();
    // Expect: 100-continue was answered here already (by Node's server).
    if (HOP_BY_HOP.has(lower) || lower === 'expect' || dropped?.has(lower) || lower.startsWith('x-forwarded-')) continue;
    if (replaceHost && lower === 'host') continue;
    out.push(name, raw[i + 1]!);
  }
  if (replaceHost && o.host !== '') out.push('host', o.host!);
  forwarded(req, o, (name, value) => out.push(name, value));
  return out;
}

/**
 * The header lines of an Upgrade request (WebSocket) sent on through a tunnel: all of the
 * client's (Connection and Upgrade are the point), with X-Forwarded-* set here.
 */
export function upgradeHeaderLines(req: RequestHead, o: ForwardedOptions): string[] {
  const lines: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower.startsWith('x-forwarded-') || lower === HOP_HEADER) continue;
    lines.push(`${name}: ${raw[i + 1]}`);
  }
  forwarded(req, o, (name, value) => lines.push(`${name}: ${value}`));
  return lines;
}

/** X-Forwarded-For, -Proto, -Host (and -Prefix, and the hop mark): a trusted client's claims extended, anyone else's replaced. */
function forwarded(req: RequestHead, o: ForwardedOptions, add: (name: string, value: string) => void): void {
  const incoming = req.headers;
  const client = o.client ?? '';
  const forwardedFor = incoming['x-forwarded-for'];
  const proto = incoming['x-forwarded-proto'];
  const host = incoming['x-forwarded-host'];
  add('x-forwarded-for', o.trusted && forwardedFor ? `${forwardedFor}, ${client}` : client);
  add('x-forwarded-proto', o.trusted && typeof proto === 'string' ? proto : o.proto);
  add('x-forwarded-host', o.trusted && typeof host === 'string' ? host : (o.host ?? incoming.host ?? ''));
  if (o.prefix !== undefined) add('x-forwarded-prefix', o.prefix);
  if (o.hop === true) add(HOP_HEADER, '1');
}
