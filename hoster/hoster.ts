import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from '../common/redis-connection.js';
import type { Instance } from '../registry/store/index.js';
import { adoptSurvivors } from './adoption.js';
import { ClaimLoop } from './claim-loop.js';
import { ControlPlaneWatch } from './control-plane-grace.js';
import { evacuate } from './evacuation.js';
import { EventFollower } from './event-follower.js';
import { FencedClaims } from './fenced-claims.js';
import { Heartbeat } from './heartbeat.js';
import { InstanceRunner, type RunnerContext } from './instance-runner.js';
import type { LoadSource } from '../common/load-source.js';
import { LogShipper } from './log-shipper.js';
import { PortAllocator } from './port-allocator.js';
import { DEFAULT_RUN_POLL_MS, OneOffRuns } from './one-off-runs.js';
import { RunStore } from '../registry/store/index.js';

export { FAILED_HERE_BACKOFF_MS } from './claim-loop.js';

export interface HosterOptions extends Omit<RunnerContext, 'ports' | 'onLog' | 'onDone' | 'instancesDir' | 'controlPlane'> {
  /**
   * While Redis is away for every machine, apps keep running for up to this long after this
   * machine last reached Redis (see control-plane-grace.ts); 0: they stop before their leases end.
   */
  controlPlaneGraceMs: number;
  /** A connection for blocking reads of the event stream. */
  events: RedisClient;
  /** A connection for log lines (plain commands). */
  redis: RedisClient;
  dataDir: string;
  portRange: [number, number];
  /** Full look at the registry this often, besides waking on events. @default 60000 */
  pollIntervalMs: number;
  heartbeatMs: number;
  /** Claim only while the 5-minute load per CPU is below this. @default 1.0 */
  maxLoadPerCpu: number;
  load: LoadSource;
  /** Most instances this machine runs. */
  capacity: number;
  /** Most instances claimed in one round: the load average lags, so claim in small steps. */
  claimsPerRound: number;
  /** Wait per instance of the same app already here before claiming another: spreads apps. */
  spreadDelayMs: number;
  labels: Record<string, string>;
  /** Where this machine's proxy listens, as others reach it (told in heartbeats). */
  proxyUrl: string;
  /** How long an evacuation waits for replacements before stopping what is left. */
  evacuateTimeoutMs: number;
  /** A new connection for blocking reads (each interactive run reads its input on one). */
  openBlockingConnection: () => RedisClient;
}

/**
 * The per-machine agent, a coordinator of its parts: the claim loop claims instances while
 * the machine has room and each runs through an InstanceRunner; the event follower wakes the
 * loop and stops copies whose claims ended; the heartbeat and the log shipper report; on
 * start it re-adopts survivors of a previous hoster, on shutdown it hands its instances over
 * (evacuation) or leaves them to be re-adopted.
 */
export class Hoster {
  private readonly runners = new Map<string, InstanceRunner>();
  private readonly ports: PortAllocator;
  private readonly ctx: RunnerContext;
  private stopped = false;
  private readonly claims: ClaimLoop;
  private readonly follower: EventFollower;
  private readonly heartbeat: Heartbeat;
  private readonly logs: LogShipper;
  /** Tells "Redis is away for everyone" from "this machine is cut off". */
  readonly controlPlane: ControlPlaneWatch;
  /** After Redis was out of reach: every lease renewed first, then claims again. */
  private renewedFirst: Promise<void> = Promise.resolve();
  private readonly fenced: FencedClaims;
  /** One-off runs (berth run, cron ticks) on this machine. */
  private readonly oneOffRuns: OneOffRuns;

