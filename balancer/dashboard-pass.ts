import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { answerError } from '../forward/index.js';

/** The registry's dashboard lives under this path on the platform's HTTPS host. */
export function isDashboardPath(path: string): boolean {
  return path === '/dashboard' || path.startsWith('/dashboard/');
}

// Hop-by-hop (RFC 9110 7.6.1), and what HTTP/2 cannot carry; the forwarded ones are ours.
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/**
 * Forwards a dashboard request to the registry (plain HTTP, as the API listens), saying it
 * came over HTTPS so that the registry marks its session cookie Secure. Streams both ways
 * (the event stream and followed logs included); the upstream request ends when the client goes.
 */
export function forwardToRegistry(registry: URL, req: IncomingMessage, res: ServerResponse): void {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !name.startsWith(':') && !DROPPED.has(name)) headers[name] = value;
  }
  const host = req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '';
  headers.host = host;
  headers['x-forwarded-host'] = host;
  headers['x-forwarded-proto'] = 'https';
  headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
  const upstream = request({ host: registry.hostname, port: registry.port, path: req.url, method: req.method, headers, agent: false }, (answer) => {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !DROPPED.has(name)) out[name] = value;
    res.writeHead(answer.statusCode ?? 502, out);
    answer.pipe(res);
  });
  upstream.on('error', () => answerError(res, req.headers.accept, 'upstream_failed', `The registry (${registry.host}) did not answer the dashboard request: check that it runs.`));
  res.on('close', () => upstream.destroy());
  req.pipe(upstream);
}
