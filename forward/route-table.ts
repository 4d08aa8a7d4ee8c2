/**
 * A running instance as routing knows it: where it is, nothing of how it fares. Engines keep
 * their own state of it beside the table, keyed by this object (the table keeps the object
 * while the instance stays; for an instance here, through a full resync too).
 */
export interface RoutedInstance {
  id: string;
  epoch: number;
  machine: string;
  host: string;
  port: number;
  /** `http://host:port`, what the forwarder dispatches to (made once, not per request). */
  origin: string;
  /** The app's process id (for GetCulprit), 0 when unknown. */
  pid: number;
}

export interface Route {
  app: string;
  prefix: string;
  stripPrefix: boolean;
  /** Instances on this machine. */
  local: RoutedInstance[];
  /** Instances elsewhere, by machine: where to forward when none runs here. */
  remote: Map<string, RoutedInstance[]>;
}

/** What changed in a table since the last `takeChanges()`: every app (a full load), or these apps, and whether any domain did. */
export interface TableChanges {
  all: boolean;
  apps: Set<string>;
  domains: boolean;
}

export interface AppRouteSettings {
  name: string;
  path: string;
  stripPrefix: boolean;
}

/** One of an app's own hosts (berth domains:add): its name as stored (lowercase ASCII, maybe `*.`), and the prefix inside it. */
export interface DomainRouteSettings {
  domain: string;
  app: string;
  path: string;
}

export interface RunningInstance {
  id: string;
  service: string;
  epoch: number;
  machine: string;
  host: string;
  port: number;
  pid: number;
}

/**
 * The host name a request asked for, as domains are matched: lowercase, without the port and
 * a trailing dot ("Shop.Example.com.:443" → "shop.example.com"). An IPv6 literal keeps its
 * brackets (it matches no domain).
 */
export function requestHostName(host: string | undefined): string {
  if (host === undefined || host === '') return '';
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    end = host.indexOf(']') + 1;
    if (end === 0) end = host.length;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) end = colon;
  }
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end -= 1;
  return host.slice(0, end).toLowerCase();
}

/** The one-level wildcard that covers `name` ("shop.example.com" → "*.example.com"), or undefined for a name of one label. */
export function wildcardOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot <= 0 || dot === name.length - 1 ? undefined : `*${name.slice(dot)}`;
}

/** Longest whole-segment prefix of `path` among `routes`, by probing the path's own segment boundaries. */
function longestPrefix(routes: ReadonlyMap<string, Route>, path: string): Route | undefined {
  let end = path.length;
  for (;;) {
    const candidate = end === 0 ? '/' : path.slice(0, end);
    const route = routes.get(candidate);
    if (route !== undefined) return route;
    if (end === 0) return undefined;
    end = path.lastIndexOf('/', end - 1);
    if (end < 0) return undefined;
  }
}

/**
 * Path prefix → the app served there → its running instances (here, and by machine
 * elsewhere): pure routing, shared by the proxy and the balancer; how each instance fares is
 * an engine's own business. Only running instances of their current epoch are in it.
 * Lookup matches whole segments and takes the longest prefix,
 * by probing the path's own segment boundaries: O(depth) map lookups, no scan of routes.
 * Hosts come first: a request whose host is one of an app's own domains (exact, else the
 * one-level wildcard above it) is routed only within that host's prefixes; any other host
 * (the shared one, an address) is routed on the shared prefixes as before.
 */
export class RouteTable {
  private readonly byPrefix = new Map<string, Route>();
  private readonly byApp = new Map<string, Route>();
  /** Instances whose app is not known yet (events can arrive in any order). */
  private readonly orphans = new Map<string, RunningInstance>();
  private readonly instanceApp = new Map<string, string>();
  /** Host (lowercase ASCII, `*.` for a wildcard) → its prefix → the route there. */
  private readonly byHost = new Map<string, Map<string, Route>>();
  private readonly domainSettings = new Map<string, DomainRouteSettings>();

  /** Kept once trackChanges() was called: what an engine outside Node has not applied yet. */
  private changes: TableChanges | undefined;

  constructor(private readonly machine: string) {}

