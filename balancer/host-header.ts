import type { IncomingMessage } from 'node:http';

/**
 * Whether a request names exactly one host, as the proxy requires: one Host header on
 * HTTP/1.x; on HTTP/2 the :authority pseudo-header, or one Host header in its place. Two
 * Host headers could be read differently by the balancer and by what sits behind it.
 */
export function hasOneHost(req: IncomingMessage): boolean {
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++;
  if (req.httpVersionMajor === 2 && hosts === 0) return typeof req.headers[':authority'] === 'string' && req.headers[':authority'] !== '';
  return hosts === 1 && req.headers.host !== '';
}
