import type { Logger } from 'pino';
import { waitForReady, type RedisClient } from '../common/redis-connection.js';
import { StopSignal, STOPPED } from '../common/stop-signal.js';
import { type AppStore, type DomainStore, currentEventId, readEvents, type RegistryEvent, type Instance, type RegistryStore } from '../registry/store/index.js';
import type { AppRouteSettings, DomainRouteSettings, RouteTable, RunningInstance } from './route-table.js';

export interface RouteSyncOptions {
  table: RouteTable;
  store: RegistryStore;
  apps: AppStore;
  /** Apps' own domains (host routing). */
  domains: DomainStore;
  /** A connection for blocking reads of the event stream. */
  events: RedisClient;
  logger: Logger;
  /** Each event as it is applied (the balancer follows certificates with it); never awaited. */
  onEvent?: (e: RegistryEvent) => void;
  /** Full reload this often, as a safety net besides events. @default 30000 */
  resyncIntervalMs?: number;
  /** Called after each change to the table (an event applied, a full load): what an engine outside Node follows. */
  onChange?: () => void;
  /**
   * This machine: its running instances that no route holds (workers) are kept too, so that the
   * proxy's CPU sampler measures them beside the routed ones. Absent: none are kept.
   */
  machine?: string;
}

/** A running instance of this machine that has no route (a worker): what the CPU sampler needs of it. */
export interface UnroutedInstance {
  service: string;
  instance: string;
  epoch: number;
  pid: number;
}

/** What a full load reads: the table's contents, and this machine's unrouted instances. */
interface Snapshot {
  settings: AppRouteSettings[];
  running: RunningInstance[];
  unrouted: Map<string, UnroutedInstance>;
  domains: DomainRouteSettings[];
}

/** A periodic load under way: the changes events made meanwhile (to do again on it), then the snapshot, or that it failed. */
interface BackgroundLoad {
  redo: Array<() => void>;
  snapshot?: Snapshot;
  failed: boolean;
}

const GONE = new Set(['draining', 'stopping', 'unregistered', 'released', 'expired']);

/**
 * Keeps the route table equal to the registry: a full load at start, after a gap in the
 * event stream, after Redis comes back, and periodically; in between, each event is applied
 * as it comes (milliseconds). While Redis is away the last table keeps serving.
 */
export class RouteSync {
  private readonly machines = new Map<string, string>();
  private unrouted = new Map<string, UnroutedInstance>();
  private stopped = false;
  private readonly stopSignal = new StopSignal();
  private loop: Promise<void> | undefined;
  private lastFull = 0;
  private background: BackgroundLoad | undefined;
  /** Set once the first full load succeeded. */
  ready = false;

  constructor(private readonly o: RouteSyncOptions) {}

  /** This machine's running instances that have no route (workers), as last loaded and followed. */
  unroutedLocal = (): UnroutedInstance[] => [...this.unrouted.values()];

  /** Where the proxy of `machine` listens, from its heartbeats. */
  proxyOf = (machine: string): string | undefined => this.machines.get(machine);

