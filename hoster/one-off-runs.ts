import { spawn, type ChildProcess } from 'node:child_process';
import { RUN_PROCESS } from '../common/procfile.js';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { RedisClient } from '../common/redis-connection.js';
import { StopSignal, STOPPED } from '../common/stop-signal.js';
import type { LogStream, RunEnd, RunHolder, RunStore } from '../registry/store/index.js';
import type { Run } from '../sdk/types.js';
import type { InstanceCgroup } from './cgroup-limits.js';
import { instanceDir } from './instance-dir.js';
import { installInstance, type InstallContext } from './instance-install.js';
import { spawnTerminal, type Terminal } from './run-terminal.js';
import type { StartCommand } from './start-command.js';

export interface OneOffRunsOptions {
  runs: RunStore;
  install: InstallContext;
  machine: string;
  logger: Logger;
  /** Where each run gets its directory (beside the instances'). */
  instancesDir: string;
  leaseMs: number;
  renewEveryMs: number;
  /** SIGTERM → SIGKILL grace when a run is stopped. */
  stopGraceMs: number;
  /** Look for pending runs this often. @default 250 */
  pollMs: number;
  /** True while this machine has room for one more process (capacity and the load gate). */
  room: () => boolean;
  /** A connection for blocking reads (an interactive run's input). */
  openBlockingConnection: () => RedisClient;
  /** The run's output lines, for the app's log (interactive runs' bytes are not logged). */
  onLog: (app: string, run: string, stream: LogStream, line: string) => void;
}

export const DEFAULT_RUN_POLL_MS = 250;
/** util-linux's setpriv, to give a run's process a parent-death signal (Node's spawn cannot). */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** Output is sent to Redis at most this long after it was printed. */
const OUTPUT_FLUSH_MS = 30;

/**
 * One-off runs on this machine: claims pending runs while the machine has room (a lease with a
 * fencing epoch: one hoster wins), installs the run's release as an instance is installed
 * (instance-install.ts: its bundle, build, config and app user), runs the command with pipes
 * or on a PTY, ships its output, renews its lease, and stops it at its time limit, when asked
 * (its CLI went away) or when its claim is lost. A run has no port and no route, and no shim:
 * it ends with this hoster (a hoster that stops stops its runs and records them stopped).
 */