  /** From now on, note which apps change (takeChanges), so that an engine applies only those. */
  trackChanges(): void {
    this.changes ??= { all: true, apps: new Set(), domains: true };
  }

  /** What changed since the last call (everything, the first time), and starts noting afresh. */
  takeChanges(): TableChanges {
    const taken = this.changes ?? { all: true, apps: new Set(), domains: true };
    if (this.changes !== undefined) this.changes = { all: false, apps: new Set(), domains: false };
    return taken;
  }

  /** The app's route while it holds its prefix (an app whose prefix another took is not routed). */
  routeOf(app: string): Route | undefined {
    const route = this.byApp.get(app);
    return route !== undefined && this.byPrefix.get(route.prefix) === route ? route : undefined;
  }

  /** The route holding exactly this prefix. */
  routeAt(prefix: string): Route | undefined {
    return this.byPrefix.get(prefix);
  }

  private touched(app: string): void {
    this.changes?.apps.add(app);
  }

  get size(): number {
    return this.byPrefix.size;
  }

  /** Whether the table has the app's settings (a route), with or without instances. */
  hasApp(name: string): boolean {
    return this.byApp.has(name);
  }

  routes(): IterableIterator<Route> {
    return this.byPrefix.values();
  }

  /** The route of `path` on `host` (a Host header or :authority as sent; without one, the shared host's). */
  lookup(path: string, host?: string): Route | undefined {
    if (host !== undefined && this.byHost.size > 0) {
      const name = requestHostName(host);
      let routes = this.byHost.get(name);
      if (routes === undefined) {
        const wildcard = wildcardOf(name);
        if (wildcard !== undefined) routes = this.byHost.get(wildcard);
      }
      if (routes !== undefined) return longestPrefix(routes, path);
    }
    return longestPrefix(this.byPrefix, path);
  }

  /** The domain (as stored) that routes `host` (a Host header as sent), or undefined for the shared host's. */
  domainOf(host: string | undefined): string | undefined {
    if (this.byHost.size === 0) return undefined;
    const name = requestHostName(host);
    if (this.byHost.has(name)) return name;
    const wildcard = wildcardOf(name);
    return wildcard !== undefined && this.byHost.has(wildcard) ? wildcard : undefined;
  }

  /** The domains routed, as set (for engines that build their own configuration from the table). */
  domains(): IterableIterator<DomainRouteSettings> {
    return this.domainSettings.values();
  }

  /**
   * Routes `path` on `domain` to `app` (replacing what the domain had). The route follows the
   * app's instances and strip-prefix setting as they change, and waits for an app not known yet.
   */
  setDomain(settings: DomainRouteSettings): void {
    this.removeDomain(settings.domain);
    if (this.changes !== undefined) this.changes.domains = true;
    const table = this;
    const app = settings.app;
    const route: Route = {
      app,
      prefix: settings.path,
      get stripPrefix() {
        return table.byApp.get(app)?.stripPrefix ?? false;
      },
      get local() {
        return table.byApp.get(app)?.local ?? [];
      },
      get remote() {
        return table.byApp.get(app)?.remote ?? new Map<string, RoutedInstance[]>();
      },
    };
    let routes = this.byHost.get(settings.domain);
    if (routes === undefined) this.byHost.set(settings.domain, (routes = new Map()));
    routes.set(settings.path, route);
    this.domainSettings.set(settings.domain, { ...settings });
  }

  removeDomain(domain: string): void {
    const known = this.domainSettings.get(domain);
    if (known === undefined) return;
    if (this.changes !== undefined) this.changes.domains = true;
    this.domainSettings.delete(domain);
    const routes = this.byHost.get(domain);
    routes?.delete(known.path);
    if (routes !== undefined && routes.size === 0) this.byHost.delete(domain);
  }

