import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BerthError } from '../common/errors.js';
import type { RedisClient } from '../common/redis-connection.js';
import { StopSignal, STOPPED } from '../common/stop-signal.js';
import { appendLogs, type LogStream } from '../registry/app-logs.js';
import type { AppStore } from '../registry/app-store.js';
import { currentEventId, readEvents } from '../registry/event-stream.js';
import type { Instance } from '../registry/instance.js';
import type { RegistryStore } from '../registry/registry-store.js';
import { ControlPlaneWatch } from './control-plane-grace.js';
import type { LoadSource } from '../common/load-source.js';
import { unmetRequirement } from './machine-fit.js';
import { InstanceRunner, type RunnerContext } from './instance-runner.js';
import { PortAllocator } from './port-allocator.js';
import { onLines, send, type ShimToHoster } from './shim-protocol.js';

/** How long an instance that failed on this machine is left for others before it is tried here again. */
export const FAILED_HERE_BACKOFF_MS = 60_000;
/**
 * Unclaimed instances one claim round looks at (twice this, see unclaimedServicesSample): a round
 * claims a few, so reading every unclaimed one (O(n) per round, per hoster) would only cost.
 */
const UNCLAIMED_SAMPLE = 64;

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
}

/**
 * The per-machine agent: claims instances while the machine has room, runs each through an
 * InstanceRunner, follows the registry's events to react at once, heartbeats, ships app
 * logs, and on shutdown hands its instances over (evacuation) or leaves them to be
 * re-adopted.
 */
export class Hoster {
  private readonly runners = new Map<string, InstanceRunner>();
  private readonly ports: PortAllocator;
  private readonly ctx: RunnerContext;
  private readonly log: Logger;
  private stopped = false;
  /** Ends the event follower's wait on its blocking connection (see StopSignal). */
  private readonly stopSignal = new StopSignal();
  private wake: (() => void) | undefined;
  private loops: Promise<void>[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private logTimer: NodeJS.Timeout | undefined;
  private pendingLogs = new Map<string, { instance: string; stream: LogStream; line: string }[]>();
  private gateOpen: boolean | undefined;
  /** Tells "Redis is away for everyone" from "this machine is cut off". */
  readonly controlPlane: ControlPlaneWatch;
  /** After Redis was out of reach: every lease renewed first, then claims again. */
  private renewedFirst: Promise<void> = Promise.resolve();
  /** Claims whose apps this machine stopped because it could not renew: given back once Redis answers. */
  private readonly fenced = new Map<string, { service: string; id: string; epoch: number; until: number }>();

  constructor(private readonly o: HosterOptions) {
    this.log = o.logger;
    this.ports = new PortAllocator(o.portRange[0], o.portRange[1]);
    const instancesDir = join(o.dataDir, 'instances');
    // Passed through, never listed: which instances run here is no app's business.
    mkdirSync(instancesDir, { recursive: true, mode: 0o711 });
    chmodSync(instancesDir, 0o711);
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
    this.ctx = {
      ...o,
      instancesDir,
      ports: this.ports,
      controlPlane: this.controlPlane,
      onLog: (service, instance, stream, line) => this.queueLog(service, instance, stream, line),
      onDone: (runner) => {
        if (this.runners.get(runner.id) === runner) this.runners.delete(runner.id);
        if (runner.fenced) this.fenced.set(runner.id, { service: runner.service, id: runner.id, epoch: runner.epoch, until: performance.now() + o.leaseMs + o.controlPlaneGraceMs });
        this.poke();
      },
    };
  }

  /** Instances this machine holds now. */
  get instances(): ReadonlyMap<string, InstanceRunner> {
    return this.runners;
  }

  async start(): Promise<void> {
    this.controlPlane.start();
    await this.adoptSurvivors();
    await this.heartbeat().catch(() => undefined);
    this.heartbeatTimer = setInterval(() => void this.heartbeat().catch(() => undefined), this.o.heartbeatMs);
    this.logTimer = setInterval(() => void this.flushLogs(), 200);
    this.loops.push(this.claimLoop(), this.followEvents());
  }

  /**
   * Shutdown. `evacuate`: ask for replacements elsewhere, stop each copy once it is retired
   * (or at the deadline). Otherwise leave the apps running for the next hoster to re-adopt
   * (their shims stop them if none does before their leases end).
   */
  async close(options: { evacuate: boolean }): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.poke();
    if (options.evacuate && this.runners.size > 0) await this.evacuate();
    // All at once: each may take its stop grace, and a machine's shutdown should not take the sum.
    await Promise.all(
      [...this.runners.values()].map(async (runner) => {
        if (options.evacuate || runner.phase !== 'running') await runner.stop('shutdown', false);
        else runner.detach();
      }),
    );
    clearInterval(this.heartbeatTimer);
    clearInterval(this.logTimer);
    await this.controlPlane.close();
    await this.flushLogs();
    this.stopSignal.stop();
    this.o.events.disconnect();
    await Promise.allSettled(this.loops);
  }

