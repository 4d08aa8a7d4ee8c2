import { writeFile, rename } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../common/logger.js';
import type { RouteTable, TableChanges } from '../../forward/index.js';
import { addressOf, backendName, hostKeys, serverHealth, MIN_MATCH_DEPTH, renderConfig, renderMap, segmentDepth, serverName, slotName, spareName, NODE_BACKEND, type BackendState, type HaproxySettings, type ServerState } from './haproxy-config.js';
import type { HaproxyProcess } from './haproxy-process.js';
import { inFlightByServer, readStats } from './haproxy-stats.js';
import { runtimeBatch, runtimeChange } from './runtime-api.js';

/** How often servers being drained are looked at, to remove those with nothing left in flight. */
const SWEEP_EVERY_MS = 250;
/** Route-change latencies kept for the percentiles. */
const LATENCIES_KEPT = 1024;
/** Spare backends a (re)load declares: at least this many, and a quarter as many as the apps it has (each costs haproxy about 12 KB). */
const MIN_SPARES = 32;
const SPARE_SHARE = 0.25;
/** Free slots a (re)load declares in each backend: as many as its servers, this many at least (each costs haproxy about 6 KB). */
const MIN_FREE_SLOTS = 1;
/** `set server … addr … port …` answers with what changed, or that nothing had to. */
const SET_ADDRESS_OK = /(changed from|no need to change)/;
/** A failed change is tried again after this, doubled each time it fails again, up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 10_000;

export interface RouteApplierOptions {
  table: RouteTable;
  settings: HaproxySettings;
  configFile: string;
  process: HaproxyProcess;
  logger: Logger;
  graceMs: number;
}

/**
 * What the table asks of HAProxy: each app with instances here (and a prefix other than "/"), the
 * hosts map, the match depth; of every app, or (`scope`) of the apps changed since the last change.
 */
interface Desired {
  apps: Map<string, { app: string; prefix: string; stripPrefix: boolean; servers: Map<string, ServerState> }>;
  /** Every route's prefix but "/", and its app: one that HAProxy does not serve itself maps to berth's Node listener, so that no shorter prefix catches its paths. */
  prefixes: Map<string, string>;
  /** Keys of the hosts map (apps' own domains); undefined: no domain changed. */
  hosts: Set<string> | undefined;
  depth: number;
  /** Only these apps changed (their backends, servers and prefixes are looked at); undefined: every app. */
  scope: Set<string> | undefined;
}

/**
 * Keeps HAProxy equal to the route table, through its Runtime API: servers put in free slots of
 * their backend (`set server … addr … port …`, `state ready`), drained (`state drain`) and their
 * slots freed once idle (`state maint`),
 * prefixes mapped with `add/set/del map`. A new app takes a spare backend (declared empty at the
 * last reload), and one that has no instance here left gives its backend back: HAProxy cannot
 * add a backend at run time, and a reload costs a new worker parsing every backend (about 1.3 s
 * and 180 MB with 10,000) while the old one drains. Only what the Runtime API cannot do takes a
 * seamless reload, counted: no spare left (the reload declares spares for a quarter as many apps
 * again, so a burst of new apps takes a few reloads, not one each), an app with stripPrefix (its
 * prefix is in its backend's config) new or changed, a prefix deeper than the match depth. An
 * instance that finds no free slot in its backend is no reason: it gets a server of its own at
 * once (`add server`), without keep-alive to the app (haproxy 2.6 keeps no idle connection to
 * such a server) until a reload gives it a slot. Changes are applied one at a time, coalesced.
 */
