import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { BerthError } from '../common/errors.js';
import { WEB_PROCESS } from '../common/procfile.js';
import { LeaderLoop, wantedOf } from '../registry/store/index.js';
import type { AppStore, AutoscalePolicy, RegistryStore } from '../registry/store/index.js';
import { observeMachine } from './machine-observer.js';
import { planScaling, type AppObservation, type PlanOptions, type ScaleDecision } from './scaling-plan.js';

export const DEFAULT_SCALER_INTERVAL_MS = 5000;
export const DEFAULT_SCALER_LEASE_MS = 15_000;
export const DEFAULT_HOT_LOAD = 0.9;
export const DEFAULT_IDLE_RATIO = 0.5;
/** The hosters' default claim gate: a machine this loaded does not claim the moved copy itself. */
export const DEFAULT_REBALANCE_LOAD = 1.0;
export const DEFAULT_NOTICE_INTERVAL_MS = 60_000;
export const DEFAULT_REPORT_TIMEOUT_MS = 2000;
export const DEFAULT_DECISION_LOG_LENGTH = 1000;
/** A machine silent for this long is no longer counted (it is gone, not cool). */
export const DEFAULT_MACHINE_STALE_MS = 60_000;

export interface ScalerOptions extends Partial<PlanOptions> {
  store: RegistryStore;
  apps: AppStore;
  logger: Logger;
  /** How often the lease holder looks at every machine and app. @default 5000 */
  intervalMs?: number;
  /** The scaler lease; a dead scaler is replaced after it. @default 15000 */
  leaseMs?: number;
  /** Each proxy report must come within this. @default 2000 */
  reportTimeoutMs?: number;
  /** Decisions the log keeps. @default 1000 */
  logLength?: number;
  /** Machines whose last heartbeat is older are left out. @default 60000 */
  machineStaleMs?: number;
  /** Called with each decision applied (tests, metrics). */
  onDecision?: (decision: ScaleDecision & { at: number; scaler: string }) => void;
  /** Called after each round this scaler completes as the lease holder. */
  onRound?: () => void;
}

/**
 * `berth scaler`'s loop: any number may run; only the holder of the scaler lease acts. Each
 * round it reads every machine's load, culprit and routes from its proxy, plans each policed
 * process type of each app (see planScaling) and applies each decision with one fenced script
 * that also records it, so a scaler that lost its lease while it planned changes nothing. The reconciler then starts
 * new instances and retires removed ones through the no-downtime path, as for `berth scale`.
 */
export class Scaler {
  readonly holder = `scaler-${randomBytes(6).toString('hex')}`;
  private readonly o: Required<Omit<ScalerOptions, 'onDecision' | 'onRound'>> & Pick<ScalerOptions, 'onDecision' | 'onRound'>;
  private readonly loop: LeaderLoop;
  /** Machines unreachable last round, so that each is logged once when it goes and comes back. */
  private unreachable = new Set<string>();

  constructor(options: ScalerOptions) {
    this.o = {
      intervalMs: DEFAULT_SCALER_INTERVAL_MS,
      leaseMs: DEFAULT_SCALER_LEASE_MS,
      hotLoad: DEFAULT_HOT_LOAD,
      idleRatio: DEFAULT_IDLE_RATIO,
      rebalanceLoad: DEFAULT_REBALANCE_LOAD,
      noticeIntervalMs: DEFAULT_NOTICE_INTERVAL_MS,
      reportTimeoutMs: DEFAULT_REPORT_TIMEOUT_MS,
      logLength: DEFAULT_DECISION_LOG_LENGTH,
      machineStaleMs: DEFAULT_MACHINE_STALE_MS,
      ...options,
    };
    if (this.o.reportTimeoutMs >= this.o.leaseMs / 2) {
      throw new BerthError('invalid_config', `The report timeout (${this.o.reportTimeoutMs} ms) must be under half the scaler lease (${this.o.leaseMs} ms): a round must end well within the lease.`);
    }
    this.loop = new LeaderLoop({
      store: this.o.store,
      leaseKey: this.o.store.keys.scalerLease,
      holder: this.holder,
      leaseMs: this.o.leaseMs,
      intervalMs: this.o.intervalMs,
      logger: this.o.logger,
      says: { name: 'scaler', leading: 'this scaler now acts', following: 'another scaler acts now: standing by' },
      round: () => this.scaleOnce(),
      onRound: this.o.onRound,
    });
  }

  start(): this {
    this.loop.start();
    return this;
  }