export class OneOffRuns {
  private readonly active = new Map<string, OneOffRun>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: OneOffRunsOptions) {}

  get size(): number {
    return this.active.size;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.round = this.round.then(() => this.claimRound());
    }, this.o.pollMs);
  }

  /** One look at the pending runs: claims those this machine has room for. */
  async claimRound(): Promise<void> {
    if (this.closed) return;
    let ids: string[];
    try {
      ids = await this.o.runs.pending();
    } catch {
      return;
    }
    for (const id of ids) {
      if (this.closed || !this.o.room()) return;
      const epoch = await this.o.runs.claim(id, this.o.machine, this.o.leaseMs).catch(() => undefined);
      if (epoch === undefined) continue;
      const run = await this.o.runs.get(id).catch(() => undefined);
      if (run === undefined) continue;
      const one = new OneOffRun(this.o, run, epoch, () => this.active.delete(id));
      this.active.set(id, one);
      one.start();
    }
  }

  /** Stops every run here (the hoster shuts down): each is recorded stopped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.round;
    await Promise.all([...this.active.values()].map((r) => r.stop('hoster_stopped')));
  }
}

/** One claimed run, from install to its recorded end. */
class OneOffRun {
  private readonly holder: RunHolder;
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  private terminal: Terminal | undefined;
  private cgroup: InstanceCgroup | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private limitTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  /** Why we stop it, once we do: the end it is recorded with. */
  private stopWhy: string | undefined;
  private lost = false;
  private ended = false;
  private readonly exited: Promise<void>;
  private markExited: () => void = () => undefined;
  private readonly pending: { stream: 'out' | 'err' | 'tty'; data: Buffer | string }[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly partial: Record<'out' | 'err', string> = { out: '', err: '' };
  private readonly inputStop = new StopSignal();

  constructor(
    private readonly o: OneOffRunsOptions,
    private readonly run: Run,
    epoch: number,
    private readonly onDone: () => void,
  ) {
    this.holder = { id: run.id, machine: o.machine, epoch };
    this.log = o.logger.child({ app: run.app, run: run.id, epoch });
    this.exited = new Promise((resolve) => (this.markExited = resolve));
  }

  private get dir(): string {
    return instanceDir(this.o.instancesDir, `run-${this.run.id}`, this.holder.epoch);
  }

  start(): void {
    this.renewTimer = setInterval(() => void this.renew(false), this.o.renewEveryMs);
    void this.launch().catch((err) => this.failed(err));
  }

  /** Stops the command (SIGTERM, SIGKILL after the grace) and records why. */
  async stop(why: string): Promise<void> {
    this.stopWhy ??= why;
    if (this.child === undefined && this.terminal === undefined) {
      // Not started yet (installing): it ends when the install returns.
      if (!this.ended) await this.end({ state: 'stopped', exitCode: null, signal: null, reason: why === 'stop_requested' ? '' : why });
      return;
    }
    this.signal('SIGTERM');
    this.killTimer ??= setTimeout(() => this.signal('SIGKILL'), this.o.stopGraceMs);
    await this.exited;
  }

  private async launch(): Promise<void> {
    const ctx: InstallContext = {
      ...this.o.install,
      // The run's own command instead of the app's start command.
      startCommand: (appDir) => runCommand(this.run.command, appDir),
    };
    const installed = await installInstance(
      ctx,
      { id: this.run.id, app: this.run.app, epoch: this.holder.epoch, release: this.run.release, files: null, port: 0, process: RUN_PROCESS, dir: this.dir },
      {
        build: (line) => this.o.onLog(this.run.app, this.run.id, 'build', line),
        // The hoster's "Starting instance" line is about instances: a run says nothing there.
        hoster: () => undefined,
      },
      () => this.stopWhy !== undefined || this.lost,
    );
    if (installed === undefined || this.stopWhy !== undefined || this.lost) {
      installed?.cgroup?.remove();
      if (!this.ended) await this.end({ state: 'stopped', exitCode: null, signal: null, reason: this.stopWhy === 'stop_requested' ? '' : (this.stopWhy ?? 'lost') });
      return;
    }
    const { spec, user } = installed;
    this.cgroup = installed.cgroup;
    const env = { ...spec.env, BERTH_RUN: this.run.id, PATH: `${join(spec.cwd, 'node_modules', '.bin')}:${spec.env.PATH ?? ''}` };
    delete (env as Record<string, string>).PORT;
    const command = spec.command;
    let file = 'shell' in command ? '/bin/sh' : command.file;
    let args = 'shell' in command ? ['-c', command.shell] : command.args;
    if (SETPRIV !== undefined) {
      // No shim outlives the hoster for a run: should the hoster die, the command dies with it
      // (the parent-death signal, set after the uid change, so that it holds).
      args = ['--pdeathsig', 'KILL', '--', file, ...args];
      file = SETPRIV;
    }
    if (this.run.interactive) {
      this.terminal = spawnTerminal({ file, args, cwd: spec.cwd, env, uid: user?.uid, gid: user?.gid });
      this.joinCgroup(this.terminal.pid);
      this.terminal.onData((data) => this.output('tty', Buffer.from(data, 'utf8')));
      this.terminal.onExit((code, signal) => void this.exitedWith(code, signal));
      void this.readInput();
    } else {
      const child = spawn(file, args, { cwd: spec.cwd, env, uid: user?.uid, gid: user?.gid, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      this.child = child;
      if (child.pid !== undefined) this.joinCgroup(child.pid);
      child.stdout!.on('data', (d: Buffer) => this.output('out', d));
      child.stderr!.on('data', (d: Buffer) => this.output('err', d));
      child.once('error', (err) => {
        this.output('err', `berth: cannot start ${this.run.command[0]}: ${err.message}\n`);
        void this.exitedWith(127, null);
      });
      // 'close': every byte of its output has been read by then.
      child.once('close', (code, signal) => void this.exitedWith(code, signal));
    }
    this.limitTimer = setTimeout(() => {
      this.log.info({ timeoutMs: this.run.timeoutMs }, `run ${this.run.id} reached its time limit: stopping it`);
      void this.stop('timeout');
    }, this.run.timeoutMs);
    this.log.info({ command: this.run.command, interactive: this.run.interactive }, `run ${this.run.id} of ${this.run.app} v${this.run.release} started`);
    await this.renew(true);
  }

  private joinCgroup(pid: number): void {
    for (const dir of this.cgroup?.dirs ?? []) {
      try {
        writeFileSync(join(dir, 'cgroup.procs'), String(pid));
      } catch (err) {
        this.log.warn({ err: String(err) }, 'could not put the run in its cgroup: stopping it, its limits would not hold');
        void this.stop('limits_unavailable');
      }
    }
  }

  private async renew(started: boolean): Promise<void> {
    if (this.ended) return;
    let answer: 'lost' | 'ok' | 'stop';
    try {
      answer = await this.o.runs.renew(this.holder, this.o.leaseMs, started);
    } catch {
      return; // Redis away: the next renewal tries again; the sweeper ends it if none gets through.
    }
    if (answer === 'lost') {
      this.lost = true;
      this.log.warn(`run ${this.run.id}'s claim is no longer this machine's: stopping it`);
      void this.stop('lost');
    } else if (answer === 'stop') {
      void this.stop('stop_requested');
    }
  }

  private async readInput(): Promise<void> {
    const redis = this.o.openBlockingConnection();
    let position = '0';
    try {
      while (!this.ended && this.terminal !== undefined) {
        const got = await this.inputStop.race(this.o.runs.readInput(redis, this.run.id, position, 2000).catch(async () => {
          await new Promise((r) => setTimeout(r, 500));
          return [];
        }));
        if (got === STOPPED) break;
        for (const { id, input } of got) {
          position = id;
          if (input.kind === 'keys') this.terminal.write(input.data.toString('utf8'));
          else this.terminal.resize(input.cols, input.rows);
        }
      }
    } finally {
      redis.disconnect();
    }
  }

  private output(stream: 'out' | 'err' | 'tty', data: Buffer | string): void {
    this.pending.push({ stream, data });
    this.flushTimer ??= setTimeout(() => void this.flush(), OUTPUT_FLUSH_MS);
    if (stream === 'tty') return;
    // Lines to the app's log too, as an instance's (the run id where the instance's goes).
    const text = this.partial[stream] + data.toString();
    const lines = text.split('\n');
    this.partial[stream] = lines.pop() ?? '';
    for (const line of lines) this.o.onLog(this.run.app, this.run.id, stream, line);
  }

  private flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = this.pending.splice(0);
    this.flushing = this.flushing.then(() =>
      this.o.runs.appendOutput(this.run.id, batch).catch((err) => this.log.warn({ err: String(err), entries: batch.length }, 'could not ship run output: dropped')),
    );
    return this.flushing;
  }

  private async exitedWith(code: number | null, signal: NodeJS.Signals | number | null): Promise<void> {
    if (this.ended) return;
    const signalName = typeof signal === 'number' ? (signal === 0 ? null : (Object.entries(constants.signals).find(([, n]) => n === signal)?.[0] ?? `signal ${signal}`)) : signal;
    for (const stream of ['out', 'err'] as const) {
      if (this.partial[stream] !== '') this.o.onLog(this.run.app, this.run.id, stream, this.partial[stream]);
    }
    const why = this.stopWhy;
    await this.end(
      why === undefined
        ? { state: 'exited', exitCode: code, signal: signalName, reason: null }
        : { state: 'stopped', exitCode: code, signal: signalName, reason: why === 'stop_requested' ? '' : why },
    );
  }

  private async failed(err: unknown): Promise<void> {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    this.log.warn({ err: message }, `run ${this.run.id} could not start: ${message}`);
    this.output('err', `berth: the run could not start: ${message}\n`);
    await this.end({ state: 'failed', exitCode: null, signal: null, reason: typeof code === 'string' ? code : 'start_failed' });
  }

  private async end(end: RunEnd): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.renewTimer);
    clearTimeout(this.limitTimer);
    clearTimeout(this.killTimer);
    this.inputStop.stop();
    await this.flush();
    if (!this.lost) {
      const recorded = await this.o.runs.finish(this.holder, end).catch(() => false);
      if (!recorded) this.log.warn(`run ${this.run.id}'s end was not recorded (its claim had ended)`);
    }
    this.log.info({ state: end.state, exitCode: end.exitCode, signal: end.signal, reason: end.reason }, `run ${this.run.id} ended (${end.state}${end.exitCode === null ? '' : ` ${end.exitCode}`})`);
    this.cgroup?.remove();
    rmSync(this.dir, { recursive: true, force: true });
    this.markExited();
    this.onDone();
  }

  private signal(signal: NodeJS.Signals): void {
    try {
      if (this.terminal !== undefined) this.terminal.kill(signal);
      // Its process group: a shell's children stop too.
      else if (this.child?.pid !== undefined) process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** The run's argv as a start command: a program found on PATH (the app's node_modules/.bin first), with its arguments as given. */
function runCommand(argv: readonly string[], _appDir: string): StartCommand {
  return { file: argv[0]!, args: argv.slice(1) };
}
