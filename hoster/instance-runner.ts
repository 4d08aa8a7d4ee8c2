import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BerthError } from '../common/errors.js';
import { DEFAULT_HEALTH_CHECK, type HealthCheck, type LogStream, type AppStore, type Instance, type RegistryStore } from '../registry/store/index.js';
import { cgroupLimitsOf, makeInstanceCgroup, type CgroupSupport, type InstanceCgroup } from './cgroup-limits.js';
import type { AppUser, AppUsers } from './app-users.js';
import { checkOnce, waitHealthy } from './health-check.js';
import { listenerUids } from './listener-owner.js';
import { withResourceLimits } from './resource-limits.js';
import type { PortAllocator } from './port-allocator.js';
import { onLines, send, type ShimSpec, type ShimToHoster } from './shim-protocol.js';

/** Everything an instance runner needs from its hoster. */
export interface RunnerContext {
  machine: string;
  store: RegistryStore;
  apps: AppStore;
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
  stopGraceMs: number;
  healthIntervalMs: number;
  /** Crashes within crashWindowMs that make a crash loop. */
  crashLimit: number;
  crashWindowMs: number;
  /** When the hoster runs as root: each app's own users (instances run as one, builds as another). */
  appUsers?: AppUsers;
  /** Where this machine's cgroups are, for apps with memory or CPU limits. */
  cgroups: CgroupSupport;
  /** Installs the bundle (fetch, verify, unpack, build) once per digest (and app user); returns the app's directory. */
  prepare: (digest: string, user: AppUser | undefined, onBuildLine: (line: string) => void) => Promise<string>;
  /** The command that starts the app in `appDir`. */
  startCommand: (appDir: string, releaseCommand: string | null) => { shell: string } | { file: string; args: string[] };
  /** Turns an install failure into a release reason (e.g. build_failed), or undefined for other errors. */
  failureReason: (err: unknown) => string | undefined;
  onLog: (service: string, instance: string, stream: LogStream, line: string) => void;
  /** Called once when the runner is done (stopped, released or lost). */
  onDone: (runner: InstanceRunner) => void;
  /**
   * While Redis is away for every machine (see control-plane-grace.ts), how far past its lease
   * an app may keep running; absent: never past the lease.
   */
  controlPlane?: { extendedUntil(validUntil: number): number | undefined };
}

/** Lines of the app's (or its build's) output quoted with a failure. */
const DETAIL_LINES = 20;

/** After a failed renewal, the next try comes this soon. */
const RENEW_RETRY_MS = 150;

type Phase = 'preparing' | 'starting' | 'running' | 'restarting' | 'stopping' | 'done';

/**
 * One claimed instance on this machine: installs and starts it under a shim, checks its
 * health, reports it running, renews its lease (stopping it itself when it cannot), restarts
 * it when it crashes, and stops it when the registry retires it or the claim is lost.
 */
export class InstanceRunner {
  readonly id: string;
  readonly service: string;
  readonly epoch: number;
  readonly release: number | null;
  port: number;
  phase: Phase = 'preparing';
  private shim: Socket | undefined;
  private shimExited: Promise<void> = Promise.resolve();
  private appPid = 0;
  /** Monotonic time (ms) before which the app must be dead unless the lease is renewed. */
  private validUntil: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private crashes: number[] = [];
  private health: HealthCheck = DEFAULT_HEALTH_CHECK;
  private readonly log: Logger;
  private stopRequested = false;
  /** Stopped because the lease could not be renewed in time (its claim may still stand in Redis). */
  fenced = false;
  private pastLeaseLogged = false;
  /** The app's last lines of output, quoted when it fails: the cause in its own words. */
  private readonly lastLines: string[] = [];

  constructor(
    private readonly ctx: RunnerContext,
    instance: Pick<Instance, 'id' | 'service' | 'epoch' | 'release' | 'files'>,
    port: number,
    /** Monotonic time the claim (or the renewal that re-adopted it) was sent. */
    claimSentAt: number,
  ) {
    this.id = instance.id;
    this.service = instance.service;
    this.epoch = instance.epoch;
    this.release = instance.release;
    this.port = port;
    this.validUntil = claimSentAt + ctx.leaseMs - ctx.fenceMarginMs;
    this.log = ctx.logger.child({ app: this.service, instance: this.id, epoch: this.epoch });
    this.files = instance.files;
  }

  private readonly files: string | null;

  get dir(): string {
    return join(this.ctx.instancesDir, `${this.id}-${this.epoch}`);
  }

  /** A newly claimed instance: install, start, check, report. */
  start(): void {
    this.startRenewals();
    void this.launch().catch((err) => this.fail(err));
  }

