import { ERROR_CATALOGUE, type ErrorCode } from '../../common/errors.js';
import { LISTEN_FD } from './haproxy-process.js';

/** One running instance of the app, as a server of its backend: `name` is berth's (instance and epoch). */
export interface ServerState {
  name: string;
  host: string;
  port: number;
}

/** A server as HAProxy holds it: in one of its backend's slots (HAProxy's name for it there), or added at run time. */
export interface SlotServer extends ServerState {
  slot: string;
  /** Added with `add server` (no free slot was left): deleted once drained, where a slot is freed. */
  added?: boolean;
}

/**
 * A backend HAProxy holds: an app's (its servers change at run time), or a spare, declared
 * empty so that a new app can take it through the Runtime API instead of a reload. A backend
 * without stripPrefix has nothing of its app in the config (the prefix is only the map's key), so
 * a spare, or one an app left, can serve any app without it; stripPrefix puts the prefix in the
 * config (a reload to change).
 */
export interface BackendState {
  name: string;
  /** The app it serves, undefined for a spare. */
  app: string | undefined;
  prefix: string;
  stripPrefix: boolean;
  /** By berth's server name. */
  servers: Map<string, SlotServer>;
  /**
   * Slots declared in the config that serve nothing (in maintenance): a new instance takes one
   * with `set server … addr`, not `add server`, since haproxy 2.6 keeps no idle connection to a
   * server added at run time (a new connection to the app for every request).
   */
  free: string[];
}

export interface HaproxySettings {
  /** The worker's stats socket: the Runtime API. */
  adminSocket: string;
  /** prefix → backend, followed at run time with add/set/del map. */
  mapFile: string;
  /** Apps' own domains (exact or `*.`), each also with a trailing dot: requests for them go to berth's Node listener, which routes by host. */
  hostsFile: string;
  /** The proxy's own state (`draining 1` once a drain began), followed at run time with add map. */
  stateFile: string;
  /** berth's own Node listener (127.0.0.1): /_berth/*, /metrics, and every request HAProxy does not route itself. */
  nodePort: number;
  trustedProxies: string[];
  threads: number;
  maxConnections: number;
  /** This process's hard limit of open files (haproxy inherits it), or undefined when unknown. */
  fdLimit: number | undefined;
  connectTimeoutMs: number;
  upstreamTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
  graceMs: number;
}

/** HAProxy names of berth's things: app and instance names are a-z, 0-9 and "-", which HAProxy takes as they are. */
export const backendName = (app: string): string => `app-${app}`;
export const spareName = (n: number): string => `spare-${n}`;
export const serverName = (instance: string, epoch: number): string => `${instance}-e${epoch}`;
export const slotName = (n: number): string => `s${n}`;
export const NODE_BACKEND = 'berth-node';

/** The state map's key for a drain begun. */
export const DRAINING_KEY = 'draining';

/** Connecting to an app on this machine (loopback) may take this long before another try. */
export const LOCAL_CONNECT_TIMEOUT_MS = 250;

/** Segments of the deepest prefix HAProxy matches; a deeper prefix raises it (by a reload). */
export const MIN_MATCH_DEPTH = 8;

export function segmentDepth(prefix: string): number {
  return prefix === '/' ? 0 : prefix.split('/').length - 1;
}

/**
 * HAProxy's whole configuration for the state given. Matching is the Node engine's: whole
 * segments, longest prefix first, by exact lookups (a tree) of the path cut at each of its
 * first `depth` segment boundaries, deepest first. Anything HAProxy does not route itself (no
 * instance here, a path that could escape its prefix, a target that is not a path, berth's own
 * endpoints) goes to berth's Node listener, which answers it as the Node engine does.
 */