  start(): void {
    this.loop = this.run();
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.stopSignal.stop();
    this.o.events.disconnect();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { events, store, logger } = this.o;
    let position: string | undefined;
    let failing = false;
    while (!this.stopped) {
      try {
        // A fresh or reconnecting connection refuses commands until ready: wait for it, briefly.
        if (events.status !== 'ready') await waitForReady(events, 2000);
        if (position === undefined) {
          // At start, after a gap or an outage the table waits for the load. Take the stream
          // position first: nothing that happens during the load is missed.
          this.background = undefined;
          const from = await this.stopSignal.race(currentEventId(events, store.keys));
          if (from === STOPPED) return;
          await this.fullLoad();
          position = from;
          if (failing) logger.info('route sync reaches Redis again: table reloaded');
          failing = false;
        } else if (this.background === undefined && Date.now() - this.lastFull > (this.o.resyncIntervalMs ?? 30_000)) {
          this.startBackgroundLoad();
        }
        if (this.background?.failed === true) position = undefined;
        if (this.background?.snapshot !== undefined) this.installBackgroundLoad();
        if (position === undefined) continue;
        const batch = await this.stopSignal.race(readEvents(events, store.keys, position, { blockMs: 1000, count: 500 }));
        if (batch === STOPPED) return;
        if (batch.resync) {
          logger.warn('route sync fell behind the event stream: reloading the table');
          position = undefined;
          continue;
        }
        for (const e of batch.events) {
          position = e.id;
          await this.apply(e);
          this.o.onEvent?.(e);
        }
        if (batch.events.length > 0) this.o.onChange?.();
      } catch (err) {
        if (this.stopped) return;
        if (!failing) logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'route sync cannot reach Redis: serving the last known table');
        failing = true;
        position = undefined;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Reads every app and running instance; replaces the table in one step. */
  async fullLoad(): Promise<void> {
    this.install(await this.readSnapshot(), []);
  }

  /**
   * The periodic load, read while events go on being applied (with 10,000 apps the read takes a
   * quarter of a second, more under load: a change that came meanwhile waited for it). What the
   * events change meanwhile is recorded, and done again on the snapshot when it is installed, in
   * the same step: what changed before the read began is in the snapshot, what changed after it
   * is in an event, applied before the install (and so redone on it) or after it.
   */
  private startBackgroundLoad(): void {
    const load: BackgroundLoad = { redo: [], failed: false };
    this.background = load;
    this.readSnapshot().then(
      // Installed by the loop once its event read returns (events, or its 1 s wait).
      (snapshot) => {
        load.snapshot = snapshot;
      },
      (err: unknown) => {
        if (this.background !== load) return;
        this.o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'route sync: the periodic reload failed: reloading the table');
        load.failed = true;
      },
    );
  }

  private installBackgroundLoad(): void {
    const load = this.background!;
    this.background = undefined;
    this.install(load.snapshot!, load.redo);
  }

  private async readSnapshot(): Promise<Snapshot> {
    const { store, apps } = this.o;
    const settings: AppRouteSettings[] = [];
    const running: RunningInstance[] = [];
    const unrouted = new Map<string, UnroutedInstance>();
    const appList = await apps.list();
    const appNames = new Set(appList.map((a) => a.name));
    for (const app of appList) settings.push({ name: app.name, path: app.path, stripPrefix: app.stripPrefix });
    for (const [service, instances] of await store.instancesOfEach(await store.listServices())) {
      // Services registered through the plain registry API are routed on their instances' path.
      if (!appNames.has(service) && instances[0] !== undefined) settings.push({ name: service, path: instances[0].path, stripPrefix: false });
      for (const i of instances) {
        if (routable(i)) running.push(toRunning(i));
        else if (this.isUnroutedHere(i)) unrouted.set(i.id, toUnrouted(i));
      }
    }
    const domains: DomainRouteSettings[] = (await this.o.domains.list()).map((d) => ({ domain: d.domain, app: d.app, path: d.path }));
    await this.loadMachines();
    return { settings, running, unrouted, domains };
  }

  /** Replaces the table with `snapshot`, then does `redo` again on it, in one step (no request sees the table between). */
  private install(snapshot: Snapshot, redo: Array<() => void>): void {
    this.o.table.replaceAll(snapshot.settings, snapshot.running, snapshot.domains);
    this.unrouted = snapshot.unrouted;
    for (const change of redo) change();
    this.lastFull = Date.now();
    this.ready = true;
    this.o.onChange?.();
  }

  /** A change of the table (or of the unrouted instances) an event makes: done now, and again on a snapshot being read meanwhile. */
  private change(fn: () => void): void {
    fn();
    this.background?.redo.push(fn);
  }

  private async apply(e: RegistryEvent): Promise<void> {
    const { table, store, apps } = this.o;
    switch (e.kind) {
      case 'running': {
        const i = await store.getInstance(e.instance!).catch(() => undefined);
        if (i !== undefined && routable(i)) {
          if (!this.o.table.hasApp(i.service)) await this.learnApp(i);
          const running = toRunning(i);
          this.change(() => table.addInstance(running));
        } else if (i !== undefined && this.isUnroutedHere(i)) {
          const unrouted = toUnrouted(i);
          this.change(() => this.unrouted.set(unrouted.instance, unrouted));
        }
        return;
      }
      case 'unroutable':
        // Failed its health check while it ran: out at once, back when it runs again.
        if (e.instance !== undefined && e.epoch !== undefined) {
          const [id, epoch] = [e.instance, e.epoch];
          this.change(() => table.removeInstance(id, epoch));
        }
        return;
      case 'claimed':
        // A new claim: any older epoch of this instance is gone.
        if (e.instance !== undefined && e.epoch !== undefined) {
          const [id, older] = [e.instance, e.epoch - 1];
          this.change(() => {
            table.removeInstance(id, older);
            this.forgetUnrouted(id, older);
          });
        }
        return;
      case 'app-created':
      case 'app-updated': {
        const app = await apps.get(e.service!).catch(() => undefined);
        if (app !== undefined) {
          const settings = { name: app.name, path: app.path, stripPrefix: app.stripPrefix };
          this.change(() => table.setApp(settings));
        }
        return;
      }
      case 'app-deleted': {
        const name = e.service!;
        this.change(() => table.removeApp(name));
        return;
      }
      case 'domain-added': {
        const d = await this.o.domains.get(e.domain!).catch(() => undefined);
        if (d !== undefined) {
          const settings = { domain: d.domain, app: d.app, path: d.path };
          this.change(() => table.setDomain(settings));
        }
        return;
      }
      case 'domain-removed': {
        const domain = e.domain!;
        this.change(() => table.removeDomain(domain));
        return;
      }
      case 'machine-joined':
        await this.loadMachines();
        return;
      default:
        if (GONE.has(e.kind) && e.instance !== undefined) {
          const [id, epoch] = [e.instance, e.epoch];
          this.change(() => {
            table.removeInstance(id, epoch);
            this.forgetUnrouted(id, epoch);
          });
        }
    }
  }

  private isUnroutedHere(i: Instance): boolean {
    return this.o.machine !== undefined && i.state === 'running' && i.process !== 'web' && i.machine === this.o.machine && i.pid !== null && i.pid > 0;
  }

  /** As the table's removeInstance: an epoch given forgets only that claim (or an older one). */
  private forgetUnrouted(id: string, epoch: number | undefined): void {
    const known = this.unrouted.get(id);
    if (known !== undefined && (epoch === undefined || known.epoch <= epoch)) this.unrouted.delete(id);
  }

  private async learnApp(i: Instance): Promise<void> {
    const app = await this.o.apps.get(i.service).catch(() => undefined);
    const settings = app ? { name: app.name, path: app.path, stripPrefix: app.stripPrefix } : { name: i.service, path: i.path, stripPrefix: false };
    this.change(() => this.o.table.setApp(settings));
  }

  private async loadMachines(): Promise<void> {
    for (const m of await this.o.store.listMachines()) {
      const proxy = proxyOrigin(m.facts.proxy);
      if (proxy) this.machines.set(m.name, proxy);
      else this.machines.delete(m.name);
    }
  }
}

/**
 * A machine's proxy from its heartbeat as the origin requests are forwarded to
 * (`http://host:port`, made once here, not per request), or undefined when it gives none that
 * parses: such a machine is not forwarded to, and nothing in the request path can throw on it.
 */
export function proxyOrigin(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

function routable(i: Instance): boolean {
  // Only web instances serve the app's path: workers and release tasks have no port and no route.
  return i.state === 'running' && i.process === 'web' && i.machine !== null && i.port !== null;
}

function toUnrouted(i: Instance): UnroutedInstance {
  return { service: i.service, instance: i.id, epoch: i.epoch, pid: i.pid! };
}

function toRunning(i: Instance): RunningInstance {
  return { id: i.id, service: i.service, epoch: i.epoch, machine: i.machine!, host: i.host ?? '127.0.0.1', port: i.port!, pid: i.pid ?? 0 };
}
