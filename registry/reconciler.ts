import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { BerthError } from '../common/errors.js';
import { LeaderLoop } from './store/index.js';
import type { AddonStore, AppStore, BundleStore, App, Release, RegistryStore } from './store/index.js';
import { addonsStarting, planApp, type ReconcileAction, type StartingAddon } from './reconcile-plan.js';

export const DEFAULT_RECONCILE_INTERVAL_MS = 200;
export const DEFAULT_LEADER_LEASE_MS = 5000;
export const DEFAULT_DRAIN_MS = 2000;
export const DEFAULT_ROLLOUT_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_BUNDLE_GRACE_MS = 15 * 60_000;
const BUNDLE_COLLECT_INTERVAL_MS = 60_000;
/** A machine heard from this recently counts as one a release could run on (hosters beat every few seconds). */
const LIVE_MACHINE_MS = 30_000;

export interface ReconcilerOptions {
  store: RegistryStore;
  apps: AppStore;
  /** When given, the leader deletes bundles that no release uses. */
  bundles?: BundleStore;
  /** When given, a deploying release waits for its add-ons' first start (addonsStarting). */
  addons?: AddonStore;
  logger: Logger;
  /** How often the leader looks at every app. @default 200 */
  intervalMs?: number;
  /** Leadership lease; a dead leader is replaced after it. @default 5000 */
  leaseMs?: number;
  /**
   * How long a retired running instance stays unroutable before it is stopped: at least the
   * time a route change takes to reach every proxy, plus their idle keep-alive. @default 2000
   */
  drainMs?: number;
  /** A release whose instances are not all running this long after it was made has failed. @default 300000 */
  rolloutTimeoutMs?: number;
  /**
   * An unused bundle is deleted only once it is this old, so that one uploaded for a publish
   * that has not happened yet survives. @default 900000
   */
  bundleGraceMs?: number;
  /** Called after each round the leader completes (for tests and metrics). */
  onRound?: () => void;
}

/**
 * Converges every app to what its user wants (see planApp). Runs in every registry daemon;
 * only the holder of the leadership lease acts, and every action is idempotent, so a leader
 * dying at any point leaves nothing the next leader cannot finish.
 */
export class Reconciler {
  private readonly o: Required<Omit<ReconcilerOptions, 'onRound' | 'bundles' | 'addons'>> & Pick<ReconcilerOptions, 'onRound' | 'bundles' | 'addons'>;
  // The first collection comes one interval after start, not at once: a bundle uploaded just
  // before its app is published must not be swept in between (with a short grace period).
  private lastCollect = Date.now();
  /** Where the next round starts in the list of apps. */
  private next = 0;
  private readonly holder = `reconciler-${randomBytes(6).toString('hex')}`;
  private readonly loop: LeaderLoop;

  constructor(options: ReconcilerOptions) {
    this.o = {
      intervalMs: DEFAULT_RECONCILE_INTERVAL_MS,
      leaseMs: DEFAULT_LEADER_LEASE_MS,
      drainMs: DEFAULT_DRAIN_MS,
      rolloutTimeoutMs: DEFAULT_ROLLOUT_TIMEOUT_MS,
      bundleGraceMs: DEFAULT_BUNDLE_GRACE_MS,
      ...options,
    };
    this.loop = new LeaderLoop({
      store: this.o.store,
      leaseKey: this.o.store.keys.reconcilerLease,
      holder: this.holder,
      leaseMs: this.o.leaseMs,
      intervalMs: this.o.intervalMs,
      logger: this.o.logger,
      says: { name: 'reconciler', leading: 'this registry now leads reconciliation', following: 'another registry leads reconciliation now' },
      round: () => this.reconcileRound(),
      onRound: this.o.onRound,
    });
  }

  start(): void {
    this.loop.start();
  }