  get isLeader(): boolean {
    return this.loop.isLeader;
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  /**
   * Flags the instance evacuating with its holder's own claim (machine and epoch, read now):
   * the reconciler starts a copy where a hoster has room and retires this one only once the
   * copy runs, as when a hoster leaves its machine.
   */
  private async move(app: string, id: string, log: Logger): Promise<void> {
    try {
      const instance = await this.o.store.getInstance(id);
      if (instance.service !== app || instance.machine === null || instance.state !== 'running') return;
      await this.o.store.markEvacuating({ service: app, id, machine: instance.machine, epoch: instance.epoch });
      log.info({ instance: id, machine: instance.machine }, `moving instance ${id} of ${app} off ${instance.machine}: a copy starts elsewhere first`);
    } catch (err) {
      // Gone or re-claimed meanwhile: the next round looks again.
      if (err instanceof BerthError && (err.code === 'instance_not_found' || err.code === 'stale_epoch')) return;
      throw err;
    }
  }

  /** One look at every machine and app, and the decisions it leads to (applied). */
  private async scaleOnce(): Promise<void> {
    const { store, apps, logger } = this.o;
    const policed = (await apps.list()).filter((a) => (a.autoscale !== null || Object.keys(a.autoscaleByType).length > 0) && a.state === 'active');
    if (policed.length === 0) return;
    const [allMachines, memory, now] = await Promise.all([store.listMachines(), apps.scalerMemory(), store.now()]);
    const machines = allMachines.filter((m) => now - m.heartbeatAt <= this.o.machineStaleMs);
    const observations = await Promise.all(machines.map((m) => observeMachine(m, this.o.reportTimeoutMs)));
    for (const m of observations) {
      if (!m.reachable && !this.unreachable.has(m.name)) logger.warn({ machine: m.name, error: m.error }, `cannot read the reports of ${m.name}: its apps will not shrink until it answers`);
      if (m.reachable && this.unreachable.has(m.name)) logger.info({ machine: m.name }, `${m.name} reports again`);
    }
    this.unreachable = new Set(observations.filter((m) => !m.reachable).map((m) => m.name));

    const appObservations: AppObservation[] = (
      await Promise.all(
        policed.map(async (app) => {
          const all = await store.instancesOf(app.name);
          const remembered = memory.get(app.name);
          // A policy of a type the current release no longer has waits (its instances retire): nothing to scale.
          const types = Object.keys(app.autoscaleByType);
          const released = types.length === 0 ? [] : Object.keys((await apps.release(app.name, app.release))?.processes ?? {});
          const policies: [string, AutoscalePolicy][] = [
            ...(app.autoscale === null ? [] : [[WEB_PROCESS, app.autoscale] as [string, AutoscalePolicy]]),
            ...Object.entries(app.autoscaleByType).filter(([type]) => released.includes(type)),
          ];
          return policies.map(([process, policy]): AppObservation => {
            // Each type on its own: web's CPU and requests in flight, a worker's CPU (docs/scaler.md).
            const ofType = all.filter((i) => i.process === process);
            const running = ofType.filter((i) => i.state === 'running' && i.release === app.release && !i.evacuating);
            const memo = process === WEB_PROCESS ? remembered : remembered?.types?.[process];
            return {
              name: app.name,
              process,
              ids: ofType.map((i) => i.id),
              wanted: wantedOf(app, process),
              running: running.length,
              machines: [...new Set(running.map((i) => i.machine).filter((m): m is string => m !== null))],
              // One move per app at a time, of whichever type.
              moving: all.filter((i) => i.evacuating).length,
              movable: running.map((i) => i.id),
              policy,
              lastChangeAt: memo?.changeAt ?? null,
              lastNoticeAt: memo?.noticeAt ?? null,
            };
          });
        }),
      )
    ).flat();
    const decisions = planScaling({
      machines: observations.map(({ error: _error, ...m }) => m),
      apps: appObservations,
      now,
      options: { hotLoad: this.o.hotLoad, idleRatio: this.o.idleRatio, noticeIntervalMs: this.o.noticeIntervalMs, rebalanceLoad: this.o.rebalanceLoad },
    });
    for (const d of decisions) {
      if (this.loop.stopped) return;
      const outcome = await apps.applyScaleDecision(d, { ...d, scaler: this.holder }, this.holder, this.o.logLength);
      const log = logger.child({ app: d.app, process: d.process });
      const what = d.process === WEB_PROCESS ? d.app : `${d.app}'s ${d.process}`;
      if (!outcome.applied) {
        // Lost the lease, or someone changed the app meanwhile: the next round looks again.
        log.info({ decision: d, why: outcome.why }, `decision on ${what} not applied (${outcome.why})`);
        if (outcome.why === 'not_leader') {
          this.loop.lost();
          return;
        }
        continue;
      }
      if (d.move !== undefined) await this.move(d.app, d.move.instance, log);
      if (d.cause === 'at_max') log.warn({ decision: d }, d.reason);
      else log.info({ decision: d }, `${what}: ${d.from} -> ${d.to} instances: ${d.reason}`);
      this.o.onDecision?.({ ...d, at: outcome.at, scaler: this.holder });
    }
  }
}