  private async evacuate(): Promise<void> {
    const runners = [...this.runners.values()];
    this.log.info({ instances: runners.length }, `evacuating ${runners.length} instance(s): replacements start elsewhere first`);
    // With no other live machine, nobody can take over: waiting would only delay the stop.
    const others = (await this.o.store.listMachines().catch(() => [])).filter(
      (m) => m.name !== this.o.machine && Date.now() - m.heartbeatAt < Math.max(15_000, 3 * this.o.heartbeatMs),
    );
    if (others.length === 0) {
      this.log.info('no other machine is alive to take over: stopping the instances here');
      return;
    }
    for (const r of runners) {
      await this.o.store.markEvacuating({ service: r.service, id: r.id, machine: this.o.machine, epoch: r.epoch }).catch(() => undefined);
    }
    // Each runner stops its copy when the reconciler retires it (seen at its next renewal).
    const deadline = Date.now() + this.o.evacuateTimeoutMs;
    while (this.runners.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (this.runners.size > 0) this.log.warn({ left: this.runners.size }, 'evacuation deadline passed: stopping what is left');
  }

  /** Wakes the claim loop now, or makes its next wait end at once when it is mid-round. */
  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    if (wake) wake();
    else this.pokedDuringRound = true;
  }

  private pokedDuringRound = false;

  private async claimLoop(): Promise<void> {
    while (!this.stopped) {
      this.pokedDuringRound = false;
      try {
        await this.claimRound();
      } catch (err) {
        if (!(err instanceof BerthError && err.code === 'redis_unavailable')) this.log.error({ err }, 'claim round failed');
      }
      if (this.stopped) return;
      if (this.pokedDuringRound) {
        this.pokedDuringRound = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.pollIntervalMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
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
      const now = performance.now();
      for (const [id, f] of this.fenced) {
        this.fenced.delete(id);
        if (now > f.until) continue;
        await this.o.store
          .release({ service: f.service, id: f.id, machine: this.o.machine, epoch: f.epoch, reason: 'fenced' })
          .then(() => this.log.info({ app: f.service, instance: f.id, epoch: f.epoch }, `gave back the claim on ${f.service}/${f.id}, stopped while Redis was out of reach: it runs again as soon as it is claimed`))
          .catch(() => undefined);
      }
    })();
    void this.renewedFirst.then(() => this.poke());
  }

  /** One look at the unclaimed instances: claims what fits, within the gate and capacity. */
  async claimRound(): Promise<number> {
    await this.renewedFirst;
    const load = this.o.load();
    const open = load.perCpu < this.o.maxLoadPerCpu;
    if (open !== this.gateOpen) {
      this.log.info({ loadPerCpu: Number(load.perCpu.toFixed(2)), max: this.o.maxLoadPerCpu }, open ? 'load is low: claiming' : 'load is high: not claiming');
      this.gateOpen = open;
    }
    if (!open || this.runners.size >= this.o.capacity) return 0;
    const services = await this.o.store.unclaimedServicesSample(UNCLAIMED_SAMPLE);
    let claimed = 0;
    for (const service of services) {
      if (this.stopped || claimed >= this.o.claimsPerRound || this.runners.size >= this.o.capacity) break;
      const offer = { cpus: load.cpus, freeMemoryMb: freemem() / 2 ** 20, labels: this.o.labels };
      const now = Date.now();
      const candidates = (await this.o.store.instancesOf(service)).filter(
        (i) =>
          i.state === 'unclaimed' &&
          // Failed here lately: let another machine try first (it may come back to us later).
          !(i.failedOn.includes(this.o.machine) && now - i.updatedAt < FAILED_HERE_BACKOFF_MS) &&
          unmetRequirement(i.attributes, offer) === undefined,
      );
      for (const fit of candidates) {
        if (this.stopped || claimed >= this.o.claimsPerRound || this.runners.size >= this.o.capacity) break;
        const here = [...this.runners.values()].filter((r) => r.service === service).length;
        // A machine that already runs this app, or is busier, lets a less loaded one win the race.
        const delay = here * this.o.spreadDelayMs + Math.min(load.perCpu, 1) * this.o.spreadDelayMs;
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        if (await this.claim(fit)) claimed++;
      }
    }
    // More may be waiting than one round takes: look again at once.
    if (claimed >= this.o.claimsPerRound) this.poke();
    return claimed;
  }

  private async claim(candidate: Instance): Promise<boolean> {
    const port = await this.ports.allocate();
    const sentAt = performance.now();
    let instance: Instance;
    try {
      instance = await this.o.store.claim({
        service: candidate.service,
        instanceId: candidate.id,
        machine: this.o.machine,
        host: '127.0.0.1',
        port,
        leaseMs: this.o.leaseMs,
      });
    } catch (err) {
      this.ports.release(port);
      if (err instanceof BerthError && (err.code === 'nothing_to_claim' || err.code === 'service_not_found')) return false;
      throw err;
    }
    const runner = new InstanceRunner(this.ctx, instance, port, sentAt);
    this.runners.set(instance.id, runner);
    this.log.info({ app: instance.service, instance: instance.id, epoch: instance.epoch, port }, `claimed ${instance.service}/${instance.id} (epoch ${instance.epoch})`);
    runner.start();
    return true;
  }