export function renderConfig(s: HaproxySettings, backendList: Iterable<BackendState>, depth: number): string {
  const backends = [...backendList];
  const servers = backends.reduce((n, b) => n + b.servers.size, 0);
  const slots = backends.reduce((n, b) => n + b.servers.size + b.free.length, 0);
  const lines: string[] = [];
  const add = (...l: string[]) => lines.push(...l);
  add(
    '# Written by berth proxy --engine haproxy: changes made here are lost at its next reload.',
    'global',
    `  stats socket ${s.adminSocket} mode 600 level admin expose-fd listeners`,
    '  stats timeout 10s',
    `  nbthread ${s.threads}`,
    `  maxconn ${maxConnectionsFor(s, slots)}`,
    // After a reload the old worker finishes its requests within berth's grace, then stops.
    `  hard-stop-after ${s.graceMs}ms`,
    // Room for a head of maxHeaderBytes (431 beyond it, below) and no more: an L7 retry copies the
    // whole buffer for every request (docs/benchmarks.md), so each KB here is paid per request.
    `  tune.bufsize ${bufferSizeFor(s.maxHeaderBytes)}`,
    `  tune.maxrewrite ${MAX_REWRITE}`,
    `  tune.http.maxhdr ${MAX_HEADERS}`,
    '',
    'defaults',
    '  mode http',
    `  timeout connect ${s.connectTimeoutMs}ms`,
    `  timeout server ${s.upstreamTimeoutMs}ms`,
    `  timeout http-request ${s.headersTimeoutMs}ms`,
    `  timeout client ${s.requestTimeoutMs}ms`,
    `  timeout http-keep-alive ${s.keepAliveTimeoutMs}ms`,
    '  timeout tunnel 1h',
    '  timeout client-fin 1s',
    // Never-sent requests go to another instance; cut idempotent ones once (below): berth's retry rule.
    '  retries 4',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response',
    '  http-reuse safe',
    // After a reload the old worker keeps idle client connections until it can answer one with Connection: close (no race with a request being sent).
    '  option idle-close-on-response',
    errorLine(503, 'no_healthy_instance', undefined, ['retry-after', '1']),
    errorLine(502, 'upstream_failed'),
    errorLine(504, 'upstream_timeout'),
    '',
    'frontend berth',
    // berth's socket keeper holds the proxy's listening socket and hands it to each haproxy.
    `  bind fd@${LISTEN_FD}`,
    `  acl trusted src ${s.trustedProxies.join(' ')}`,
    // X-Forwarded-* of a client not trusted are replaced, as the Node engine does.
    '  http-request del-header x-forwarded-for unless trusted',
    '  http-request del-header x-forwarded-proto unless trusted',
    '  http-request del-header x-forwarded-host unless trusted',
    '  http-request del-header x-forwarded-prefix',
    `  http-request return status 431 hdr connection close if { req.hdrs,length gt ${s.maxHeaderBytes} }`,
    '  http-request set-header x-forwarded-proto http unless { req.hdr(x-forwarded-proto) -m found }',
    '  http-request set-header x-forwarded-host %[req.hdr(host)] unless { req.hdr(x-forwarded-host) -m found }',
    // What the Node engine refuses with 400 bad_path goes to it to be refused (forward/request-path.ts).
    '  acl escapes path_reg -i %(2f|5c|2e|00)',
    '  acl escapes path_sub \\\\',
    '  acl escapes path_reg /[.][.]?(/|$)',
    '  acl path_form url_beg /',
    // Headers the Connection header names are dropped by the Node engine: such requests go to it.
    '  acl odd_connection req.hdr(connection) -m reg -i -- ^(?!(keep-alive|close|upgrade)$)',
    // Cut idempotent requests go again once; nothing else is sent twice.
    '  http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS',
    // A draining proxy says so on every answer (the Node engine's DRAINING_HEADER), and closes
    // the connection after it; an app's own X-Berth-Draining is dropped (it is hop-by-hop).
    // One map lookup per answer, kept in a variable: an ACL would be looked up again in each rule.
    '  http-after-response del-header x-berth-draining',
    `  http-after-response set-var(txn.draining) str(${DRAINING_KEY}),map_str(${s.stateFile})`,
    '  http-after-response set-header x-berth-draining 1 if { var(txn.draining) -m found }',
    '  http-after-response set-header connection close if { var(txn.draining) -m found }',
  );
  // Judged once (HAProxy evaluates an ACL again in every rule that names it); then the lookups,
  // each skipped as soon as one matched.
  add(
    // An app's own domain (exact, then one level of wildcard) is routed by berth's Node listener:
    // host first, then the prefix inside it, as the Node engine does (HAProxy's map is by path only).
    `  acl own_host req.hdr(host),field(1,:),lower,map_str(${s.hostsFile}) -m found`,
    `  acl own_host req.hdr(host),field(1,:),lower,regsub(^[^.]*[.],*.),map_str(${s.hostsFile}) -m found`,
    '  http-request set-var(txn.routable) bool(1) if path_form !escapes !odd_connection !own_host',
  );
  for (let k = depth + 1; k >= 2; k--) {
    add(`  http-request set-var(txn.backend) path,field(1,/,${k}),map_str(${s.mapFile}) if !{ var(txn.backend) -m found } { var(txn.routable) -m bool }`);
  }
  add(
    '  use_backend %[var(txn.backend)] if { var(txn.backend) -m found }',
    `  default_backend ${NODE_BACKEND}`,
    '',
    `backend ${NODE_BACKEND}`,
    // The Node engine sets X-Forwarded-* itself, from the client's address the PROXY line gives it.
    '  retry-on conn-failure',
    `  server node 127.0.0.1:${s.nodePort} send-proxy`,
  );
  for (const b of backends) {
    add(
      '',
      `backend ${b.name}`,
      '  balance leastconn',
      // HAProxy waits min(timeout connect, 1 s) before it retries a failed connection: an app on
      // this machine answers a connect at once or not at all, so a short one keeps that wait short
      // (it was the 1 s outliers of route changes; docs/proxy.md).
      `  timeout connect ${Math.min(s.connectTimeoutMs, LOCAL_CONNECT_TIMEOUT_MS)}ms`,
      '  option forwardfor',
      '  http-request del-header x-berth-hop',
    );
    if (b.stripPrefix && b.prefix !== '/') {
      add(`  http-request set-header x-forwarded-prefix ${b.prefix}`, `  http-request set-path %[path,regsub(^${regexOf(b.prefix)}/?,/)]`);
    }
    for (const server of b.servers.values()) add(`  ${serverLine(server, servers)}`);
    // Free slots: in maintenance (no check, no traffic) until an instance takes one.
    for (const slot of b.free) add(`  server ${slot} ${FREE_SLOT_ADDRESS} disabled ${serverHealth(servers)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The buffer's reserve for what berth's rules add to a request (X-Forwarded-*: a few hundred bytes). */
const MAX_REWRITE = 1024;
/** haproxy's default, set so that the head room below holds: a request with more headers gets 400. */
const MAX_HEADERS = 101;

/**
 * A buffer that holds a head of maxHeaderBytes: the rewrite reserve, and haproxy's internal form
 * (HTX), which takes up to about 4 bytes more a header than the raw head (`MAX_HEADERS`), with
 * some slack. A head between maxHeaderBytes and this gets berth's 431; a larger one does not fit,
 * and haproxy answers its own 400 (the Node engine answers 431 to any size; docs/proxy.md).
 */
export function bufferSizeFor(maxHeaderBytes: number): number {
  return Math.max(16384, maxHeaderBytes + MAX_REWRITE + 1024);
}

/** Descriptors left to haproxy beside its connections' and servers' (listeners, sockets, pollers: 28 seen with 10,000 servers). */
const FD_RESERVE = 1000;

/**
 * haproxy needs 2 descriptors a connection (client and server) and one a server, and refuses to
 * start (or reload) when it cannot raise its limit to that ("Cannot raise FD limit to 29,028, limit
 * is 20,000" with 10,000 servers): maxconn is kept within the hard limit for the servers rendered.
 */
export function maxConnectionsFor(s: HaproxySettings, servers: number): number {
  if (s.fdLimit === undefined) return s.maxConnections;
  return Math.max(100, Math.min(s.maxConnections, Math.floor((s.fdLimit - FD_RESERVE - servers) / 2)));
}

/** The keys of the hosts map for an app's domain: the name as stored, and with a trailing dot (a Host may end in one). */
export function hostKeys(domain: string): string[] {
  return [domain, `${domain}.`];
}

/** The map file as of a (re)load: prefix → backend, one a line. */
export function renderMap(entries: Map<string, string>): string {
  return [...entries].map(([prefix, backend]) => `${prefix} ${backend}\n`).join('');
}

export function serverLine(server: SlotServer, servers: number): string {
  return `server ${server.slot} ${addressOf(server)} ${serverHealth(servers)}`;
}

/** Where a free slot points: nowhere haproxy ever connects to (it is in maintenance). */
const FREE_SLOT_ADDRESS = '127.0.0.1:1';

/** Connection checks a second, at most, of the servers that are up (those down are checked every 500 ms). */
const UP_CHECKS_PER_SECOND = 100;

/**
 * An instance that refuses a connection is set aside at once (observe layer4, the Node engine's
 * rule: a request meanwhile goes to another instance) and taken back when a connection check
 * passes again (every 500 ms while down). While up, a check only finds what the next request
 * would: every 2 s, or less often with many servers (`servers` on this machine), so that checks
 * stay within UP_CHECKS_PER_SECOND (10,000 servers every 2 s took 15 % of a CPU idle, and set
 * servers aside under load when the checks timed out; docs/benchmarks.md).
 */
export function serverHealth(servers: number): string {
  const interMs = Math.max(2000, Math.ceil((servers * 1000) / UP_CHECKS_PER_SECOND));
  return `check inter ${interMs}ms downinter 500ms rise 1 fall 1 observe layer4 error-limit 1 on-error mark-down`;
}

export function addressOf(server: ServerState): string {
  return server.host.includes(':') ? `ipv6@${server.host}:${server.port}` : `${server.host}:${server.port}`;
}

/** A prefix (letters, digits, "-", "_", ".", "~" and "/") as a regex, without backslashes (the config parser would eat them). */
function regexOf(prefix: string): string {
  return prefix.replace(/[.]/g, '[.]');
}

function errorLine(status: number, code: ErrorCode, message?: string, header?: [string, string]): string {
  const body = `${JSON.stringify({ error: { code, message: message ?? ERROR_CATALOGUE[code].message } })}\n`;
  return `  http-error status ${status} content-type application/json string ${quoted(body)} hdr cache-control no-store${header ? ` hdr ${header[0]} ${header[1]}` : ''}`;
}

/** A word of HAProxy's config in double quotes: backslash, quote, "$" (variables) and newline escaped. */
function quoted(text: string): string {
  return `"${text.replace(/[\\"$]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
}
