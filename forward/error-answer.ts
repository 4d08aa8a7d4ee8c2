import { ERROR_CATALOGUE, type ErrorCode } from '../common/errors.js';
import type { ClientResponse } from './client-exchange.js';
import { UNSENT_AFTER_CUT, UNSENT_HEADER } from './http-headers.js';

/**
 * Writes an error of the catalogue (the proxy's, the balancer's) that a person and a program
 * can read: JSON by default, a small HTML page when the client prefers HTML. Once the answer
 * has started, it breaks the connection instead.
 */
/**
 * `unsent`: the request reached no app (true), or only one that cut it before answering
 * ('cut'): a balancer or proxy in front may send it elsewhere (UNSENT_HEADER).
 */
export function answerError(res: ClientResponse, accept: string | undefined, code: ErrorCode, message?: string, o: { unsent?: boolean | 'cut' } = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const entry = ERROR_CATALOGUE[code];
  const text = message ?? entry.message;
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (code === 'no_healthy_instance') headers['retry-after'] = '1';
  if (o.unsent === true) headers[UNSENT_HEADER] = '1';
  else if (o.unsent === 'cut') headers[UNSENT_HEADER] = UNSENT_AFTER_CUT;
  if (accept !== undefined && accept.includes('text/html')) {
    headers['content-type'] = 'text/html; charset=utf-8';
    res.writeHead(entry.status, headers).end(
      `<!doctype html><html><head><meta charset="utf-8"><title>${entry.status} ${code}</title></head>` +
        `<body style="font-family:sans-serif;margin:3em"><h1>${entry.status} ${escapeHtml(code)}</h1><p>${escapeHtml(text)}</p><hr><p>berth</p></body></html>\n`,
    );
    return;
  }
  headers['content-type'] = 'application/json';
  res.writeHead(entry.status, headers).end(`${JSON.stringify({ error: { code, message: text } })}\n`);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