  /** True while this process holds the leadership lease. */
  get isLeader(): boolean {
    return this.loop.isLeader;
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  /** One round as the leader: every app (from where the last round stopped), then bundle collection. */
  private async reconcileRound(): Promise<void> {
    const log = this.o.logger;
    const started = Date.now();
    const apps = await this.o.apps.list();
    // Each round starts where the last one stopped, so that no app waits behind slow ones.
    const first = apps.length === 0 ? 0 : this.next % apps.length;
    for (let k = 0; k < apps.length; k++) {
      if (this.loop.stopped) return;
      // A round longer than the lease would let a second leader act beside this one.
      if (Date.now() - started > this.o.leaseMs / 2) break;
      const app = apps[(first + k) % apps.length]!;
      this.next = first + k + 1;
      try {
        await this.reconcile(app);
      } catch (err) {
        // One app's trouble must not stop the others from converging.
        if (err instanceof BerthError && err.code === 'redis_unavailable') throw err;
        log.error({ err, app: app.name }, `reconciling ${app.name} failed: will retry`);
      }
    }
    if (Date.now() - this.lastCollect >= BUNDLE_COLLECT_INTERVAL_MS) {
      this.lastCollect = Date.now();
      await this.collectBundles();
    }
  }

  /** Deletes bundles that no release of any app uses and that are older than the grace period. */
  async collectBundles(): Promise<string[]> {
    const bundles = this.o.bundles;
    if (bundles === undefined) return [];
    const now = await this.o.store.now();
    const stored = (await bundles.list()).filter((b) => now - b.storedAt >= this.o.bundleGraceMs);
    if (stored.length === 0) return [];
    const used = await this.o.apps.referencedBundles();
    const deleted: string[] = [];
    for (const b of stored) {
      if (used.has(b.digest)) continue;
      if (await bundles.delete(b.digest)) deleted.push(b.digest);
    }
    if (deleted.length > 0) this.o.logger.info({ bundles: deleted }, `deleted ${deleted.length} bundle(s) no release uses`);
    return deleted;
  }

  private machinesSeen: { at: number; count: number } | undefined;

  /** Machines heard from lately, read at most once a second: every app's plan uses it. */
  private async liveMachines(): Promise<number> {
    if (this.machinesSeen !== undefined && Date.now() - this.machinesSeen.at < 1000) return this.machinesSeen.count;
    const [machines, now] = await Promise.all([this.o.store.listMachines(), this.o.store.now()]);
    const count = machines.filter((m) => now - m.heartbeatAt <= LIVE_MACHINE_MS).length;
    this.machinesSeen = { at: Date.now(), count };
    return count;
  }

  private async reconcile(app: App): Promise<void> {
    const { store, apps } = this.o;
    const [releaseList, instances, now, liveMachines] = await Promise.all([apps.releases(app.name), store.instancesOf(app.name), store.now(), this.liveMachines()]);
    const releases = new Map<number, Release>(releaseList.map((r) => [r.version, r]));
    // Add-ons are read only for a release that deploys: the only one that may wait for them.
    const startingAddons = releases.get(app.release)?.status === 'deploying' && this.o.addons !== undefined ? await this.startingAddons(app.name) : undefined;
    const actions = planApp({ app, releases, instances, now, rolloutTimeoutMs: this.o.rolloutTimeoutMs, liveMachines, startingAddons });
    for (const action of actions) await this.apply(app, releases, action);
  }

  private async startingAddons(app: string): Promise<StartingAddon[]> {
    const addons = this.o.addons!;
    const names = [...new Set(Object.values(await addons.attachmentsOf(app)))];
    const stored = (await Promise.all(names.map((n) => addons.get(n)))).filter((a) => a !== undefined);
    return addonsStarting(stored, app);
  }

  private async apply(app: App, releases: Map<number, Release>, action: ReconcileAction): Promise<void> {
    const { store, apps, logger } = this.o;
    const log = logger.child({ app: app.name });
    switch (action.kind) {
      case 'register': {
        const release = releases.get(action.release)!;
        const ids = await store.registerMissing({
          service: app.name,
          path: app.path,
          release: action.release,
          wanted: action.wanted,
          attributes: release.requirements,
          files: release.bundle,
          process: action.process,
        });
        if (ids.length > 0) {
          const what = action.process === 'release' ? 'the release command' : `${ids.length} ${action.process} instance(s)`;
          log.info({ release: action.release, instances: ids, process: action.process }, `registered ${what} of ${app.name} v${action.release}`);
        }
        return;
      }
      case 'retire': {
        try {
          const outcome = await store.retire(app.name, action.id, this.o.drainMs, action.reason);
          log.debug({ instance: action.id, reason: action.reason, outcome }, 'retire step');
        } catch (err) {
          // Gone meanwhile (its hoster confirmed, or its lease expired): nothing left to do.
          if (!(err instanceof BerthError && err.code === 'instance_not_found')) throw err;
        }
        return;
      }
      case 'release-active':
        if (await apps.setReleaseStatus(app.name, action.version, 'active')) log.info({ release: action.version }, `${app.name} v${action.version} is live`);
        return;
      case 'release-failed':
        if (await apps.setReleaseStatus(app.name, action.version, 'failed', action.reason, action.fallback)) {
          log.warn(
            { release: action.version, reason: action.reason, fallback: action.fallback },
            `${app.name} v${action.version} failed: ${action.reason}; ${action.fallback === null ? 'no earlier release to keep serving' : `v${action.fallback} keeps serving`}`,
          );
        }
        return;
      case 'remove-app':
        if (await apps.remove(app.name)) log.info(`${app.name} deleted`);
        return;
    }
  }
}