export class RouteApplier {
  /** The backends HAProxy holds now, by name: apps' (those of deleted apps stay until they drained) and spares. */
  private backends = new Map<string, BackendState>();
  private byApp = new Map<string, BackendState>();
  /** Backends that serve no app and carry nothing of one in the config (spares, and those apps gave back). */
  private spares: BackendState[] = [];
  private appliedMap = new Map<string, string>();
  /** The prefix mapped for each app (its key in appliedMap), so that a change of one app looks at its prefixes only. */
  private appliedPrefixOf = new Map<string, string>();
  /** Apps whose backend the sweep emptied: the next change looks at them (to give the backend back). */
  private readonly emptied = new Set<string>();
  private appliedHosts = new Set<string>();
  private depth = MIN_MATCH_DEPTH;
  /** Servers set to drain: `backend/server` → since when. */
  private readonly draining = new Map<string, number>();
  private chain: Promise<void> = Promise.resolve();
  private queued = false;
  private pendingSince: number | undefined;
  /** Set when a runtime change failed: HAProxy's state is not known, so the next change reloads it whole. */
  private reloadNext = false;
  /** Changes that failed in a row (the retry's backoff). */
  private failures = 0;
  private readonly latencies: number[] = [];
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: RouteApplierOptions) {
    // A change looks at the apps it changed only: with 10,000 apps a look at all of them took
    // 25-50 ms a change (more under load), which a change of one app waited for.
    o.table.trackChanges();
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
        this.failures = 0;
        if (since !== undefined) this.record(performance.now() - since);
      } catch (err) {
        this.retryLater(err);
      }
    });
  }

  /** Writes the config and map for the table as it is, and takes that as HAProxy's state (before a start or reload). */
  async writeFiles(): Promise<void> {
    // All of the table is written: what changes from now on is applied after.
    this.o.table.takeChanges();
    const desired = this.desired();
    const { settings, configFile } = this.o;
    const backends = new Map<string, BackendState>();
    const byApp = new Map<string, BackendState>();
    for (const a of desired.apps.values()) {
      let n = 0;
      const servers = new Map([...a.servers].map(([name, server]) => [name, { ...server, slot: slotName(++n) }] as const));
      const free = Array.from({ length: Math.max(MIN_FREE_SLOTS, servers.size) }, () => slotName(++n));
      const b: BackendState = { name: backendName(a.app), app: a.app, prefix: a.prefix, stripPrefix: a.stripPrefix, servers, free };
      backends.set(b.name, b);
      byApp.set(a.app, b);
    }
    const map = new Map([...desired.prefixes].map(([prefix, app]) => [prefix, byApp.get(app)?.name ?? NODE_BACKEND]));
    const spares: BackendState[] = [];
    for (let n = Math.max(MIN_SPARES, Math.ceil(desired.apps.size * SPARE_SHARE)) - 1; n >= 0; n--) {
      const b: BackendState = { name: spareName(n), app: undefined, prefix: '', stripPrefix: false, servers: new Map(), free: Array.from({ length: MIN_FREE_SLOTS }, (_, i) => slotName(i + 1)) };
      backends.set(b.name, b);
      spares.push(b);
    }
    await atomicWrite(settings.mapFile, renderMap(map));
    await atomicWrite(settings.hostsFile, renderMap(new Map([...desired.hosts!].map((h) => [h, 'node']))));
    await atomicWrite(configFile, renderConfig(settings, backends.values(), desired.depth));
    this.backends = backends;
    this.byApp = byApp;
    this.spares = spares;
    this.appliedMap = map;
    this.appliedPrefixOf = new Map([...desired.prefixes].map(([prefix, app]) => [app, prefix]));
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
  appOf = (backend: string): string | undefined => this.backends.get(backend)?.app;

  /** The HAProxy backend serving an app now, if any. */
  backendOf = (app: string): string | undefined => this.byApp.get(app)?.name;

  /** HAProxy's `backend/slot` of an instance of `app` (by berth's server name), if it holds it. */
  slotOf = (app: string, server: string): string | undefined => {
    const b = this.byApp.get(app);
    const held = b?.servers.get(server);
    return held === undefined ? undefined : `${b!.name}/${held.slot}`;
  };

  /** Backends declared, how many serve an app and how many are spares, and the prefixes mapped (for the engine's report). */
  backendCounts(): { backends: number; appBackends: number; spares: number; prefixes: number } {
    return { backends: this.backends.size, appBackends: this.byApp.size, spares: this.spares.length, prefixes: this.appliedMap.size };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await this.chain;
  }

  /** What the table asks of HAProxy: for every app, or for the apps of `changes` only. */
  private desired(changes?: TableChanges): Desired {
    const { table } = this.o;
    const apps: Desired['apps'] = new Map();
    const prefixes = new Map<string, string>();
    const scope = changes === undefined || changes.all ? undefined : changes.apps;
    // Deeper prefixes raise the match depth (a reload); a look at every app lowers it again.
    let depth = scope === undefined ? MIN_MATCH_DEPTH : this.depth;
    const routes = scope === undefined ? table.routes() : [...scope].flatMap((app) => table.routeOf(app) ?? []);
    for (const route of routes) {
      depth = Math.max(depth, segmentDepth(route.prefix));
      if (route.prefix !== '/') prefixes.set(route.prefix, route.app);
      // No instance here (or "/", above every path): berth's Node listener routes it (another machine, or 503).
      if (route.local.length === 0 || route.prefix === '/') continue;
      const servers = new Map(route.local.map((u) => [serverName(u.id, u.epoch), { name: serverName(u.id, u.epoch), host: u.host, port: u.port }] as const));
      apps.set(route.app, { app: route.app, prefix: route.prefix, stripPrefix: route.stripPrefix, servers });
    }
    const hosts = scope !== undefined && !changes!.domains ? undefined : new Set([...table.domains()].flatMap((d) => hostKeys(d.domain)));
    return { apps, prefixes, hosts, depth, scope };
  }

  /** The backend an app's config allows it (its own, else a spare), or undefined: that takes a reload (see the class). */
  private backendFor(a: Desired['apps'] extends Map<string, infer A> ? A : never): BackendState | undefined {
    const b = this.byApp.get(a.app);
    if (b !== undefined) return b.stripPrefix === a.stripPrefix && (!b.stripPrefix || b.prefix === a.prefix) ? b : undefined;
    if (a.stripPrefix || this.spares.length === 0) return undefined;
    // A spare has no servers and nothing of an app in its config.
    const spare = this.spares.pop()!;
    spare.app = a.app;
    this.byApp.set(a.app, spare);
    return spare;
  }

  private async reconcile(): Promise<void> {
    const { process: haproxy, settings } = this.o;
    if (haproxy.workerPid === 0) return; // down: its restart writes the whole table
    const changes = this.o.table.takeChanges();
    for (const app of this.emptied) changes.apps.add(app);
    this.emptied.clear();
    const desired = this.desired(changes);
    // After a failed change HAProxy's state is not known: only a reload sets it.
    let reload = this.reloadNext || desired.depth !== this.depth;
    if (!this.reloadNext) reload = (await this.applyAtRunTime(desired)) || reload;
    if (reload) {
      const t0 = performance.now();
      await this.writeFiles();
      await haproxy.reload();
      this.o.logger.info({ reloads: haproxy.reloads, backends: this.backends.size, ms: Math.round(performance.now() - t0) }, 'haproxy reloaded (no spare backend left, a prefix with stripPrefix changed, or a deeper prefix)');
    }
  }

  /**
   * Brings HAProxy as close to `desired` as its Runtime API can; true when what is left takes a
   * reload. An app left without a backend meanwhile is mapped to berth's Node listener, which
   * routes it as the Node engine does.
   */
  private async applyAtRunTime(desired: Desired): Promise<boolean> {
    const { settings } = this.o;
    let reload = false;
    // Sent together at the end, in this order.
    const changes: { command: string; ok?: RegExp }[] = [];
    const api = (command: string, ok?: RegExp) => changes.push({ command, ok });
    // New servers first, then the map that sends requests to them.
    const served = new Map<string, string>();
    let servers = 0;
    for (const b of this.backends.values()) servers += b.servers.size;
    for (const a of desired.apps.values()) {
      const b = this.backendFor(a);
      if (b === undefined) {
        reload = true;
        continue;
      }
      b.prefix = a.prefix;
      served.set(a.app, b.name);
      for (const s of a.servers.values()) {
        const held = b.servers.get(s.name);
        if (held === undefined) {
          const slot = b.free.pop();
          if (slot === undefined) {
            // No free slot left: a server of its own, at once, without keep-alive to the app
            // (haproxy 2.6 keeps no idle connection to it) until a reload gives it a slot.
            const key = `${b.name}/${s.name}`;
            api(`add server ${key} ${addressOf(s)} ${serverHealth(servers)}`, /^New server registered\.$/);
            api(`enable server ${key}`);
            api(`enable health ${key}`);
            b.servers.set(s.name, { ...s, slot: s.name, added: true });
            continue;
          }
          const key = `${b.name}/${slot}`;
          // Checks off while the address changes, ready, then checked: leaving maintenance with
          // checks on would wait for a first check.
          api(`disable health ${key}`);
          api(`set server ${key} addr ${s.host} port ${s.port}`, SET_ADDRESS_OK);
          api(`set server ${key} state ready`);
          api(`enable health ${key}`);
          b.servers.set(s.name, { ...s, slot });
        } else if (this.draining.has(`${b.name}/${held.slot}`)) {
          api(`set server ${b.name}/${held.slot} state ready`);
          this.draining.delete(`${b.name}/${held.slot}`);
        }
      }
    }
    // The prefixes to look at: every one, or those the changed apps hold now or held before.
    const candidates =
      desired.scope === undefined
        ? new Set([...desired.prefixes.keys(), ...this.appliedMap.keys()])
        : new Set([...desired.prefixes.keys(), ...[...desired.scope].flatMap((app) => this.appliedPrefixOf.get(app) ?? [])]);
    for (const prefix of candidates) {
      const app = desired.prefixes.get(prefix);
      const backend = app === undefined ? undefined : (served.get(app) ?? NODE_BACKEND);
      const now = this.appliedMap.get(prefix);
      if (now === backend) continue;
      if (backend === undefined) {
        api(`del map ${settings.mapFile} ${prefix}`);
        this.appliedMap.delete(prefix);
      } else {
        api(now === undefined ? `add map ${settings.mapFile} ${prefix} ${backend}` : `set map ${settings.mapFile} ${prefix} ${backend}`);
        this.appliedMap.set(prefix, backend);
      }
    }
    // Which app holds which prefix now, for the next change of one of them.
    for (const app of desired.scope ?? [...this.appliedPrefixOf.keys()]) {
      const prefix = this.appliedPrefixOf.get(app);
      if (prefix !== undefined && desired.prefixes.get(prefix) !== app) this.appliedPrefixOf.delete(app);
    }
    for (const [prefix, app] of desired.prefixes) this.appliedPrefixOf.set(app, prefix);
    // Domains before their apps' servers leave: a request for one goes to the Node listener from now on.
    const hosts = desired.hosts ?? this.appliedHosts;
    for (const host of hosts) {
      if (this.appliedHosts.has(host)) continue;
      api(`add map ${settings.hostsFile} ${host} node`);
      this.appliedHosts.add(host);
    }
    for (const host of [...this.appliedHosts]) {
      if (hosts.has(host)) continue;
      api(`del map ${settings.hostsFile} ${host}`);
      this.appliedHosts.delete(host);
    }
    // Servers gone from the table drain: no new request, those in flight finish; the sweep removes them.
    const looked = desired.scope === undefined ? [...this.byApp.values()] : [...desired.scope].flatMap((app) => this.byApp.get(app) ?? []);
    for (const b of looked) {
      // An app waiting for a reload keeps its backend's servers as they are until then.
      if (desired.apps.has(b.app!) && !served.has(b.app!)) continue;
      const wanted = desired.apps.get(b.app!)?.servers;
      for (const s of b.servers.values()) {
        const key = `${b.name}/${s.slot}`;
        if (wanted?.has(s.name) || this.draining.has(key)) continue;
        api(`set server ${key} state drain`);
        this.draining.set(key, Date.now());
      }
      // An app with no instance here left gives back its emptied backend (one without its prefix in the config).
      if (wanted === undefined && b.servers.size === 0 && !b.stripPrefix) {
        this.byApp.delete(b.app!);
        b.app = undefined;
        b.prefix = '';
        this.spares.push(b);
      }
    }
    await runtimeBatch(settings.adminSocket, changes);
    return reload;
  }

  /** Removes drained servers with nothing in flight (or past the grace). */
  private async sweep(): Promise<void> {
    if (this.draining.size === 0 || this.o.process.workerPid === 0) return;
    // Only the backends with servers draining: `show stat` of every backend is a large answer
    // (about 0.6 s to read with 10,000 apps).
    const backends = new Set([...this.draining.keys()].map((key) => key.slice(0, key.indexOf('/'))));
    const inFlight = new Map<string, number>();
    for (const backend of backends) for (const [key, n] of inFlightByServer(await readStats(this.o.settings.adminSocket, backend))) inFlight.set(key, n);
    let anyEmptied = false;
    for (const [key, since] of [...this.draining]) {
      if ((inFlight.get(key) ?? 0) > 0 && Date.now() - since < this.o.graceMs) continue;
      const [backend, slot] = key.split('/') as [string, string];
      try {
        // In maintenance a slot is free again (its connections to this address go when another
        // takes it); a server added at run time is deleted.
        await runtimeChange(this.o.settings.adminSocket, `set server ${key} state maint`);
        const b = this.backends.get(backend);
        for (const [name, server] of b?.servers ?? []) {
          if (server.slot !== slot) continue;
          if (server.added === true) await runtimeChange(this.o.settings.adminSocket, `del server ${key}`, /^Server deleted\.$/);
          else b!.free.push(slot);
          b!.servers.delete(name);
        }
        if (b?.servers.size === 0 && b.app !== undefined) {
          this.emptied.add(b.app);
          anyEmptied = true;
        }
        this.draining.delete(key);
      } catch {
        // Connections still attached to a server added at run time (idle ones close soon), or
        // haproxy did not take the change: the next sweep tries again, and after that a reload.
        if (Date.now() - since < this.o.graceMs + 5000) continue;
        this.draining.delete(key);
        this.reloadNext = true;
      }
    }
    // An emptied backend of an app with no instance here goes back to the spares (reconcile does it).
    if (anyEmptied) this.enqueue(() => this.reconcile().catch((err: unknown) => this.retryLater(err)));
  }

  /**
   * A change failed: HAProxy's state is not known, so the next try reloads it whole, after 200 ms,
   * then twice as long each time it fails again (up to 10 s): a reload that cannot succeed (a
   * config haproxy refuses, no memory for a new worker) is not tried five times a second.
   */
  private retryLater(err: unknown): void {
    this.reloadNext = true;
    const delayMs = retryDelayMs(this.failures++);
    this.o.logger.warn({ err: err instanceof Error ? err.message : String(err), failures: this.failures, delayMs }, `haproxy: a route change failed: trying again with a reload in ${delayMs} ms`);
    setTimeout(() => this.changed(), delayMs).unref();
  }

  private record(ms: number): void {
    this.latencies.push(ms);
    if (this.latencies.length > LATENCIES_KEPT) this.latencies.shift();
  }
}

/** How long after its `failures`-th failure in a row (0 the first) a route change is tried again. */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(failures, 16));
}

async function atomicWrite(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}
