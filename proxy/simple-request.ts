import type { IncomingHttpHeaders } from 'node:http';
import { connectionTokens, isFieldValue, isToken, type HeadOnlyRequest } from '../forward/index.js';

/**
 * A request the proxy's fast path serves itself: GET or HEAD over HTTP/1.1, with a path, one
 * Host and no body: forwarding's head-only request (no stream: there is no body to read).
 */
export type SimpleRequest = HeadOnlyRequest;

/** Anything here makes a request more than simple: node:http handles it (bodies, upgrades, 100-continue, a Set-Cookie it would make a list). */
const NOT_SIMPLE = new Set(['content-length', 'transfer-encoding', 'upgrade', 'expect', 'set-cookie']);
/** node:http keeps the first of these when a request repeats them (see its IncomingMessage). */
const FIRST_ONLY = new Set([
  'host', 'content-type', 'user-agent', 'referer', 'authorization', 'proxy-authorization', 'if-modified-since',
  'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires',
]);
/** More headers than this is unusual: node:http judges such a request. */
const MAX_SIMPLE_HEADERS = 100;

/**
 * Parses a request head (latin1, up to but not including its closing blank line) if it is
 * simple, else returns undefined. Strict by design: a malformed head, and also anything merely
 * unusual (another method or version, a body, Upgrade, Expect, Connection: close, a missing or
 * repeated Host, obs-fold, bare LF), is left to node:http, which answers it as it always did.
 * What this accepts, node:http would accept and read the same way.
 */
export function parseSimpleHead(head: string, remoteAddress: string | undefined): SimpleRequest | undefined {
  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = head.length;
  let method: 'GET' | 'HEAD';
  let targetStart: number;
  if (head.startsWith('GET ')) {
    method = 'GET';
    targetStart = 4;
  } else if (head.startsWith('HEAD ')) {
    method = 'HEAD';
    targetStart = 5;
  } else return undefined;
  const targetEnd = lineEnd - 9;
  if (targetEnd <= targetStart || head.charCodeAt(targetStart) !== 47 /* / */ || head.slice(targetEnd, lineEnd) !== ' HTTP/1.1') return undefined;
  for (let i = targetStart; i < targetEnd; i++) {
    const c = head.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return undefined;
  }
  const url = head.slice(targetStart, targetEnd);

  const rawHeaders: string[] = [];
  // No prototype: a header named like an Object property ("constructor") is only a header.
  const headers: IncomingHttpHeaders = Object.create(null) as IncomingHttpHeaders;
  let hosts = 0;
  let start = lineEnd + 2;
  while (start < head.length) {
    let end = head.indexOf('\r\n', start);
    if (end < 0) end = head.length;
    const colon = head.indexOf(':', start);
    if (colon < 0 || colon > end) return undefined;
    const name = head.slice(start, colon);
    // Names are tokens: no space before the colon, no obs-fold (a line starting with a space).
    if (!isToken(name)) return undefined;
    let from = colon + 1;
    let to = end;
    while (from < to && (head.charCodeAt(from) === 0x20 || head.charCodeAt(from) === 0x09)) from++;
    while (to > from && (head.charCodeAt(to - 1) === 0x20 || head.charCodeAt(to - 1) === 0x09)) to--;
    const value = head.slice(from, to);
    if (!isFieldValue(value)) return undefined;
    if (rawHeaders.length === MAX_SIMPLE_HEADERS * 2) return undefined;
    rawHeaders.push(name, value);

    const lower = name.toLowerCase();
    if (NOT_SIMPLE.has(lower)) return undefined;
    if (lower === 'host') hosts++;
    // node:http's parser reads Proxy-Connection as Connection.
    else if (lower === 'connection' || lower === 'proxy-connection') {
      const tokens = connectionTokens(value)!;
      if (tokens.has('close') || tokens.has('upgrade')) return undefined;
    }
    const previous = headers[lower];
    if (previous === undefined) headers[lower] = value;
    else if (!FIRST_ONLY.has(lower)) headers[lower] = `${previous as string}${lower === 'cookie' ? '; ' : ', '}${value}`;
    start = end + 2;
  }
  if (hosts !== 1) return undefined;
  return { method, url, httpVersionMajor: 1, rawHeaders, headers, socket: { remoteAddress } };
}
