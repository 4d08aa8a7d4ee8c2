import type { IncomingMessage } from 'node:http';

/** Marks a request that already went from one berth proxy to another (one hop at most). */
export const HOP_HEADER = 'x-berth-hop';

/** Headers that belong to one connection, never forwarded (RFC 9110 7.6.1). */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  HOP_HEADER,
]);

/** Methods a proxy may send twice when the first attempt provably went nowhere. */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** Header names listed in a Connection header: hop-by-hop too. */
export function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  return new Set(value.toLowerCase().split(',').map((t) => t.trim()));
}
