import { writeFile, rename } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../common/logger.js';
import type { RouteTable } from '../../forward/index.js';
import { addressOf, SERVER_HEALTH, backendName, hostKeys, MIN_MATCH_DEPTH, renderConfig, renderMap, segmentDepth, serverName, type BackendState, type HaproxySettings } from './haproxy-config.js';
import type { HaproxyProcess } from './haproxy-process.js';
import { inFlightByServer, readStats } from './haproxy-stats.js';
import { runtimeChange } from './runtime-api.js';

/** How often servers being drained are looked at, to remove those with nothing left in flight. */
const SWEEP_EVERY_MS = 250;
/** Route-change latencies kept for the percentiles. */
const LATENCIES_KEPT = 1024;

export interface RouteApplierOptions {
  table: RouteTable;
  settings: HaproxySettings;
  configFile: string;
  process: HaproxyProcess;
  logger: Logger;
  graceMs: number;
}

interface Desired {
  backends: Map<string, BackendState>;
  map: Map<string, string>;
  /** Keys of the hosts map (apps' own domains). */
  hosts: Set<string>;
  depth: number;
}

/**
 * Keeps HAProxy equal to the route table, through its Runtime API: servers added (`add server`,
 * `enable server`), drained (`state drain`) and removed once idle (`state maint`, `del server`),
 * prefixes mapped with `add/set/del map`. Only what the Runtime API cannot do takes a seamless
 * reload, counted: a backend for an app it has not seen, an app's prefix or stripPrefix changed,
 * a prefix deeper than the match depth. Changes are applied one at a time, coalesced.
 */
