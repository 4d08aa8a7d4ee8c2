import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BerthError } from '../common/errors.js';
import type { AddonStore, StoredAddon } from '../registry/store/index.js';
import type { AddonBinaries } from './addon-kinds.js';
import { AddonServer, stopLeftoverServer } from './addon-server.js';
import { addonUser, removeAddonUser } from './addon-user.js';
import type { AppUsers } from './app-users.js';

/** How often the supervisor looks at its machine's add-ons (and renews their leases). @default 2000 */
export const DEFAULT_ADDON_TICK_MS = 2000;
/** How often each running server's data size and connections are measured (at a tick, so at least a tick apart). @default 15000 */
export const DEFAULT_ADDON_USAGE_MS = 15_000;

export interface AddonSupervisorOptions {
  addons: AddonStore;
  machine: string;
  /** The hoster's data dir: add-ons live in `<dataDir>/addons/<id>`. */
  dataDir: string;
  /** Present when the hoster is root: each add-on runs as a user of its own. */
  appUsers: AppUsers | undefined;
  binaries: AddonBinaries;
  logger: Logger;
  /** The lease of each add-on's claim (renewed each tick, so keep it a few ticks long). */
  leaseMs: number;
  /** @default DEFAULT_ADDON_TICK_MS */
  tickMs?: number;
  /** @default DEFAULT_ADDON_USAGE_MS */
  usageMs?: number;
}

interface Held {
  addon: StoredAddon;
  epoch: number;
  server: AddonServer;
  /** When this hoster last measured it (ms, local clock; 0: not yet, so soon after it runs). */
  measuredAt: number;
  /** The measurement under way. */
  measuring: Promise<void> | undefined;
  /** The last one failed (said once until one succeeds). */
  measureFailed: boolean;
}

/**
 * Runs the add-ons pinned to this machine, as stateful instances: it takes each one's lease
 * (only this machine's hoster ever may), keeps its server running (addon-server.ts), renews the
 * lease with the server's state, stops the server when the add-on is destroyed or the claim is
 * lost, and removes a destroyed add-on's data. Its data is never removed otherwise: not by a
 * restart, not by a release, not when Redis is away (the server keeps running meanwhile, as
 * no other machine can take it over).
 */
export class AddonSupervisor {
  private readonly held = new Map<string, Held>();
  /** Where each add-on's folder is: `<hoster dir>/addons/<id>`. */
  readonly dir: string;
  private readonly tickMs: number;
  private readonly usageMs: number;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private closed = false;
  private warned = false;

  constructor(private readonly o: AddonSupervisorOptions) {
    this.dir = join(o.dataDir, 'addons');
    this.tickMs = o.tickMs ?? DEFAULT_ADDON_TICK_MS;
    this.usageMs = o.usageMs ?? DEFAULT_ADDON_USAGE_MS;
  }

  /** The add-on servers this machine holds now, by name. */
  get servers(): ReadonlyMap<string, AddonServer> {
    return new Map([...this.held].map(([name, h]) => [name, h.server]));
  }

  start(): void {
    // Passed through by each add-on's user to its own folder, never listed.
    mkdirSync(this.dir, { recursive: true, mode: 0o711 });
    chmodSync(this.dir, 0o711);
    this.schedule(0);
  }

  /** Stops every server and gives its lease back (the next hoster of this machine takes it at once). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await this.ticking;
    await Promise.all(
      [...this.held.values()].map(async (h) => {
        await h.measuring;
        await h.server.stop();
        await this.o.addons.report(h.addon.name, this.holder(h), { state: 'released', pid: null, detail: 'its hoster stopped', restarts: h.server.restarts }).catch(() => undefined);
      }),
    );
    this.held.clear();
    // A destroy just before the shutdown: its data goes now rather than at the next start.
    await this.emptyTrash().catch(() => undefined);
  }

  /** One look: claim what is new, report what runs, measure what is due, stop what went, empty the trash. */
  async tick(): Promise<void> {
    const mine = await this.o.addons.list(this.o.machine);
    for (const [name, h] of this.held) {
      const now = mine.find((a) => a.name === name);
      if (now === undefined || now.id !== h.addon.id) await this.drop(name, h, 'destroyed');
    }
    for (const addon of mine) {
      const h = this.held.get(addon.name);
      if (h === undefined) await this.claim(addon);
      else {
        await this.report(h);
        this.measureIfDue(h);
      }
    }
    await this.emptyTrash();
  }