  setApp(settings: AppRouteSettings): void {
    this.touched(settings.name);
    // An app whose prefix this one takes is no longer routed.
    const displaced = this.byPrefix.get(settings.path);
    if (displaced !== undefined && displaced.app !== settings.name) this.touched(displaced.app);
    const existing = this.byApp.get(settings.name);
    if (existing !== undefined && existing.prefix === settings.path) {
      existing.stripPrefix = settings.stripPrefix;
      return;
    }
    const route: Route = existing ?? { app: settings.name, prefix: settings.path, stripPrefix: settings.stripPrefix, local: [], remote: new Map() };
    if (existing !== undefined) this.byPrefix.delete(existing.prefix);
    route.prefix = settings.path;
    route.stripPrefix = settings.stripPrefix;
    this.byApp.set(settings.name, route);
    this.byPrefix.set(settings.path, route);
    for (const [id, orphan] of this.orphans) {
      if (orphan.service === settings.name) {
        this.orphans.delete(id);
        this.addInstance(orphan);
      }
    }
  }

  removeApp(name: string): void {
    this.touched(name);
    for (const d of [...this.domainSettings.values()]) if (d.app === name) this.removeDomain(d.domain);
    const route = this.byApp.get(name);
    if (route === undefined) return;
    this.byApp.delete(name);
    if (this.byPrefix.get(route.prefix) === route) this.byPrefix.delete(route.prefix);
    for (const u of [...route.local, ...[...route.remote.values()].flat()]) this.instanceApp.delete(u.id);
  }

  /** Adds a running instance, or replaces an older epoch of it; an older epoch than known is ignored. */
  addInstance(instance: RunningInstance): void {
    this.touched(instance.service);
    const route = this.byApp.get(instance.service);
    if (route === undefined) {
      this.orphans.set(instance.id, instance);
      return;
    }
    const known = this.find(route, instance.id);
    if (known !== undefined) {
      if (known.epoch > instance.epoch) return;
      this.removeInstance(instance.id);
    }
    const upstream: RoutedInstance = {
      id: instance.id,
      epoch: instance.epoch,
      machine: instance.machine,
      host: instance.host,
      port: instance.port,
      origin: `http://${instance.host.includes(':') ? `[${instance.host}]` : instance.host}:${instance.port}`,
      pid: instance.pid,
    };
    if (instance.machine === this.machine) route.local = [...route.local, upstream];
    else route.remote.set(instance.machine, [...(route.remote.get(instance.machine) ?? []), upstream]);
    this.instanceApp.set(instance.id, instance.service);
  }

  /** Drops an instance; with `epoch`, only when it is that epoch or older (a late event for a newer claim is ignored). */
  removeInstance(id: string, epoch?: number): void {
    this.orphans.delete(id);
    const app = this.instanceApp.get(id);
    if (app === undefined) return;
    this.touched(app);
    const route = this.byApp.get(app);
    if (route === undefined) return;
    const known = this.find(route, id);
    if (known === undefined || (epoch !== undefined && known.epoch > epoch)) return;
    route.local = route.local.filter((u) => u.id !== id);
    for (const [machine, list] of route.remote) {
      const kept = list.filter((u) => u.id !== id);
      if (kept.length === 0) route.remote.delete(machine);
      else if (kept.length !== list.length) route.remote.set(machine, kept);
    }
    this.instanceApp.delete(id);
  }

  /** Replaces everything (a full resync), keeping the objects of local instances that stay (and so an engine's state of them). */
  replaceAll(apps: AppRouteSettings[], instances: RunningInstance[], domains: DomainRouteSettings[] = []): void {
    const previous = new Map<string, RoutedInstance>();
    for (const route of this.byApp.values()) for (const u of [...route.local, ...[...route.remote.values()].flat()]) previous.set(`${u.id}:${u.epoch}`, u);
    this.byPrefix.clear();
    this.byApp.clear();
    this.orphans.clear();
    this.instanceApp.clear();
    this.byHost.clear();
    this.domainSettings.clear();
    for (const app of apps) this.setApp(app);
    for (const domain of domains) this.setDomain(domain);
    for (const instance of instances) this.addInstance(instance);
    for (const route of this.byApp.values()) {
      route.local = route.local.map((u) => previous.get(`${u.id}:${u.epoch}`) ?? u);
    }
    if (this.changes !== undefined) this.changes = { all: true, apps: new Set(), domains: true };
  }

  private find(route: Route, id: string): RoutedInstance | undefined {
    return route.local.find((u) => u.id === id) ?? [...route.remote.values()].flat().find((u) => u.id === id);
  }
}