  /** An instance whose shim survived a hoster restart: supervise it again. */
  adopt(socket: Socket, appPid: number): void {
    this.phase = 'running';
    this.appPid = appPid;
    this.attachShim(socket);
    this.startRenewals();
    this.log.info({ port: this.port, pid: appPid }, `re-adopted ${this.service}/${this.id} (it kept running while the hoster restarted)`);
    void this.ctx.apps
      .release(this.service, this.release ?? 0)
      .then((release) => {
        this.health = { ...DEFAULT_HEALTH_CHECK, ...release?.healthCheck };
      })
      .catch(() => undefined)
      .finally(() => this.watchHealth(socket));
  }

  /** Stops the app (SIGTERM, then SIGKILL after the grace) and, when asked by the registry, confirms. */
  async stop(why: 'retired' | 'lost' | 'evacuated' | 'shutdown', confirm: boolean): Promise<void> {
    if (this.phase === 'done' || this.stopRequested) return;
    this.stopRequested = true;
    this.phase = 'stopping';
    this.log.info({ why }, `stopping ${this.service}/${this.id} (${why})`);
    await this.stopShim();
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
    clearInterval(this.renewTimer);
    clearTimeout(this.retryTimer);
    this.shim?.destroy();
    this.phase = 'done';
  }

  private holder() {
    return { service: this.service, id: this.id, machine: this.ctx.machine, epoch: this.epoch };
  }

  private async launch(): Promise<void> {
    const ctx = this.ctx;
    const release = this.release === null ? undefined : await ctx.apps.release(this.service, this.release);
    const digest = release?.bundle ?? this.files;
    if (!digest) throw new InstallFailure('bundle_rejected', 'the instance names no bundle');
    // Releases made before a field existed get its default.
    this.health = { ...DEFAULT_HEALTH_CHECK, ...release?.healthCheck };
    const user = ctx.appUsers?.forApp(this.service);
    this.user = user;
    // The build's lines go to the app's log as they come (stream "build"): berth publish shows them.
    const appDir = await ctx.prepare(digest, user, (line) => {
      this.remember(line);
      ctx.onLog(this.service, this.id, 'build', line);
    });
    if (this.stopRequested) return;
    ctx.onLog(this.service, this.id, 'build', `-----> Starting instance ${this.id.slice(0, 8)} of v${release?.version ?? '?'} on ${ctx.machine}`);
    const command = withResourceLimits(ctx.startCommand(appDir, release?.command ?? null), release?.requirements ?? {});
    const limits = cgroupLimitsOf(release?.requirements ?? {});
    if (limits !== undefined && this.cgroup === undefined) {
      try {
        this.cgroup = makeInstanceCgroup(ctx.cgroups, `${this.id}-${this.epoch}`, limits);
      } catch (err) {
        // Not the release's fault: a machine with cgroups can run it.
        throw new InstallFailure('limits_unavailable', `${ctx.machine} cannot enforce the app's memory or CPU limit: ${errMessage(err)}`);
      }
    }
    for (const [name, value] of Object.entries(release?.env ?? {})) {
      // No process can be given such a variable: the release is at fault, not this machine.
      if (value.includes('\0')) throw new InstallFailure('invalid_env', `config var ${name} contains a NUL byte: set it again without one (berth config:set)`);
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      NODE_ENV: 'production',
      ...(release?.env ?? {}),
      PORT: String(this.port),
      HOST: '127.0.0.1',
      BERTH_APP: this.service,
      BERTH_PATH: (await ctx.apps.get(this.service).catch(() => undefined))?.path ?? '',
      BERTH_INSTANCE: this.id,
      // Which claim this copy runs under: observers tell copies of one instance apart by these.
      BERTH_EPOCH: String(this.epoch),
      BERTH_MACHINE: ctx.machine,
      BERTH_RELEASE: release === undefined ? '' : `v${release.version}`,
    };
    // Root's, entered by the app's group only: its HOME, its log, and the shim's socket (which
    // only root may connect to) are nobody else's business.
    mkdirSync(this.dir, { recursive: true, mode: user ? 0o710 : 0o755 });
    if (user) chownSync(this.dir, 0, user.gid);
    const home = join(this.dir, 'home');
    mkdirSync(home, { recursive: true, mode: 0o700 });
    if (user) chownSync(home, user.uid, user.gid);
    env.HOME = home;
    env.TMPDIR = home;
    this.spec = {
      instance: this.id,
      service: this.service,
      epoch: this.epoch,
      release: release?.version ?? 0,
      port: this.port,
      socketPath: join(this.dir, 'shim.sock'),
      logFile: join(this.dir, 'app.log'),
      cwd: appDir,
      env,
      command,
      uid: user?.uid,
      gid: user?.gid,
      cgroups: this.cgroup?.dirs,
      oomFile: this.cgroup?.oomFile,
      leaseValidForMs: 0,
      stopGraceMs: ctx.stopGraceMs,
    };
    await this.runOnce();
  }