  /**
   * Measures a running server's data size and connections when a measurement is due, in the
   * background (a slow server holds up no tick), and records it with the add-on (reportUsage).
   */
  private measureIfDue(h: Held): void {
    if (this.closed || h.measuring !== undefined || h.server.state !== 'running' || this.held.get(h.addon.name) !== h) return;
    if (h.measuredAt !== 0 && Date.now() - h.measuredAt < this.usageMs) return;
    h.measuredAt = Date.now();
    h.measuring = h.server
      .measure()
      .then(async (usage) => {
        await this.o.addons.reportUsage(h.addon.name, this.holder(h), usage);
        if (h.measureFailed) this.o.logger.info({ addon: h.addon.name }, `measuring the add-on ${h.addon.name} works again`);
        h.measureFailed = false;
      })
      .catch((err: unknown) => {
        // A lost claim or a destroyed add-on is the next report's to act on; anything else is said once.
        if (err instanceof BerthError && (err.code === 'stale_epoch' || err.code === 'addon_not_found')) return;
        if (!h.measureFailed) this.o.logger.warn({ addon: h.addon.name, err: h.server.masked(err instanceof Error ? err.message : String(err)) }, `could not measure the add-on ${h.addon.name}: addons:info shows its last measurement`);
        h.measureFailed = true;
      })
      .finally(() => {
        h.measuring = undefined;
      });
  }

  /** Removes the data (and user) of the add-ons destroyed since, unless still held. */
  private async emptyTrash(): Promise<void> {
    const trash = await this.o.addons.trash(this.o.machine);
    for (const id of Object.keys(trash)) {
      if ([...this.held.values()].some((h) => h.addon.id === id)) continue;
      // Only a destroyed add-on's folder, by its id: a name re-used is another add-on with another folder.
      // A server a killed hoster left running on it goes first (its data would go from under it).
      await stopLeftoverServer(join(this.dir, id));
      rmSync(join(this.dir, id), { recursive: true, force: true });
      removeAddonUser(this.o.appUsers, id);
      await this.o.addons.emptyTrash(this.o.machine, id);
      this.o.logger.info({ addonId: id }, 'removed the data of a destroyed add-on');
    }
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick()
        .then(() => {
          if (this.warned) this.o.logger.info('add-ons: the registry answers again');
          this.warned = false;
        })
        .catch((err: unknown) => {
          // Redis away: the servers keep running (no other machine may take them); said once.
          if (!this.warned) this.o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'add-ons: cannot reach the registry: their servers keep running');
          this.warned = true;
        })
        .finally(() => this.schedule(this.tickMs));
    }, ms);
  }

  private async claim(addon: StoredAddon): Promise<void> {
    const claim = await this.o.addons.claim(addon, this.o.machine, this.o.leaseMs);
    // A live lease of another claim of this machine (a hoster before this one): taken once it ends.
    if (claim === undefined) return;
    const user = addonUser(this.o.appUsers, addon.id);
    const h: Held = {
      addon,
      epoch: claim.epoch,
      measuredAt: 0,
      measuring: undefined,
      measureFailed: false,
      server: new AddonServer({
        addon,
        dir: join(this.dir, addon.id),
        user,
        binaries: this.o.binaries,
        logger: this.o.logger,
        onChange: () => {
          if (this.held.get(addon.name) !== h) return;
          void this.report(h).catch(() => undefined);
          // Measured as soon as it runs (again, after a restart), not a whole interval later.
          if (h.server.state === 'running') h.measuredAt = 0;
          this.measureIfDue(h);
        },
      }),
    };
    this.held.set(addon.name, h);
    this.o.logger.info({ addon: addon.name, kind: addon.kind, epoch: claim.epoch }, `took the add-on ${addon.name}`);
    h.server.start();
  }

  private async report(h: Held): Promise<void> {
    const s = h.server;
    try {
      await this.o.addons.report(h.addon.name, this.holder(h), { state: s.state, pid: s.pid, detail: s.detail, restarts: s.restarts });
    } catch (err) {
      if (err instanceof BerthError && (err.code === 'stale_epoch' || err.code === 'addon_not_found')) {
        await this.drop(h.addon.name, h, err.code === 'stale_epoch' ? 'its claim is another\'s now' : 'destroyed');
        return;
      }
      throw err;
    }
  }

  private async drop(name: string, h: Held, why: string): Promise<void> {
    if (this.held.get(name) === h) this.held.delete(name);
    this.o.logger.info({ addon: name }, `stopping the add-on ${name}: ${why}`);
    await h.measuring;
    await h.server.stop();
  }

  private holder(h: Held): { machine: string; epoch: number; leaseMs: number } {
    return { machine: this.o.machine, epoch: h.epoch, leaseMs: this.o.leaseMs };
  }
}