  /** Wakes the claim loop on new work, and runners on changes to their instances. */
  private async followEvents(): Promise<void> {
    const { events } = this.o;
    const keys = this.o.store.keys;
    let position: string | undefined;
    while (!this.stopped) {
      try {
        if (position === undefined) {
          const now = await this.stopSignal.race(currentEventId(events, keys));
          if (now === STOPPED) return;
          position = now;
          // Following (again) from now: whatever happened before is seen by a full look.
          this.poke();
        }
        const batch = await this.stopSignal.race(readEvents(events, keys, position, { blockMs: 2000, count: 200 }));
        if (batch === STOPPED) return;
        if (batch.resync) {
          position = undefined;
          continue;
        }
        for (const e of batch.events) {
          position = e.id;
          if (e.kind === 'registered' || e.kind === 'released' || e.kind === 'expired' || e.kind === 'unregistered') this.poke();
          const runner = e.instance === undefined ? undefined : this.runners.get(e.instance);
          if (runner === undefined || e.epoch !== runner.epoch) continue;
          if (e.kind === 'stopping') void runner.stop('retired', true);
          else if (e.kind === 'unregistered' || e.kind === 'expired' || e.kind === 'released') void runner.stop('lost', false);
        }
      } catch {
        if (this.stopped) return;
        position = undefined;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async heartbeat(): Promise<void> {
    await this.beat();
    // While Redis answers: the machines to ask, and the reapers' settings, should it stop answering.
    await this.controlPlane.refresh().catch(() => undefined);
  }

  private async beat(): Promise<void> {
    const load = this.o.load();
    await this.o.store.heartbeat(this.o.machine, {
      proxy: this.o.proxyUrl,
      cpus: load.cpus,
      memoryMb: Math.round(totalmem() / 2 ** 20),
      freeMemoryMb: Math.round(freemem() / 2 ** 20),
      load: Number(load.perCpu.toFixed(3)),
      load1: load.load1,
      load5: load.load5,
      load15: load.load15,
      labels: this.o.labels,
      instances: this.runners.size,
      capacity: this.o.capacity,
    });
  }

  private queueLog(service: string, instance: string, stream: LogStream, line: string): void {
    let list = this.pendingLogs.get(service);
    if (list === undefined) this.pendingLogs.set(service, (list = []));
    // A runaway app must not grow the hoster's memory while Redis is away.
    if (list.length < 10_000) list.push({ instance, stream, line });
  }

  private async flushLogs(): Promise<void> {
    const batches = this.pendingLogs;
    this.pendingLogs = new Map();
    for (const [service, lines] of batches) {
      await appendLogs(this.o.redis, this.o.store.keys, service, lines).catch(() => undefined);
    }
  }

  /** Finds shims that outlived a previous hoster and takes their instances back when the claim still holds. */
  private async adoptSurvivors(): Promise<void> {
    const dir = this.ctx.instancesDir;
    for (const name of readdirSync(dir)) {
      const socketPath = join(dir, name, 'shim.sock');
      if (!existsSync(socketPath)) {
        if (!this.stopped) rmSync(join(dir, name), { recursive: true, force: true });
        continue;
      }
      let socket: Socket;
      let hello: ShimToHoster & { t: 'hello' };
      try {
        socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(socketPath);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        hello = await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no hello')), 2000);
          onLines<ShimToHoster>(socket, (m) => {
            if (m.t === 'hello') {
              clearTimeout(timer);
              resolve(m);
            }
          });
        });
      } catch {
        rmSync(join(dir, name), { recursive: true, force: true });
        continue;
      }
      const sentAt = performance.now();
      try {
        const { state } = await this.o.store.renew({ service: hello.service, id: hello.instance, machine: this.o.machine, epoch: hello.epoch, leaseMs: this.o.leaseMs });
        const instance = await this.o.store.getInstance(hello.instance);
        this.ports.reserve(hello.port);
        const runner = new InstanceRunner(this.ctx, instance, hello.port, sentAt);
        this.runners.set(instance.id, runner);
        socket.removeAllListeners('data');
        runner.adopt(socket, hello.appPid);
        if (state === 'stopping') void runner.stop('retired', true);
      } catch (err) {
        this.log.warn({ instance: hello.instance, err: err instanceof Error ? err.message : String(err) }, `the claim of surviving ${hello.service}/${hello.instance} is gone: stopping it`);
        send(socket, { t: 'stop', graceMs: this.o.stopGraceMs });
        socket.end();
      }
    }
  }
}
