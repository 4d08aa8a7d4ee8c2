import type { ClientResponse } from './client-exchange.js';
import { answerError } from './error-answer.js';

/**
 * The request target as the router sees it. Routing works on the path exactly as sent, and
 * refuses anything that could make one app's prefix lead into another's: dot segments,
 * encoded slashes, dots or backslashes, backslashes, and targets that are not a path.
 */
export type RequestTarget = { path: string; query: string } | { refused: string };

const SUSPICIOUS_ESCAPE = /%(2f|5c|2e|00)/i;

export function parseRequestTarget(url: string | undefined): RequestTarget {
  if (url === undefined || url.length === 0 || url.charCodeAt(0) !== 47 /* / */) {
    return { refused: 'the request target must be a path starting with "/" (absolute-form and "*" are not served)' };
  }
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  if (path.includes('\\')) return { refused: 'backslashes are not allowed in the path' };
  if (SUSPICIOUS_ESCAPE.test(path)) return { refused: 'encoded slashes, dots, backslashes and NULs are not allowed in the path' };
  // Fast path: most paths have no dot segment at all.
  if (path.includes('/.')) {
    for (const segment of path.split('/')) {
      if (segment === '.' || segment === '..') return { refused: 'dot segments ("." and "..") are not allowed in the path' };
    }
  }
  return { path, query };
}

/** The path with the route's prefix taken off ("/pay/x" → "/x", "/pay" → "/"). */
export function stripPrefix(path: string, prefix: string): string {
  if (prefix === '/') return path;
  const rest = path.slice(prefix.length);
  return rest === '' ? '/' : rest;
}

/** The target of a request to forward, or undefined once a refused one was answered (400 `bad_path`). */
export function forwardTarget(req: { url?: string | undefined; headers: { accept?: string | undefined } }, res: ClientResponse): { path: string; query: string } | undefined {
  const target = parseRequestTarget(req.url);
  if (!('refused' in target)) return target;
  answerError(res, req.headers.accept, 'bad_path', `Refused: ${target.refused}.`);
  return undefined;
}
