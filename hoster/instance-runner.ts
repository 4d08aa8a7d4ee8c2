import { rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { DEFAULT_HEALTH_CHECK, type HealthCheck, type Instance, type LogStream, type RegistryStore } from '../registry/store/index.js';
import type { AppUser } from './app-users.js';
import type { InstanceCgroup } from './cgroup-limits.js';
import { isAllocationFailure } from './resource-limits.js';
import { CrashPolicy } from './crash-policy.js';
import { neverHealthy, waitHealthy, watchHealth } from './health-check.js';
import { instanceDir } from './instance-dir.js';
import { installInstance, type InstallContext } from './instance-install.js';
import { LeaseKeeper, type GraceHook } from './lease-keeper.js';
import { listenerUids } from './listener-owner.js';
import { OutputTail } from './output-tail.js';
import type { PortAllocator } from './port-allocator.js';
import { ShimLink, spawnShim, type ShimExit } from './shim-client.js';
import type { ShimSpec } from './shim-protocol.js';
import { startFailure } from './start-failure.js';
import { RELEASE_PROCESS, WEB_PROCESS } from '../common/procfile.js';
import { DEFAULT_RELEASE_TIMEOUT_MS, ReleaseTaskClock, releaseTaskOutcome } from './release-task.js';

/** Everything an instance runner needs from its hoster (besides what an install does). */
export interface RunnerContext extends InstallContext {
  store: RegistryStore;
  ports: PortAllocator;
  logger: Logger;
  /** Where each instance gets its own directory. */
  instancesDir: string;
  /** Path of the compiled instance shim. */
  shimPath: string;
  leaseMs: number;
  /** Renewals come this often (well inside the lease). */
  renewEveryMs: number;
  /**
   * Safety kept between the moment the app must be dead and the lease's end: covers a
   * renewal's round trip and the reaper's tick. The app is stopped stopGraceMs before it.
   */
  fenceMarginMs: number;
  healthIntervalMs: number;
  /** Crashes within crashWindowMs that make a crash loop. */
  crashLimit: number;
  crashWindowMs: number;
  /** A line the app printed; `process` is its process type (web, worker, release…). */
  onLog: (app: string, instance: string, stream: LogStream, line: string, process: string) => void;
  /** Called once when the runner is done (stopped, released or lost). */
  onDone: (runner: InstanceRunner) => void;
  /**
   * While Redis is away for every machine (see control-plane-grace.ts), how far past its lease
   * an app may keep running; absent: never past the lease.
   */
  controlPlane?: GraceHook;
}

type Phase = 'preparing' | 'starting' | 'running' | 'restarting' | 'stopping' | 'done';

/**
 * One claimed instance on this machine, from claim to stop: installs it, starts it under a
 * shim (shim-client.ts), checks its health, reports it running, keeps its lease
 * (lease-keeper.ts), restarts it when it crashes (crash-policy.ts), and stops it when the
 * registry retires it or the claim is lost.
 */
export class InstanceRunner {
  readonly id: string;
  readonly app: string;
  readonly epoch: number;
  readonly release: number | null;
  /** Its process type: web (health-checked, routed), a worker type, or release (run once, its outcome reported). */
  readonly process: string;
  port: number;
  phase: Phase = 'preparing';
  /** Stopped because the lease could not be renewed in time (its claim may still stand in Redis). */
  fenced = false;
  private readonly files: string | null;
  private readonly log: Logger;
  private readonly lease: LeaseKeeper;
  private readonly crashes: CrashPolicy;
  /**
   * Times the app was started again in place under this claim (after a crash or a failed
   * health check), reported with each markRunning. A new claim starts at 0; a re-adopted one
   * goes on from the registry's count.
   */
  private restarts: number;
  /** The app's last lines of output, quoted when it fails. */
  private readonly output = new OutputTail();
  private shim: ShimLink | undefined;
  private appPid = 0;
  private health: HealthCheck = DEFAULT_HEALTH_CHECK;
  private stopRequested = false;
  /** What the shim is told at each start (set once the instance is installed). */
  private spec: ShimSpec | undefined;
  private user: AppUser | undefined;
  private cgroup: InstanceCgroup | undefined;
  /** Its memory limit, when RLIMIT_DATA holds it (no cgroups here). */
  private memoryByRlimitMb: number | undefined;
  /** The app said an allocation failed since it last started (under RLIMIT_DATA, its OOM). */
  private allocationFailed = false;
  /** A release task's time limit (release-task.ts), while it runs. */
  private task: ReleaseTaskClock | undefined;
  /** The release's limit on its release command (read at install). */
  private releaseTimeoutMs = DEFAULT_RELEASE_TIMEOUT_MS;

  constructor(
    private readonly ctx: RunnerContext,
    instance: Pick<Instance, 'id' | 'service' | 'epoch' | 'release' | 'files'> & { process?: string; restarts?: number },
    port: number,
    /** Monotonic time the claim (or the renewal that re-adopted it) was sent. */
    claimSentAt: number,
  ) {
    this.id = instance.id;
    this.app = instance.service;
    this.epoch = instance.epoch;
    this.release = instance.release;
    this.files = instance.files;
    this.process = instance.process ?? WEB_PROCESS;
    this.port = port;
    this.log = ctx.logger.child({ app: this.app, instance: this.id, epoch: this.epoch });
    this.crashes = new CrashPolicy(ctx.crashLimit, ctx.crashWindowMs);
    this.restarts = instance.restarts ?? 0;
    this.lease = new LeaseKeeper(
      {
        renew: () => ctx.store.renew({ ...this.holder(), leaseMs: ctx.leaseMs }),
        leaseMs: ctx.leaseMs,
        renewEveryMs: ctx.renewEveryMs,
        fenceMarginMs: ctx.fenceMarginMs,
        controlPlane: ctx.controlPlane,
        logger: this.log,
        label: `${this.app}/${this.id}`,
        onDeadline: () => this.pushLease(),
        onRetired: () => this.stop('retired', true),
        onLost: (fenced) => {
          if (fenced) this.fenced = true;
          return this.stop('lost', false);
        },
      },
      claimSentAt,
    );
  }

  get dir(): string {
    return instanceDir(this.ctx.instancesDir, this.id, this.epoch);
  }

  /** A newly claimed instance: install, start, check, report. */
  start(): void {
    this.lease.start();
    void this.launch().catch((err) => this.fail(err));
  }

  /** An instance whose shim survived a hoster restart: supervise it again. */
  adopt(socket: Socket, appPid: number): void {
    this.phase = 'running';
    this.appPid = appPid;
    const link = this.attachShim(socket);
    this.lease.start();
    this.log.info({ port: this.port, pid: appPid, restarts: this.restarts }, `re-adopted ${this.app}/${this.id} (it kept running while the hoster restarted)`);
    void this.ctx.apps
      .release(this.app, this.release ?? 0)
      .then((release) => {
        this.health = { ...DEFAULT_HEALTH_CHECK, ...release?.healthCheck };
      })
      .catch(() => undefined)
      .finally(() => {
        if (this.process === WEB_PROCESS) this.watch(link);
      });
  }

  /** Stops the app (SIGTERM, then SIGKILL after the grace) and, when asked by the registry, confirms. */
  async stop(why: 'retired' | 'lost' | 'evacuated' | 'shutdown', confirm: boolean): Promise<void> {
    if (this.phase === 'done' || this.stopRequested) return;
    this.stopRequested = true;
    this.phase = 'stopping';
    this.log.info({ why }, `stopping ${this.app}/${this.id} (${why})`);
    await this.shim?.stop(this.ctx.stopGraceMs);
    if (confirm) {
      await this.ctx.store.confirmStopped(this.holder()).catch((err) => this.log.warn({ err: errMessage(err) }, 'could not confirm the stop (the lease will expire instead)'));
    } else if (why === 'shutdown') {
      // Unroutable at once, and claimable again (by this machine too, once it is back).
      await this.ctx.store.release({ ...this.holder(), reason: 'hoster_stopped' }).catch(() => undefined);
    }
    this.finish();
  }

  /** Leaves the app running (hoster restart): the shim keeps it alive until its lease deadline. */
  detach(): void {
    this.lease.close();
    this.shim?.destroy();
    this.phase = 'done';
  }

  /** Renews at once (Redis is back: renewals come before anything else). */
  renewNow(): Promise<void> {
    return this.lease.renewNow();
  }

  /** Tells the shim the deadline again (the control plane's verdict changed). */
  refreshDeadline(): void {
    this.pushLease();
  }

  /** The claim, as the registry's scripts check it. */
  private holder() {
    return { service: this.app, id: this.id, machine: this.ctx.machine, epoch: this.epoch };
  }

  /** Installs the instance (instance-install.ts), then starts it. */
  private async launch(): Promise<void> {
    const installed = await installInstance(
      this.ctx,
      { id: this.id, app: this.app, epoch: this.epoch, release: this.release, files: this.files, port: this.port, process: this.process, dir: this.dir },
      {
        build: (line) => {
          this.output.remember(line);
          this.ctx.onLog(this.app, this.id, 'build', line, this.process);
        },
        hoster: (line) => this.ctx.onLog(this.app, this.id, 'build', line, this.process),
      },
      () => this.stopRequested,
    );
    if (installed === undefined) return;
    ({ spec: this.spec, health: this.health, user: this.user, cgroup: this.cgroup, memoryByRlimitMb: this.memoryByRlimitMb, releaseTimeoutMs: this.releaseTimeoutMs } = installed);
    await this.runOnce();
  }

  /** Starts the app under a fresh shim and waits for it to pass its health check. */
  private async runOnce(): Promise<void> {
    const spec = this.spec!;
    if (this.stopRequested) return;
    this.phase = this.phase === 'restarting' ? 'restarting' : 'starting';
    spec.leaseValidForMs = this.lease.validForMs();
    this.allocationFailed = false;
    const { socket, hello } = await spawnShim(this.ctx.shimPath, join(this.dir, `shim-${Date.now()}.json`), spec);
    this.appPid = hello.appPid;
    const link = this.attachShim(socket);
    // Stopped while the shim was starting: the stop found no shim to stop, so stop it now.
    if (this.stopRequested) {
      await link.stop(this.ctx.stopGraceMs);
      return;
    }
    if (this.process !== WEB_PROCESS) {
      // No port to check: a worker or release task runs once started (its exit is what counts).
      if (this.process === RELEASE_PROCESS) this.task = new ReleaseTaskClock(this.releaseTimeoutMs, () => link.requestStop(this.ctx.stopGraceMs));
      await this.ctx.store.markRunning({ ...this.holder(), pid: this.appPid, restarts: this.restarts });
      // It may have exited already (a quick release command): its exit handler has it now.
      if (this.stopRequested || this.shim !== link) return;
      this.phase = 'running';
      this.log.info({ pid: this.appPid, process: this.process }, `${this.app}/${this.id} (${this.process}) is running`);
      return;
    }
    const healthy = await waitHealthy(this.port, this.health, this.ctx.healthIntervalMs, () => this.stopRequested || this.shim !== link);
    if (this.stopRequested || this.shim !== link) return;
    if (!healthy) {
      this.log.warn({ check: this.health }, `${this.app}/${this.id} never passed its health check: releasing it`);
      const { reason, summary } = neverHealthy(this.port, this.health);
      await this.releaseWith(reason, this.output.detail(summary));
      return;
    }
    const squatter = this.portSquatter();
    if (squatter !== undefined) {
      // Another user's process answered on this port: routing to it would hand this app's
      // traffic to someone else. Not the release's fault: another claim gets another port.
      this.log.error({ port: this.port, uid: squatter }, `port ${this.port} of ${this.app}/${this.id} is held by another user (uid ${squatter}): releasing it`);
      await this.releaseWith('port_taken', `port ${this.port} was held by another user's process (uid ${squatter}), not by this app`);
      return;
    }
    await this.ctx.store.markRunning({ ...this.holder(), pid: this.appPid, restarts: this.restarts });
    this.phase = 'running';
    this.log.info({ port: this.port, pid: this.appPid }, `${this.app}/${this.id} is running on port ${this.port}`);
    this.watch(link);
  }

  /**
   * The health check for the instance's whole life under this shim. After `failures` failed
   * checks in a row it is taken out of routing at once, then stopped: its exit is a crash like
   * any other (restart with backoff, crash loop at the limit), and the restart reports it
   * running again once the check passes.
   */
  private watch(link: ShimLink): void {
    const alive = () => this.phase === 'running' && this.shim === link && !this.stopRequested;
    watchHealth(this.port, this.health, alive, async (failure, failed) => {
      const detail = `${failure}, ${failed} checks in a row`;
      this.crashes.failedHealthCheck(detail);
      this.log.warn({ failure, failed }, `${this.app}/${this.id} failed its health check while running (${detail}): taking it out of routing and restarting it`);
      await this.ctx.store.markUnhealthy({ ...this.holder(), detail }).catch((err) => this.log.warn({ err: errMessage(err) }, 'could not take the instance out of routing (the proxy still sets it aside when it fails)'));
      if (alive()) link.requestStop(this.ctx.stopGraceMs);
    });
  }

  /** The uid of another user listening on this instance's port, if one is (apps of their own users only). */
  private portSquatter(): number | undefined {
    if (!this.user) return undefined;
    return listenerUids(this.port).find((uid) => uid !== this.user!.uid);
  }

  private attachShim(socket: Socket): ShimLink {
    const link = new ShimLink(socket, {
      onLog: (stream, line) => {
        this.output.remember(line);
        if (this.memoryByRlimitMb !== undefined && isAllocationFailure(line)) this.allocationFailed = true;
        // A release command's output is part of the deploy: berth publish shows it with the build.
        this.ctx.onLog(this.app, this.id, this.process === RELEASE_PROCESS ? 'build' : stream, line, this.process);
      },
      onExit: (exit, lost) => {
        if (lost && (this.shim !== link || this.stopRequested)) return;
        void this.onAppExit(exit);
      },
    });
    this.shim = link;
    this.pushLease();
    return link;
  }

  private async onAppExit(exit: ShimExit): Promise<void> {
    if (this.stopRequested || this.phase === 'done') return;
    // Without cgroups no kernel count says so: the app's own words before it died do (resource-limits.ts).
    const byRlimit = this.memoryByRlimitMb !== undefined && exit.oom !== true && this.allocationFailed && (exit.signal !== null || exit.code !== 0);
    const m: ShimExit = byRlimit ? { ...exit, oom: true } : exit;
    this.shim = undefined;
    if (m.why === 'lease_deadline') {
      this.log.error('the shim stopped the app because the lease was not renewed in time');
      this.fenced = true;
      this.finish();
      return;
    }
    if (m.oom) {
      const line = byRlimit
        ? `[berth] out of memory: the app could not allocate past its limit of ${this.memoryByRlimitMb} MB (RLIMIT_DATA: this machine has no cgroups); raise it (berth update --memory) or make it use less`
        : `[berth] out of memory: the kernel stopped the app at its limit of ${this.cgroup?.memoryMb ?? '?'} MB; raise it (berth update --memory) or make it use less`;
      this.output.remember(line);
      this.ctx.onLog(this.app, this.id, 'err', line, this.process);
      this.log.warn({ memoryMb: this.cgroup?.memoryMb ?? this.memoryByRlimitMb }, `${this.app}/${this.id} went over its memory limit: ${byRlimit ? 'its allocations failed (RLIMIT_DATA)' : 'the kernel killed it'}`);
    }
    if (this.process === RELEASE_PROCESS) {
      await this.reportReleaseTask(m);
      return;
    }
    const verdict = this.crashes.exited(m, performance.now());
    if (verdict.kind === 'crash_loop') {
      this.log.warn({ crashes: verdict.crashes, code: m.code, signal: m.signal }, `${this.app}/${this.id} is crash-looping: releasing it`);
      await this.releaseWith(verdict.reason, this.output.detail(verdict.summary));
      return;
    }
    this.log.warn({ code: m.code, signal: m.signal, restartInMs: verdict.backoffMs }, `${this.app}/${this.id} exited (${m.signal ?? `code ${m.code}`}): restarting`);
    this.phase = 'restarting';
    await new Promise((r) => setTimeout(r, verdict.backoffMs));
    if (this.stopRequested) return;
    this.restarts += 1;
    // An instance re-adopted from a previous hoster has no spec here yet: launch it afresh.
    await (this.spec ? this.runOnce() : this.launch()).catch((err) => this.fail(err));
  }

  /** A release command ended: its outcome goes on the release (finishReleaseTask), and this claim ends with it. */
  private async reportReleaseTask(m: ShimExit): Promise<void> {
    const timedOut = this.task?.timedOut ?? false;
    this.task?.clear();
    const outcome = releaseTaskOutcome(m, timedOut, this.releaseTimeoutMs, this.output);
    this.ctx.onLog(this.app, this.id, 'build', outcome.status === 'succeeded' ? '-----> Release command finished' : `-----> Release command failed: ${outcome.detail.split('\n')[0]}`, this.process);
    this.log.info({ outcome: outcome.status, detail: outcome.summary }, `${this.app}/${this.id}: the release command of v${this.release} ${outcome.status} (${outcome.summary})`);
    this.stopRequested = true;
    this.phase = 'stopping';
    try {
      await this.ctx.store.finishReleaseTask({ ...this.holder(), release: this.release ?? 0, status: outcome.status, detail: outcome.detail });
    } catch (err) {
      // The claim was lost meanwhile (a lease that ran out): the task runs again elsewhere.
      this.log.warn({ err: errMessage(err) }, 'could not record the release command\'s outcome (it will run again once the lease expires)');
    }
    this.finish();
  }

  private pushLease(): void {
    this.shim?.lease(this.lease.validForMs());
  }

  private async releaseWith(reason: string, detail?: string): Promise<void> {
    if (this.phase === 'done') return;
    this.stopRequested = true;
    this.phase = 'stopping';
    await this.shim?.stop(this.ctx.stopGraceMs);
    await this.ctx.store.release({ ...this.holder(), reason, detail }).catch((err) => this.log.warn({ err: errMessage(err) }, 'could not release the claim (the lease will expire instead)'));
    this.finish();
  }

  private async fail(err: unknown): Promise<void> {
    if (this.phase === 'done') return;
    const { reason, message, detail } = startFailure(err, this.output);
    this.log.error({ err: message, reason }, `${this.app}/${this.id} could not start: ${message}`);
    await this.releaseWith(reason, detail);
  }

  private finish(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.task?.clear();
    this.lease.close();
    this.shim?.destroy();
    this.ctx.ports.release(this.port);
    this.cgroup?.remove();
    rmSync(this.dir, { recursive: true, force: true });
    this.ctx.onDone(this);
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