  private spec: ShimSpec | undefined;
  private user: AppUser | undefined;
  private cgroup: InstanceCgroup | undefined;
  /** The last exit was the kernel's OOM kill: a crash loop of those is out_of_memory. */
  private outOfMemory = false;

  /** Starts the app under a fresh shim and waits for it to pass its health check. */
  private async runOnce(): Promise<void> {
    const spec = this.spec!;
    if (this.stopRequested) return;
    this.phase = this.phase === 'restarting' ? 'restarting' : 'starting';
    spec.leaseValidForMs = Math.max(0, this.deadline() - performance.now());
    const specFile = join(this.dir, `shim-${Date.now()}.json`);
    writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
    // Detached and unreferenced: the shim must outlive a hoster restart.
    const child = spawn(process.execPath, [this.ctx.shimPath, specFile], { detached: true, stdio: 'ignore' });
    child.unref();
    const socket = await connectWhenReady(spec.socketPath, 5000);
    const hello = await new Promise<ShimToHoster & { t: 'hello' }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the instance shim did not answer')), 5000);
      onLines<ShimToHoster>(socket, (m) => {
        if (m.t === 'hello') {
          clearTimeout(timer);
          resolve(m);
        }
      });
    });
    this.appPid = hello.appPid;
    this.attachShim(socket);
    // Stopped while the shim was starting: the stop found no shim to stop, so stop it now.
    if (this.stopRequested) {
      await this.stopShim();
      return;
    }
    const healthy = await waitHealthy(this.port, this.health, this.ctx.healthIntervalMs, () => this.stopRequested || this.shim !== socket);
    if (this.stopRequested || this.shim !== socket) return;
    if (!healthy) {
      this.log.warn({ check: this.health }, `${this.service}/${this.id} never passed its health check: releasing it`);
      // Without a path the check is a TCP connect: failing it means nothing listens on $PORT.
      const noListen = this.health.path === undefined;
      const summary = noListen
        ? `nothing listened on $PORT (${this.port}) after ${this.health.attempts} attempts: listen on process.env.PORT`
        : `GET ${this.health.path} never answered ${this.health.status} after ${this.health.attempts} attempts`;
      await this.releaseWith(noListen ? 'not_listening' : 'unhealthy', this.detail(summary));
      return;
    }
    const squatter = this.portSquatter();
    if (squatter !== undefined) {
      // Another user's process answered on this port: routing to it would hand this app's
      // traffic to someone else. Not the release's fault: another claim gets another port.
      this.log.error({ port: this.port, uid: squatter }, `port ${this.port} of ${this.service}/${this.id} is held by another user (uid ${squatter}): releasing it`);
      await this.releaseWith('port_taken', `port ${this.port} was held by another user's process (uid ${squatter}), not by this app`);
      return;
    }
    await this.ctx.store.markRunning({ ...this.holder(), pid: this.appPid });
    this.phase = 'running';
    this.log.info({ port: this.port, pid: this.appPid }, `${this.service}/${this.id} is running on port ${this.port}`);
    this.watchHealth(socket);
  }

  /** Why the app was last restarted for failing its health check, quoted if that becomes a crash loop. */
  private unhealthy: string | undefined;

  /**
   * The health check for the instance's whole life: every intervalMs while it runs under this
   * shim. After `failures` failed checks in a row it is taken out of routing at once, then
   * stopped: its exit is a crash like any other (restart with backoff, crash loop at the
   * limit), and the restart reports it running again once the check passes.
   */
  private watchHealth(socket: Socket): void {
    const check = this.health;
    let failed = 0;
    const alive = () => this.phase === 'running' && this.shim === socket && !this.stopRequested;
    const tick = async () => {
      if (!alive()) return;
      const failure = await checkOnce(this.port, check);
      if (!alive()) return;
      failed = failure === undefined ? 0 : failed + 1;
      if (failure === undefined || failed < check.failures) {
        setTimeout(() => void tick(), check.intervalMs).unref();
        return;
      }
      const detail = `${failure}, ${failed} checks in a row`;
      this.unhealthy = detail;
      this.log.warn({ failure, failed }, `${this.service}/${this.id} failed its health check while running (${detail}): taking it out of routing and restarting it`);
      await this.ctx.store.markUnhealthy({ ...this.holder(), detail }).catch((err) => this.log.warn({ err: errMessage(err) }, 'could not take the instance out of routing (the proxy still sets it aside when it fails)'));
      if (alive()) send(socket, { t: 'stop', graceMs: this.ctx.stopGraceMs });
    };
    setTimeout(() => void tick(), check.intervalMs).unref();
  }

  /** The uid of another user listening on this instance's port, if one is (apps of their own users only). */
  private portSquatter(): number | undefined {
    if (!this.user) return undefined;
    return listenerUids(this.port).find((uid) => uid !== this.user!.uid);
  }

  private attachShim(socket: Socket): void {
    this.shim = socket;
    this.pushLease();
    let exited = false;
    this.shimExited = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    onLines<ShimToHoster>(socket, (m) => {
      if (m.t === 'log') {
        this.remember(m.l);
        this.ctx.onLog(this.service, this.id, m.s, m.l);
      }
      else if (m.t === 'exit') {
        exited = true;
        void this.onAppExit(m);
      }
    });
    socket.once('close', () => {
      if (!exited && this.shim === socket && !this.stopRequested) void this.onAppExit({ t: 'exit', code: null, signal: 'shim_lost', why: 'exited' });
    });
    socket.on('error', () => socket.destroy());
  }

  private async onAppExit(m: ShimToHoster & { t: 'exit' }): Promise<void> {
    if (this.stopRequested || this.phase === 'done') return;
    this.shim = undefined;
    if (m.why === 'lease_deadline') {
      this.log.error('the shim stopped the app because the lease was not renewed in time');
      this.fenced = true;
      this.finish();
      return;
    }
    this.outOfMemory = m.oom === true;
    if (m.oom) {
      const line = `[berth] out of memory: the kernel stopped the app at its limit of ${this.cgroup?.memoryMb ?? '?'} MB; raise it (berth update --memory) or make it use less`;
      this.remember(line);
      this.ctx.onLog(this.service, this.id, 'err', line);
      this.log.warn({ memoryMb: this.cgroup?.memoryMb }, `${this.service}/${this.id} went over its memory limit: the kernel killed it`);
    }
    const now = performance.now();
    this.crashes = [...this.crashes.filter((t) => now - t < this.ctx.crashWindowMs), now];
    if (this.crashes.length >= this.ctx.crashLimit) {
      this.log.warn({ crashes: this.crashes.length, code: m.code, signal: m.signal }, `${this.service}/${this.id} is crash-looping: releasing it`);
      const how = this.unhealthy !== undefined ? `failed its health check (${this.unhealthy})` : m.signal !== null ? `was killed by ${m.signal}` : `exited with code ${m.code}`;
      const oom = this.outOfMemory;
      await this.releaseWith(oom ? 'out_of_memory' : 'crash_loop', this.detail(`${oom ? 'went over its memory limit' : how}, ${this.crashes.length} times in ${Math.round(this.ctx.crashWindowMs / 1000)} s`));
      return;
    }
    this.unhealthy = undefined;
    const backoff = Math.min(250 * 2 ** (this.crashes.length - 1), 10_000);
    this.log.warn({ code: m.code, signal: m.signal, restartInMs: backoff }, `${this.service}/${this.id} exited (${m.signal ?? `code ${m.code}`}): restarting`);
    this.phase = 'restarting';
    await new Promise((r) => setTimeout(r, backoff));
    if (this.stopRequested) return;
    // An instance re-adopted from a previous hoster has no spec here yet: launch it afresh.
    await (this.spec ? this.runOnce() : this.launch()).catch((err) => this.fail(err));
  }

  private startRenewals(): void {
    clearInterval(this.renewTimer);
    this.renewTimer = setInterval(() => void this.renewOnce(), this.ctx.renewEveryMs);
  }

  private renewing = false;
  private lastRenewFailureLogged = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  private async renewOnce(): Promise<void> {
    if (this.renewing || this.phase === 'done') return;
    this.renewing = true;
    const sentAt = performance.now();
    try {
      const { state } = await this.ctx.store.renew({ ...this.holder(), leaseMs: this.ctx.leaseMs });
      this.validUntil = sentAt + this.ctx.leaseMs - this.ctx.fenceMarginMs;
      this.pastLeaseLogged = false;
      this.pushLease();
      if (state === 'stopping') await this.stop('retired', true);
    } catch (err) {
      if (err instanceof BerthError && (err.code === 'stale_epoch' || err.code === 'instance_not_found')) {
        this.log.warn({ code: err.code }, `lost the claim on ${this.service}/${this.id}: stopping it`);
        await this.stop('lost', false);
      } else if (performance.now() >= this.deadline()) {
        // Self-fencing: the lease may run out before Redis hears from us again.
        this.fenced = true;
        if (this.pastLeaseLogged) this.log.error({ err: errMessage(err) }, `Redis stayed away past the control-plane grace: stopping ${this.service}/${this.id}`);
        else this.log.error({ err: errMessage(err) }, `cannot renew the lease of ${this.service}/${this.id} in time: stopping it before it can be claimed elsewhere`);
        await this.stop('lost', false);
      } else {
        if (performance.now() >= this.validUntil && !this.pastLeaseLogged) {
          this.pastLeaseLogged = true;
          this.log.warn(
            { msLeft: Math.round(this.deadline() - performance.now()) },
            `cannot renew the lease of ${this.service}/${this.id} in time, but Redis is away for every machine: it keeps running past its lease (for a bounded grace)`,
          );
        }
        if (performance.now() - this.lastRenewFailureLogged > 5000) {
          this.lastRenewFailureLogged = performance.now();
          this.log.warn({ err: errMessage(err), msLeft: Math.round(this.validUntil - performance.now()) }, 'lease renewal failed: retrying');
        }
        // Every moment counts now: try again soon rather than at the next regular renewal.
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.renewOnce(), RENEW_RETRY_MS);
      }
    } finally {
      this.renewing = false;
    }
  }

  /** Renews at once (Redis is back: renewals come before anything else). */
  renewNow(): Promise<void> {
    return this.renewOnce();
  }

  /** Tells the shim the deadline again (the control plane's verdict changed). */
  refreshDeadline(): void {
    this.pushLease();
  }

  /** Monotonic time before which the app must be dead: the lease's, or later while Redis is away for everyone. */
  private deadline(): number {
    const extended = this.ctx.controlPlane?.extendedUntil(this.validUntil);
    return extended === undefined ? this.validUntil : Math.max(this.validUntil, extended);
  }

  private pushLease(): void {
    if (this.shim) send(this.shim, { t: 'lease', validForMs: Math.max(0, this.deadline() - performance.now()) });
  }

  private async stopShim(): Promise<void> {
    const shim = this.shim;
    if (!shim || shim.destroyed) return;
    send(shim, { t: 'stop', graceMs: this.ctx.stopGraceMs });
    const timeout = new Promise<void>((r) => setTimeout(r, this.ctx.stopGraceMs + 2000).unref());
    await Promise.race([this.shimExited, timeout]);
    shim.destroy();
  }

  private remember(line: string): void {
    this.lastLines.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.lastLines.length > DETAIL_LINES) this.lastLines.shift();
  }

  /** A failure's summary, then the app's last lines of output. */
  private detail(summary: string, lines: readonly string[] = this.lastLines): string {
    return lines.length === 0 ? summary : `${summary}\n${lines.join('\n')}`;
  }

  private async releaseWith(reason: string, detail?: string): Promise<void> {
    if (this.phase === 'done') return;
    this.stopRequested = true;
    this.phase = 'stopping';
    await this.stopShim();
    await this.ctx.store.release({ ...this.holder(), reason, detail }).catch((err) => this.log.warn({ err: errMessage(err) }, 'could not release the claim (the lease will expire instead)'));
    this.finish();
  }

  private async fail(err: unknown): Promise<void> {
    if (this.phase === 'done') return;
    const reason = err instanceof InstallFailure ? err.reason : this.ctx.failureReason(err);
    this.log.error({ err: errMessage(err), reason }, `${this.service}/${this.id} could not start: ${errMessage(err)}`);
    // A build failure's message already ends with the build's last lines.
    const [summary = '', ...rest] = errMessage(err).split('\n');
    await this.releaseWith(reason ?? 'start_failed', this.detail(summary, rest.length > 0 ? rest.slice(-DETAIL_LINES) : this.lastLines));
  }

  private finish(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    clearInterval(this.renewTimer);
    clearTimeout(this.retryTimer);
    this.shim?.destroy();
    this.ctx.ports.release(this.port);
    this.cgroup?.remove();
    rmSync(this.dir, { recursive: true, force: true });
    this.ctx.onDone(this);
  }
}

/** An install step failed for a reason that is the bundle's, not the machine's. */
export class InstallFailure extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

async function connectWhenReady(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(path)) {
      try {
        return await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
      } catch {
        // not listening yet
      }
    }
    if (Date.now() > deadline) throw new Error(`the instance shim did not open ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
