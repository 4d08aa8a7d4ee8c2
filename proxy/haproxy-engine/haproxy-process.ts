import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Logger } from '../../common/logger.js';
import { runtimeCommand } from './runtime-api.js';

/** A haproxy that does not answer on its stats socket within this after starting is a failed start. */
const READY_WAIT_MS = 10_000;
/** Restarts after a crash wait this long, doubling, up to 5 s; a run this long starts afresh. */
const FIRST_RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 5000;
const STABLE_AFTER_MS = 30_000;
/** On a stop, idle client connections are left this long to their clients (the Node engine's IDLE_LINGER_MS). */
const IDLE_LINGER_MS = 1000;

export interface HaproxyProcessOptions {
  binary: string;
  configFile: string;
  masterSocket: string;
  adminSocket: string;
  logger: Logger;
  /** A haproxy that exited unasked: the engine restarts it (with its config written afresh). */
  onCrash: (why: string) => void;

}

/**
 * One haproxy in master-worker mode (`-W -S`): started, reloaded seamlessly through its master
 * CLI (the new worker takes the listening sockets over, `expose-fd listeners`), stopped with a
 * soft stop that lets requests in flight finish. A crash is reported to `onCrash`, never hidden.
 */
export class HaproxyProcess {
  private child: ChildProcess | undefined;
  private closing = false;
  private startedAt = 0;
  private crashesInARow = 0;
  private stderrTail: string[] = [];
  /** The worker serving now (its stats socket's process). */
  workerPid = 0;
  restarts = 0;
  reloads = 0;

  constructor(private readonly o: HaproxyProcessOptions) {}

  get masterPid(): number {
    return this.child?.pid ?? 0;
  }

  /** How long to wait before the next restart after a crash. */
  nextRestartDelay(): number {
    if (Date.now() - this.startedAt > STABLE_AFTER_MS) this.crashesInARow = 0;
    const delay = Math.min(FIRST_RESTART_DELAY_MS * 2 ** this.crashesInARow, MAX_RESTART_DELAY_MS);
    this.crashesInARow++;
    return delay;
  }

  /** Checks the config with haproxy itself: a bad one never replaces a good one. */
  async check(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      execFile(this.o.binary, ['-c', '-f', this.o.configFile], (err, _stdout, stderr) =>
        err ? reject(new Error(`haproxy refuses the config berth wrote (${this.o.configFile}): ${stderr.split('\n').filter((l) => l.includes('[ALERT]')).join(' ').slice(0, 800)}`)) : resolve(),
      ),
    );
  }

  async start(): Promise<void> {
    this.closing = false;
    this.stderrTail = [];
    // A worker of a haproxy that died may still hold the old socket: only the new one may answer.
    rmSync(this.o.adminSocket, { force: true });
    rmSync(this.o.masterSocket, { force: true });
    const child = spawn(this.o.binary, ['-W', '-S', `${this.o.masterSocket},mode,600`, '-f', this.o.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.startedAt = Date.now();
    const log = (line: string) => {
      this.stderrTail = [...this.stderrTail.slice(-9), line];
      if (line.includes('[ALERT]')) this.o.logger.error({ haproxy: line }, 'haproxy alert');
      else if (line.includes('[WARNING]')) this.o.logger.warn({ haproxy: line }, 'haproxy warning');
      else this.o.logger.debug({ haproxy: line }, 'haproxy');
    };
    createInterface({ input: child.stdout! }).on('line', log);
    createInterface({ input: child.stderr! }).on('line', log);
    let exited = false;
    child.once('exit', (code, signal) => {
      exited = true;
      if (this.child !== child) return;
      this.child = undefined;
      this.workerPid = 0;
      if (this.closing) return;
      this.o.onCrash(`haproxy (pid ${child.pid}) exited unasked (${signal ?? `code ${code}`})${this.stderrTail.length ? `: ${this.stderrTail.at(-1)}` : ''}`);
    });
    child.once('error', (err) => this.o.logger.error({ err: err.message }, `haproxy could not be started (${this.o.binary}): install it (apt-get install haproxy)`));
    const deadline = Date.now() + READY_WAIT_MS;
    for (;;) {
      if (exited) throw new Error(`haproxy exited as it started: ${this.stderrTail.join(' | ') || 'no output'}`);
      const pid = await this.servingPid().catch(() => 0);
      if (pid > 0) {
        this.workerPid = pid;
        return;
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`haproxy did not answer on ${this.o.adminSocket} within ${READY_WAIT_MS} ms: ${this.stderrTail.join(' | ')}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** A seamless reload through the master CLI; resolves once the new worker answers. */
  async reload(): Promise<void> {
    await this.check();
    const before = this.workerPid;
    this.workerPid = 0; // changes wait for the new worker (they are in the config it loads)
    await runtimeCommand(this.o.masterSocket, 'reload', 5000).catch(() => '');
    const deadline = Date.now() + READY_WAIT_MS;
    for (;;) {
      const pid = await this.servingPid().catch(() => 0);
      if (pid > 0 && pid !== before) {
        this.workerPid = pid;
        this.reloads++;
        return;
      }
      if (Date.now() > deadline) throw new Error(`haproxy's reload did not bring a new worker within ${READY_WAIT_MS} ms: ${this.stderrTail.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Soft stop (SIGUSR1): listeners closed, requests in flight finished; SIGKILL after the grace. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    let gone = false;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exited.then(() => (gone = true));
    const worker = this.workerPid;
    child.kill('SIGUSR1');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs + 1000);
    // Idle client connections are left to their clients a moment (as the Node engine's drain
    // does), then, once no request is in flight, a hard stop closes them.
    await Promise.race([exited, new Promise((r) => setTimeout(r, IDLE_LINGER_MS))]);
    while (!gone && worker > 0) {
      const sessions = await runtimeCommand(this.o.masterSocket, `@!${worker} show sess`, 1000).catch(() => undefined);
      if (sessions === undefined || !/ fe=berth /.test(sessions)) {
        child.kill('SIGTERM');
        break;
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
    }
    await exited;
    clearTimeout(timer);
  }

  private async servingPid(): Promise<number> {
    const info = await runtimeCommand(this.o.adminSocket, 'show info', 1000);
    const match = /^Pid: (\d+)$/m.exec(info);
    return match ? Number(match[1]) : 0;
  }
}
