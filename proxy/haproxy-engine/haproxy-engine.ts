import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import type { RouteTable } from '../../forward/index.js';
import { DRAINING_KEY, serverName, type HaproxySettings } from './haproxy-config.js';
import { HaproxyProcess } from './haproxy-process.js';
import { readStats, serverStates, statsMetrics } from './haproxy-stats.js';
import { RouteApplier } from './route-applier.js';
import { runtimeChange } from './runtime-api.js';

/** The proxy's settings HAProxy's config takes as they are (the rest of HaproxySettings the engine makes). */
type PassedSettings = Pick<HaproxySettings, 'nodePort' | 'trustedProxies' | 'maxConnections' | 'connectTimeoutMs' | 'upstreamTimeoutMs' | 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs' | 'maxHeaderBytes' | 'graceMs'>;

export interface HaproxyEngineOptions extends PassedSettings {
  /** haproxy's threads (`--workers`); 0: one per CPU (haproxyThreads). */
  workers: number;
  table: RouteTable;
  host: string;
  /** 0 picks a free one. */
  port: number;
  logger: Logger;
}

export interface HaproxyEngine {
  port: number;
  process: HaproxyProcess;
  /** The table changed (RouteSync's onChange). */
  changed(): void;
  /** The engine's part of /_berth/routes: in flight per instance (HAProxy's), reloads, restarts, route-change latency. */
  report(): Promise<{ server: (app: string, instance: string, epoch: number) => { inFlight: number; setAside: { why: string } | null }; engine: Record<string, unknown> }>;
  metricsText(): Promise<string>;
  /** Drains haproxy (HaproxyProcess.close): every answer says so from the start, then the port stops as `linger` says. */
  close(linger?: { listenLingerMs?: number; idleLingerMs?: number }): Promise<void>;
}

/** Where haproxy is: on PATH, or Debian's /usr/sbin (not on a non-root PATH), else undefined. */
export function findHaproxy(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, 'haproxy'), constants.X_OK);
      return join(dir, 'haproxy');
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Starts and supervises this machine's haproxy on the proxy's port, routing as `table` says:
 * its config is written once, route changes go through the Runtime API, a crash is restarted
 * (with the table as it is then) and logged.
 */