export class RouteApplier {
  /** What HAProxy holds now: its backends (those of deleted apps stay until a reload) and their servers. */
  private applied = new Map<string, BackendState>();
  private appliedMap = new Map<string, string>();
  private appliedHosts = new Set<string>();
  private depth = MIN_MATCH_DEPTH;
  /** Servers set to drain: `backend/server` → since when. */
  private readonly draining = new Map<string, number>();
  private chain: Promise<void> = Promise.resolve();
  private queued = false;
  private pendingSince: number | undefined;
  /** Set when a runtime change failed: HAProxy's state is not known, so the next change reloads it whole. */
  private reloadNext = false;
  private readonly latencies: number[] = [];
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: RouteApplierOptions) {
    this.sweeper = setInterval(() => {
      if (this.draining.size > 0) this.enqueue(() => this.sweep());
    }, SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /** The table changed: bring HAProxy to it (soon, once: changes that come meanwhile are applied together). */
  changed(): void {
    this.pendingSince ??= performance.now();
    if (this.queued || this.closed) return;
    this.queued = true;
    this.enqueue(async () => {
      this.queued = false;
      const since = this.pendingSince;
      this.pendingSince = undefined;
      try {
        await this.reconcile();
        if (since !== undefined) this.record(performance.now() - since);
      } catch (err) {
        this.reloadNext = true;
        this.o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'haproxy: a route change failed: trying again with a reload');
        setTimeout(() => this.changed(), 200).unref();
      }
    });
  }

  /** Writes the config and map for the table as it is, and takes that as HAProxy's state (before a start or reload). */
  async writeFiles(): Promise<void> {
    const desired = this.desired();
    const { settings, configFile } = this.o;
    await atomicWrite(settings.mapFile, renderMap(desired.map));
    await atomicWrite(settings.hostsFile, renderMap(new Map([...desired.hosts].map((h) => [h, 'node']))));
    await atomicWrite(configFile, renderConfig(settings, desired.backends.values(), desired.depth));
    this.applied = desired.backends;
    this.appliedMap = new Map(desired.map);
    this.appliedHosts = new Set(desired.hosts);
    this.depth = desired.depth;
    this.draining.clear();
    this.reloadNext = false;
  }

  /** Runs `fn` after every change queued before it (starts and restarts go through here too). */
  enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch((err: unknown) => this.o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'haproxy engine'));
    return run;
  }

  /** p50 and p99 of the last route changes, from the table's change to HAProxy holding it, in ms. */
  latency(): { count: number; p50Ms: number; p99Ms: number } {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (q: number) => (sorted.length === 0 ? 0 : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 100) / 100);
    return { count: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99) };
  }

  /** The app of an HAProxy backend (for per-app metrics). */
  appOf = (backend: string): string | undefined => this.applied.get(backend)?.app;

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await this.chain;
  }

  private desired(): Desired {
    const backends = new Map<string, BackendState>();
    const map = new Map<string, string>();
    let depth = MIN_MATCH_DEPTH;
    for (const route of this.o.table.routes()) {
      const name = backendName(route.app);
      const servers = new Map(route.local.map((u) => [serverName(u.id, u.epoch), { name: serverName(u.id, u.epoch), host: u.host, port: u.port }] as const));
      backends.set(name, { name, app: route.app, prefix: route.prefix, stripPrefix: route.stripPrefix, servers });
      // No instance here (or "/", above every path): berth's Node listener routes it (another machine, or 503).
      if (servers.size > 0 && route.prefix !== '/') map.set(route.prefix, name);
      depth = Math.max(depth, segmentDepth(route.prefix));
    }
    const hosts = new Set([...this.o.table.domains()].flatMap((d) => hostKeys(d.domain)));
    return { backends, map, hosts, depth };
  }

  private async reconcile(): Promise<void> {
    const { process: haproxy, settings } = this.o;
    if (haproxy.workerPid === 0) return; // down: its restart writes the whole table
    const desired = this.desired();
    const needsReload =
      this.reloadNext ||
      desired.depth !== this.depth ||
      [...desired.backends.values()].some((b) => {
        const now = this.applied.get(b.name);
        return now === undefined || now.prefix !== b.prefix || now.stripPrefix !== b.stripPrefix;
      });
    if (needsReload) {
      await this.writeFiles();
      await haproxy.reload();
      this.o.logger.info({ reloads: haproxy.reloads }, 'haproxy reloaded (a new app backend, or a prefix changed)');
      return;
    }
    const api = (command: string, ok?: RegExp) => runtimeChange(settings.adminSocket, command, ok);
    // New servers first, then the map that sends requests to them.
    for (const b of desired.backends.values()) {
      const now = this.applied.get(b.name)!;
      for (const s of b.servers.values()) {
        const key = `${b.name}/${s.name}`;
        if (!now.servers.has(s.name)) {
          await api(`add server ${key} ${addressOf(s)} ${SERVER_HEALTH}`, /^New server registered\.$/);
          // Ready first, then checked: leaving maintenance with checks on would wait for a first check.
          await api(`enable server ${key}`);
          await api(`enable health ${key}`);
          now.servers.set(s.name, s);
        } else if (this.draining.has(key)) {
          await api(`set server ${key} state ready`);
          this.draining.delete(key);
        }
      }
    }
    for (const [prefix, backend] of desired.map) {
      const now = this.appliedMap.get(prefix);
      if (now === backend) continue;
      await api(now === undefined ? `add map ${settings.mapFile} ${prefix} ${backend}` : `set map ${settings.mapFile} ${prefix} ${backend}`);
      this.appliedMap.set(prefix, backend);
    }
    for (const prefix of [...this.appliedMap.keys()]) {
      if (desired.map.has(prefix)) continue;
      await api(`del map ${settings.mapFile} ${prefix}`);
      this.appliedMap.delete(prefix);
    }
    // Domains before their apps' servers leave: a request for one goes to the Node listener from now on.
    for (const host of desired.hosts) {
      if (this.appliedHosts.has(host)) continue;
      await api(`add map ${settings.hostsFile} ${host} node`);
      this.appliedHosts.add(host);
    }
    for (const host of [...this.appliedHosts]) {
      if (desired.hosts.has(host)) continue;
      await api(`del map ${settings.hostsFile} ${host}`);
      this.appliedHosts.delete(host);
    }
    // Servers gone from the table drain: no new request, those in flight finish; the sweep removes them.
    for (const b of this.applied.values()) {
      const wanted = desired.backends.get(b.name)?.servers;
      for (const s of b.servers.values()) {
        const key = `${b.name}/${s.name}`;
        if (wanted?.has(s.name) || this.draining.has(key)) continue;
        await api(`set server ${key} state drain`);
        this.draining.set(key, Date.now());
      }
    }
  }

  /** Removes drained servers with nothing in flight (or past the grace). */
  private async sweep(): Promise<void> {
    if (this.draining.size === 0 || this.o.process.workerPid === 0) return;
    const inFlight = inFlightByServer(await readStats(this.o.settings.adminSocket));
    for (const [key, since] of [...this.draining]) {
      if ((inFlight.get(key) ?? 0) > 0 && Date.now() - since < this.o.graceMs) continue;
      const [backend, server] = key.split('/') as [string, string];
      try {
        await runtimeChange(this.o.settings.adminSocket, `set server ${key} state maint`);
        await runtimeChange(this.o.settings.adminSocket, `del server ${key}`, /^Server deleted\.$/);
        this.applied.get(backend)?.servers.delete(server);
        this.draining.delete(key);
      } catch {
        // Connections still attached (idle ones close soon): the next sweep tries again.
        if (Date.now() - since < this.o.graceMs + 5000) continue;
        this.draining.delete(key);
        this.reloadNext = true;
      }
    }
  }

  private record(ms: number): void {
    this.latencies.push(ms);
    if (this.latencies.length > LATENCIES_KEPT) this.latencies.shift();
  }
}

async function atomicWrite(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}
