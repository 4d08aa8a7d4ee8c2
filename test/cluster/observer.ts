// The observer of the drills: an app whose every copy reports (instance, epoch, machine, pid,
// monotonic time) several times a second to a collector in the root namespace, and a checker
// that reads those reports beside the registry's event stream.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BerthClient } from '../../sdk/berth-client.js';

/** How often each copy reports. */
export const REPORT_EVERY_MS = 100;

/**
 * What every observed copy runs: reports who it is to COLLECTOR_URL every REPORT_EVERY_MS.
 * `version` is a JavaScript expression (a quoted string, or `process.env.BERTH_PROCESS`).
 */
export function reporterSource(version: string): string {
  return `
const http = require('node:http');
const me = { instance: process.env.BERTH_INSTANCE, epoch: Number(process.env.BERTH_EPOCH), machine: process.env.BERTH_MACHINE, pid: process.pid, version: ${version} };
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const target = new URL(process.env.COLLECTOR_URL);
function report() {
  // CLOCK_MONOTONIC: one clock for every process of this host, whatever its namespace.
  const body = JSON.stringify({ ...me, t: Number(process.hrtime.bigint() / 1000n) / 1000 });
  const req = http.request({ host: target.hostname, port: target.port, path: '/report', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => res.resume());
  req.on('error', () => undefined);
  req.setTimeout(1000, () => req.destroy());
  req.end(body);
}
report();
setInterval(report, ${REPORT_EVERY_MS});
`;
}

/** The drill app: answers with who it is, and reports to COLLECTOR_URL while it runs. */
export function observerApp(version = 'v1'): Record<string, string> {
  return {
    'server.js': `${reporterSource(JSON.stringify(version))}
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(me));
});
server.listen(Number(process.env.PORT), process.env.HOST);
process.on('SIGTERM', () => { report(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 300).unref(); });
`,
  };
}

/** The host's monotonic clock in ms, as the apps stamp their reports. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export interface Report {
  instance: string;
  epoch: number;
  machine: string;
  pid: number;
  version: string;
  t: number;
}

/** One copy of an instance as seen through its reports: from its first to its last. */
export interface Run {
  instance: string;
  epoch: number;
  machine: string;
  pid: number;
  version: string;
  first: number;
  last: number;
  reports: number;
}

export interface Collector {
  url: string;
  reports: Report[];
  runs(): Run[];
  /** Copies that reported within the last `withinMs`. */
  live(withinMs?: number): Run[];
  close(): Promise<void>;
}

export async function startCollector(hostIp: string): Promise<Collector> {
  const reports: Report[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      try {
        reports.push(JSON.parse(body) as Report);
      } catch {
        // a copy killed mid-report
      }
      res.end();
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, hostIp, resolve));
  const port = (server.address() as AddressInfo).port;
  const runs = () => {
    const byCopy = new Map<string, Run>();
    for (const r of reports) {
      const key = `${r.instance}/${r.machine}/${r.pid}`;
      const run = byCopy.get(key);
      if (!run) byCopy.set(key, { instance: r.instance, epoch: r.epoch, machine: r.machine, pid: r.pid, version: r.version, first: r.t, last: r.t, reports: 1 });
      else {
        run.first = Math.min(run.first, r.t);
        run.last = Math.max(run.last, r.t);
        run.reports++;
      }
    }
    return [...byCopy.values()];
  };
  return {
    url: `http://${hostIp}:${port}/report`,
    reports,
    runs,
    live: (withinMs = 4 * REPORT_EVERY_MS) => {
      const now = monotonicMs();
      return runs().filter((r) => now - r.last < withinMs);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Claims as the registry's event stream announced them: `instance/machine/epoch`. */
export function followClaims(client: BerthClient): { claims: Set<string>; stop(): void } {
  const claims = new Set<string>();
  const abort = new AbortController();
  let from = '0-0';
  void (async () => {
    for (;;) {
      try {
        for await (const e of client.events({ from, signal: abort.signal })) {
          if (!('id' in e)) continue;
          from = e.id;
          if (e.kind === 'claimed' && e.instance && e.machine) claims.add(`${e.instance}/${e.machine}/${e.epoch}`);
        }
      } catch {
        // the registry or Redis restarted: read again from the start
      }
      if (abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return { claims, stop: () => abort.abort() };
}

/**
 * The invariants: no two copies of one instance overlap in time (beyond `skewMs`: reports are
 * stamped by one monotonic clock, so only a report's own delay counts), and every copy ran
 * under a claim the registry granted to its machine with its epoch. Returns what is wrong.
 */
export function violations(runs: Run[], claims: Set<string> | undefined, skewMs = 20): string[] {
  const out: string[] = [];
  const byInstance = new Map<string, Run[]>();
  for (const r of runs) byInstance.set(r.instance, [...(byInstance.get(r.instance) ?? []), r]);
  for (const [instance, copies] of byInstance) {
    for (let i = 0; i < copies.length; i++)
      for (let j = i + 1; j < copies.length; j++) {
        const a = copies[i]!;
        const b = copies[j]!;
        const overlap = Math.min(a.last, b.last) - Math.max(a.first, b.first);
        if (overlap > skewMs) out.push(`${instance} ran twice for ${overlap.toFixed(0)} ms: ${a.machine} pid ${a.pid} epoch ${a.epoch} and ${b.machine} pid ${b.pid} epoch ${b.epoch}`);
      }
  }
  if (claims) for (const r of runs) if (!claims.has(`${r.instance}/${r.machine}/${r.epoch}`)) out.push(`${r.instance} ran on ${r.machine} under epoch ${r.epoch}, a claim the event stream never announced`);
  return out;
}
