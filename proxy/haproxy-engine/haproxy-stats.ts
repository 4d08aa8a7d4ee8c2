import { runtimeCommand } from './runtime-api.js';

/** One row of `show stat`: a frontend, a backend or a server, by HAProxy's column names. */
export type StatRow = Record<string, string>;

/** HAProxy's counters now, from its Runtime API (`show stat`, CSV): every proxy's, or one backend's servers. */
export async function readStats(adminSocket: string, backend?: string): Promise<StatRow[]> {
  const text = await runtimeCommand(adminSocket, backend === undefined ? 'show stat' : `show stat ${backend} 4 -1`);
  const lines = text.split('\n').filter((l) => l.length > 0);
  // Only the columns berth reads: with 10,000 apps the answer has 20,000 rows of about 100.
  const columns = (lines[0]?.replace(/^# /, '').split(',') ?? []).map((name, i) => [name, i] as const).filter(([name]) => COLUMNS_READ.has(name));
  return lines.slice(1).map((line) => {
    const cells = line.split(',');
    const row: StatRow = {};
    for (const [name, i] of columns) row[name] = cells[i] ?? '';
    return row;
  });
}

const COLUMNS_READ = new Set(['pxname', 'svname', 'scur', 'status', 'check_status', 'hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other', 'econ', 'eresp', 'wretr', 'wredis']);

/** Requests in flight on each server, `backend/server` → count (what the scaler reads per instance). */
export function inFlightByServer(rows: StatRow[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, server] of serverStates(rows)) out.set(key, server.inFlight);
  return out;
}

/** Each server's requests in flight and HAProxy's status of it (UP, DOWN, DRAIN, MAINT…) with its last check. */
export function serverStates(rows: StatRow[]): Map<string, { inFlight: number; status: string; check: string }> {
  const out = new Map<string, { inFlight: number; status: string; check: string }>();
  for (const r of rows) {
    if (r.svname === 'FRONTEND' || r.svname === 'BACKEND') continue;
    out.set(`${r.pxname}/${r.svname}`, { inFlight: Number(r.scur ?? 0), status: r.status ?? '', check: r.check_status ?? '' });
  }
  return out;
}

/**
 * Per-app numbers of the requests HAProxy served itself, in Prometheus text: requests by status
 * class, in flight, upstream errors (connection, response), retries and redispatches, from each
 * app backend's row. The Node listener's own numbers (for what HAProxy handed it) come beside these.
 */
export function statsMetrics(rows: StatRow[], appOf: (backend: string) => string | undefined): string {
  const requests: string[] = [];
  const inFlight: string[] = [];
  const errors: string[] = [];
  const retries: string[] = [];
  for (const r of rows) {
    if (r.svname !== 'BACKEND') continue;
    const app = appOf(r.pxname ?? '');
    if (app === undefined) continue;
    for (const cls of ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const) requests.push(`berth_haproxy_requests_total{app="${app}",code="${cls}"} ${Number(r[`hrsp_${cls}`] ?? 0)}`);
    inFlight.push(`berth_haproxy_in_flight{app="${app}"} ${Number(r.scur ?? 0)}`);
    errors.push(`berth_haproxy_upstream_errors_total{app="${app}",kind="connect"} ${Number(r.econ ?? 0)}`, `berth_haproxy_upstream_errors_total{app="${app}",kind="response"} ${Number(r.eresp ?? 0)}`);
    retries.push(`berth_haproxy_retries_total{app="${app}"} ${Number(r.wretr ?? 0)}`, `berth_haproxy_redispatches_total{app="${app}"} ${Number(r.wredis ?? 0)}`);
  }
  return [
    '# HELP berth_haproxy_requests_total Requests HAProxy served itself, by app and status class.',
    '# TYPE berth_haproxy_requests_total counter',
    ...requests,
    '# HELP berth_haproxy_in_flight Requests in flight to the app now.',
    '# TYPE berth_haproxy_in_flight gauge',
    ...inFlight,
    '# HELP berth_haproxy_upstream_errors_total Failed connections to and answers from instances.',
    '# TYPE berth_haproxy_upstream_errors_total counter',
    ...errors,
    '# HELP berth_haproxy_retries_total Requests sent again (retries) and to another instance (redispatches).',
    '# TYPE berth_haproxy_retries_total counter',
    '# TYPE berth_haproxy_redispatches_total counter',
    ...retries,
  ].join('\n');
}