export async function startHaproxyEngine(o: HaproxyEngineOptions): Promise<HaproxyEngine> {
  const binary = findHaproxy();
  if (binary === undefined) throw new Error('haproxy is not installed: install it (apt-get install haproxy, or scripts/setup as root), or run the proxy with --engine node.');
  const dir = mkdtempSync(join(tmpdir(), 'berth-haproxy-'));
  // berth binds the port (so port 0 and a port in use are told at once) and hands the socket to haproxy.
  const listening = await listenOn(o.host, o.port);
  const port = (listening.address() as AddressInfo).port;
  const settings: HaproxySettings = {
    adminSocket: join(dir, 'admin.sock'),
    mapFile: join(dir, 'routes.map'),
    hostsFile: join(dir, 'hosts.map'),
    stateFile: join(dir, 'state.map'),
    nodePort: o.nodePort,
    trustedProxies: o.trustedProxies,
    threads: o.workers > 0 ? o.workers : haproxyThreads(availableParallelism()),
    maxConnections: o.maxConnections,
    fdLimit: hardFdLimit(),
    connectTimeoutMs: o.connectTimeoutMs,
    upstreamTimeoutMs: o.upstreamTimeoutMs,
    headersTimeoutMs: o.headersTimeoutMs,
    requestTimeoutMs: o.requestTimeoutMs,
    keepAliveTimeoutMs: o.keepAliveTimeoutMs,
    maxHeaderBytes: o.maxHeaderBytes,
    graceMs: o.graceMs,
  };
  const configFile = join(dir, 'haproxy.cfg');
  let closing = false;
  // Set right below: the crash handler needs it, and it needs the process.
  let applier: RouteApplier;
  const haproxy = new HaproxyProcess({
    binary,
    configFile,
    masterSocket: join(dir, 'master.sock'),
    adminSocket: settings.adminSocket,
    listenFd: (listening as unknown as { _handle: { fd: number } })._handle.fd,
    logger: o.logger,
    onCrash: (why) => {
      if (closing) return;
      haproxy.restarts++;
      const delayMs = haproxy.nextRestartDelay();
      o.logger.error({ restarts: haproxy.restarts, delayMs }, `${why}: restarting it in ${delayMs} ms`);
      const restart = () =>
        void applier.enqueue(async () => {
          if (closing) return;
          await applier.writeFiles();
          try {
            await haproxy.start();
            o.logger.info({ pid: haproxy.masterPid, restarts: haproxy.restarts }, 'haproxy restarted');
          } catch (err) {
            o.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'haproxy did not restart: trying again');
            setTimeout(restart, haproxy.nextRestartDelay()).unref();
          }
        });
      setTimeout(restart, delayMs).unref();
    },
  });
  // The keeper holds the socket now: berth's own copy would accept connections itself.
  listening.close();
  applier = new RouteApplier({ table: o.table, settings, configFile, process: haproxy, logger: o.logger, graceMs: o.graceMs });
  // Not draining; a haproxy restarted during a drain reads that it drains.
  writeFileSync(settings.stateFile, '');
  try {
    await applier.enqueue(async () => {
      await applier.writeFiles();
      await haproxy.check();
      await haproxy.start();
    });
  } catch (err) {
    // Nothing is left behind: the keeper (and the port) and the temp directory go.
    closing = true;
    await applier.close();
    await haproxy.close(0);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  o.logger.info({ pid: haproxy.masterPid, config: configFile }, `haproxy ${binary} serves the proxy's port ${port}`);

  const engineReport = () => ({ name: 'haproxy', masterPid: haproxy.masterPid, workerPid: haproxy.workerPid, reloads: haproxy.reloads, restarts: haproxy.restarts, ...applier.backendCounts(), routeChange: applier.latency() });
  return {
    port,
    process: haproxy,
    changed: () => applier.changed(),
    async report() {
      const servers = serverStates(haproxy.workerPid === 0 ? [] : await readStats(settings.adminSocket).catch(() => []));
      return {
        server: (app, instance, epoch) => {
          const slot = applier.slotOf(app, serverName(instance, epoch));
          const s = slot === undefined ? undefined : servers.get(slot);
          // UP (or "UP 1/2" while checks settle) serves; anything else is set aside, HAProxy's words for why.
          const serving = s === undefined || s.status.startsWith('UP') || s.status === 'no check';
          return { inFlight: s?.inFlight ?? 0, setAside: serving ? null : { why: `haproxy: ${s.status}${s.check ? ` (check ${s.check})` : ''}` } };
        },
        engine: engineReport(),
      };
    },
    async metricsText() {
      const rows = haproxy.workerPid === 0 ? [] : await readStats(settings.adminSocket).catch(() => []);
      const e = engineReport();
      return [
        statsMetrics(rows, applier.appOf),
        '# HELP berth_haproxy_reloads_total Seamless reloads of haproxy (what the Runtime API cannot change).',
        '# TYPE berth_haproxy_reloads_total counter',
        `berth_haproxy_reloads_total ${e.reloads}`,
        '# HELP berth_haproxy_restarts_total Restarts of haproxy after it exited unasked.',
        '# TYPE berth_haproxy_restarts_total counter',
        `berth_haproxy_restarts_total ${e.restarts}`,
        '# HELP berth_haproxy_route_change_ms Route changes from the table to haproxy, last 1024.',
        '# TYPE berth_haproxy_route_change_ms summary',
        `berth_haproxy_route_change_ms{quantile="0.5"} ${e.routeChange.p50Ms}`,
        `berth_haproxy_route_change_ms{quantile="0.99"} ${e.routeChange.p99Ms}`,
        `berth_haproxy_route_change_ms_count ${e.routeChange.count}`,
        '',
      ].join('\n');
    },
    async close(linger) {
      closing = true;
      // First of all, and from the file too should a reload be under way: answers say that the proxy drains.
      writeFileSync(settings.stateFile, `${DRAINING_KEY} 1\n`);
      if (haproxy.workerPid > 0) {
        await runtimeChange(settings.adminSocket, `add map ${settings.stateFile} ${DRAINING_KEY} 1`).catch((err: unknown) =>
          o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'haproxy: answers do not say that the proxy drains'),
        );
      }
      await applier.close();
      await haproxy.close(o.graceMs, linger);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * haproxy's threads by default: one per CPU, haproxy's own default. One per CPU but one (left to
 * the apps) was tried: on 2 CPUs it served 1–2 % more requests through the engine in one run and
 * 18 % more through HAProxy alone in another (docs/benchmarks.md), no gain to keep against
 * haproxy's own advice on machines with more CPUs.
 */
export function haproxyThreads(cpus: number): number {
  return Math.max(1, cpus);
}

/** This process's hard limit of open files, which haproxy inherits (haproxy-config.ts keeps its maxconn within it). */
function hardFdLimit(): number | undefined {
  try {
    const match = /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The proxy's listening socket, bound by berth. */
function listenOn(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`Port ${port} on ${host} is in use: stop what uses it or choose another with --port.`) : err),
    );
    server.listen({ port, host, backlog: 4096 }, () => resolve(server));
  });
}
