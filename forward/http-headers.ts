import type { IncomingMessage } from 'node:http';

/** Marks a request that already went from one berth proxy to another (one hop at most). */
export const HOP_HEADER = 'x-berth-hop';

/**
 * Set by a proxy on an error it answers without having sent the request to any app (no
 * instance it could reach): whoever forwarded it there may send it elsewhere, as if the
 * connection had been refused. Its value is `1`, or UNSENT_AFTER_CUT.
 */
export const UNSENT_HEADER = 'x-berth-unsent';

/**
 * UNSENT_HEADER's value when one app got the request and cut its connection before any answer
 * (it died under it), and no other instance there could take it: whoever forwarded it there
 * takes that as its own cut, and may make the one resend a cut idempotent request gets.
 */
export const UNSENT_AFTER_CUT = 'cut';

/**
 * Set by a draining proxy on every answer: whoever forwarded the request (a balancer) stops
 * choosing it and closes its connections to it from its own side, before the proxy closes
 * its listener (a connection still queued there then would be reset under its request).
 * Hop-by-hop, so that an app cannot set it on its own answers.
 */
export const DRAINING_HEADER = 'x-berth-draining';

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
  DRAINING_HEADER,
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

/** tchar of RFC 9110 5.6.2, by character code. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** A header name (or method): one or more tchars. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** A header value as node:http accepts it: visible characters, spaces, tabs and obs-text; no CR, LF, NUL or other controls. */
export function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}