  constructor(private readonly o: HosterOptions) {
    this.ports = new PortAllocator(o.portRange[0], o.portRange[1]);
    const instancesDir = join(o.dataDir, 'instances');
    // Passed through, never listed: which instances run here is no app's business.
    mkdirSync(instancesDir, { recursive: true, mode: 0o711 });
    chmodSync(instancesDir, 0o711);
    const stopped = () => this.stopped;
    this.controlPlane = new ControlPlaneWatch({
      machine: o.machine,
      store: o.store,
      logger: o.logger,
      graceMs: o.controlPlaneGraceMs,
      leaseMs: o.leaseMs,
      stopGraceMs: o.stopGraceMs,
      holding: () => this.runners.size,
      onChange: () => {
        for (const r of this.runners.values()) r.refreshDeadline();
      },
      onBack: () => this.renewFirst(),
    });
    this.fenced = new FencedClaims({ store: o.store, machine: o.machine, logger: o.logger });
    this.logs = new LogShipper({ redis: o.redis, keys: o.store.keys });
    this.ctx = {
      ...o,
      instancesDir,
      ports: this.ports,
      controlPlane: this.controlPlane,
      onLog: (app, instance, stream, line, process) => this.logs.queue(app, instance, stream, line, process),
      onDone: (runner) => {
        if (this.runners.get(runner.id) === runner) this.runners.delete(runner.id);
        if (runner.fenced) this.fenced.add(runner, o.leaseMs + o.controlPlaneGraceMs);
        this.claims.poke();
      },
    };
    this.claims = new ClaimLoop({
      ...o,
      ports: this.ports,
      held: this.runners,
      stopped,
      before: () => this.renewedFirst,
      onClaimed: (instance, port, sentAt) => this.run(instance, port, sentAt).start(),
    });
    this.follower = new EventFollower({
      events: o.events,
      keys: o.store.keys,
      stopped,
      onWork: () => this.claims.poke(),
      onRetired: (id, epoch) => void this.holderOf(id, epoch)?.stop('retired', true),
      onLost: (id, epoch) => void this.holderOf(id, epoch)?.stop('lost', false),
    });
    this.oneOffRuns = new OneOffRuns({
      runs: new RunStore(o.redis, o.store.keys),
      install: this.ctx,
      machine: o.machine,
      logger: o.logger,
      instancesDir,
      leaseMs: o.leaseMs,
      renewEveryMs: o.renewEveryMs,
      stopGraceMs: o.stopGraceMs,
      pollMs: DEFAULT_RUN_POLL_MS,
      // A run takes a place of the machine's capacity, and waits while the machine runs hot.
      room: () => !this.stopped && this.runners.size + this.oneOffRuns.size < o.capacity && o.load().perCpu < o.maxLoadPerCpu,
      openBlockingConnection: o.openBlockingConnection,
      onLog: (app, run, stream, line) => this.logs.queue(app, run, stream, line),
    });
    this.heartbeat = new Heartbeat({
      ...o,
      everyMs: o.heartbeatMs,
      instances: () => this.runners.size,
      // While Redis answers: the machines to ask, and the reapers' settings, should it stop answering.
      afterBeat: () => this.controlPlane.refresh(),
    });
  }

  /** Instances this machine holds now. */
  get instances(): ReadonlyMap<string, InstanceRunner> {
    return this.runners;
  }

  async start(): Promise<void> {
    this.controlPlane.start();
    await adoptSurvivors({
      ...this.o,
      instancesDir: this.ctx.instancesDir,
      stopped: () => this.stopped,
      adopt: (instance, { socket, hello }, sentAt) => {
        this.ports.reserve(hello.port);
        const runner = this.run(instance, hello.port, sentAt);
        runner.adopt(socket, hello.appPid);
        return runner;
      },
    });
    await this.heartbeat.start();
    this.logs.start();
    this.claims.start();
    this.follower.start();
    this.oneOffRuns.start();
  }

  /** One look at the unclaimed instances: claims what fits, within the gate and capacity. */
  claimRound(): Promise<number> {
    return this.claims.claimRound();
  }

  /**
   * Shutdown. `evacuate`: ask for replacements elsewhere, stop each copy once it is retired
   * (or at the deadline). Otherwise leave the apps running for the next hoster to re-adopt
   * (their shims stop them if none does before their leases end).
   */
  async close(options: { evacuate: boolean }): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.claims.poke();
    await this.oneOffRuns.close();
    if (options.evacuate && this.runners.size > 0) {
      await evacuate({ ...this.o, timeoutMs: this.o.evacuateTimeoutMs, runners: this.runners });
    }
    // All at once: each may take its stop grace, and a machine's shutdown should not take the sum.
    await Promise.all(
      [...this.runners.values()].map(async (runner) => {
        if (options.evacuate || runner.phase !== 'running') await runner.stop('shutdown', false);
        else runner.detach();
      }),
    );
    this.heartbeat.stop();
    this.logs.stop();
    await this.controlPlane.close();
    await this.logs.flush();
    this.follower.interrupt();
    this.o.events.disconnect();
    await Promise.allSettled([this.claims.done(), this.follower.done()]);
  }

  /** A runner for a claim this machine holds, counted among its instances. */
  private run(instance: Instance, port: number, sentAt: number): InstanceRunner {
    const runner = new InstanceRunner(this.ctx, instance, port, sentAt);
    this.runners.set(instance.id, runner);
    return runner;
  }

  /** The runner holding this claim of the instance (the same epoch), if this machine does. */
  private holderOf(id: string, epoch: number | undefined): InstanceRunner | undefined {
    const runner = this.runners.get(id);
    return runner !== undefined && runner.epoch === epoch ? runner : undefined;
  }

  /**
   * Redis answers again after it did not: renew every lease before anything else (a claim round
   * waits for it), then give back the claims whose apps were stopped meanwhile, so that they run
   * again at once rather than when their leases expire.
   */
  private renewFirst(): void {
    const runners = [...this.runners.values()];
    this.renewedFirst = (async () => {
      await Promise.all(runners.map((r) => r.renewNow().catch(() => undefined)));
      await this.fenced.giveBack();
    })();
    void this.renewedFirst.then(() => this.claims.poke());
  }
}
