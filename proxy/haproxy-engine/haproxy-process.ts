import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** The listening socket's descriptor in haproxy (its config binds `fd@3`). */
export const LISTEN_FD = 3;

/**
 * The socket keeper: a shell that holds the proxy's listening socket (its descriptor 3) for the
 * life of the proxy and starts haproxy, which inherits it, each time berth writes a line. A
 * haproxy that dies takes no socket with it: connections wait in the socket's backlog until the
 * next one accepts them, so a crash costs the requests in flight and nothing more. When berth
 * is gone (its end of the pipe closes, even after a SIGKILL), the keeper stops haproxy and exits:
 * no haproxy outlives its proxy.
 */
const KEEPER = [
  'while read -r _; do',
  '  ( "$0" -W -S "$1" -f "$2" 3<&3 & p=$!; echo "$p" > "$3"; echo "berth-haproxy-pid $p"; wait "$p"; echo "berth-haproxy-exit $?" ) &',
  'done',
  '[ -s "$3" ] && kill -TERM "$(cat "$3")" 2>/dev/null',
  'exit 0',
].join('\n');

export interface HaproxyProcessOptions {
  binary: string;
  configFile: string;
  masterSocket: string;
  adminSocket: string;
  /** The proxy's listening socket, bound and listening (berth made it; haproxy inherits it). */
  listenFd: number;
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
  private readonly keeper: ChildProcess;
  private closing = false;
  private startedAt = 0;
  private crashesInARow = 0;
  private stderrTail: string[] = [];
  private started: ((pid: number) => void) | undefined;
  private exited: (() => void) | undefined;
  /** haproxy's master said a (re)load failed: its config or limits refused; the old worker serves on. */
  private loadFailed = false;
  /** haproxy's master (what the keeper started), 0 while none runs. */
  masterPid = 0;
  /** The worker serving now (its stats socket's process). */
  workerPid = 0;
  restarts = 0;
  reloads = 0;

  constructor(private readonly o: HaproxyProcessOptions) {
    const stdio: ('pipe' | number)[] = ['pipe', 'pipe', 'pipe', o.listenFd];
    this.keeper = spawn('sh', ['-c', KEEPER, o.binary, `${o.masterSocket},mode,600`, o.configFile, `${o.configFile}.pid`], { stdio });
    const log = (line: string) => {
      const pid = /^berth-haproxy-pid (\d+)$/.exec(line);
      if (pid) {
        this.masterPid = Number(pid[1]);
        this.started?.(this.masterPid);
        return;
      }
      const exit = /^berth-haproxy-exit (\d+)$/.exec(line);
      if (exit) {
        const was = this.masterPid;
        const orphan = this.workerPid;
        this.masterPid = 0;
        this.workerPid = 0;
        // A worker outlives a master killed outright: soft-stopped, it finishes what it has in
        // flight and exits, and the next haproxy takes the socket's new connections.
        if (orphan > 0) {
          try {
            process.kill(orphan, 'SIGUSR1');
          } catch {
            // already gone
          }
        }
        this.exited?.();
        const code = Number(exit[1]);
        if (!this.closing) this.o.onCrash(`haproxy (pid ${was}) exited unasked (${code > 128 ? `signal ${code - 128}` : `code ${code}`})${this.stderrTail.length ? `: ${this.stderrTail.at(-1)}` : ''}`);
        return;
      }
      this.stderrTail = [...this.stderrTail.slice(-9), line];
      if (line.includes('Loading failure!')) this.loadFailed = true;
      // An old worker says so of each of its proxies as it stops after a reload: one line per app.
      if (/\] +\(\d+\) : (CLI : )?Proxy \S+ stopped \(cumulated conns/.test(line)) this.o.logger.debug({ haproxy: line }, 'haproxy');
      else if (line.includes('[ALERT]')) this.o.logger.error({ haproxy: line }, 'haproxy alert');
      else if (line.includes('[WARNING]')) this.o.logger.warn({ haproxy: line }, 'haproxy warning');
      else this.o.logger.debug({ haproxy: line }, 'haproxy');
    };
    createInterface({ input: this.keeper.stdout! }).on('line', log);
    createInterface({ input: this.keeper.stderr! }).on('line', log);
    this.keeper.stdin!.on('error', () => undefined);
    this.keeper.once('exit', (code, signal) => {
      if (!this.closing) this.o.logger.error({ code, signal }, "haproxy's socket keeper exited: the proxy's port is gone; restart the proxy");
    });
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
    // The inherited socket is the keeper's alone: the check reads the same config bound to an
    // address instead (a check binds nothing).
    const checked = `${this.o.configFile}.check`;
    writeFileSync(checked, readFileSync(this.o.configFile, 'utf8').replace(`bind fd@${LISTEN_FD}`, 'bind 127.0.0.1:1'));
    await new Promise<void>((resolve, reject) =>
      execFile(this.o.binary, ['-c', '-f', checked], (err, _stdout, stderr) =>
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
    let gone = false;
    const exited = new Promise<void>((resolve) => (this.exited = resolve));
    void exited.then(() => (gone = true));
    const started = new Promise<number>((resolve) => (this.started = resolve));
    this.keeper.stdin!.write('\n');
    await started;
    this.startedAt = Date.now();
    const deadline = Date.now() + READY_WAIT_MS;
    for (;;) {
      if (gone) throw new Error(`haproxy exited as it started: ${this.stderrTail.join(' | ') || 'no output'}`);
      const pid = await this.servingPid().catch(() => 0);
      if (pid > 0) {
        this.workerPid = pid;
        return;
      }
      if (Date.now() > deadline) {
        if (this.masterPid > 0) process.kill(this.masterPid, 'SIGKILL');
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
    this.loadFailed = false;
    await runtimeCommand(this.o.masterSocket, 'reload', 5000).catch(() => '');
    const deadline = Date.now() + READY_WAIT_MS;
    for (;;) {
      if (this.loadFailed) {
        this.workerPid = before;
        throw new Error(`haproxy's reload failed (the old worker serves on): ${this.stderrTail.filter((l) => l.includes('[ALERT]')).join(' | ')}`);
      }
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

  /**
   * Soft stop (SIGUSR1): listeners closed, requests in flight finished; idle client connections
   * are left to their clients a moment (as the Node engine's drain does), then, once nothing is
   * in flight, a hard stop closes them; SIGKILL after the grace. Then the keeper goes.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const master = this.masterPid;
    if (master > 0) {
      let gone = false;
      const exited = new Promise<void>((resolve) => (this.exited = resolve));
      void exited.then(() => (gone = true));
      const worker = this.workerPid;
      process.kill(master, 'SIGUSR1');
      const timer = setTimeout(() => !gone && process.kill(master, 'SIGKILL'), graceMs + 1000);
      await Promise.race([exited, new Promise((r) => setTimeout(r, IDLE_LINGER_MS))]);
      while (!gone && worker > 0) {
        const sessions = await runtimeCommand(this.o.masterSocket, `@!${worker} show sess`, 1000).catch(() => undefined);
        if (sessions === undefined || !/ fe=berth /.test(sessions)) {
          process.kill(master, 'SIGTERM');
          break;
        }
        await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
      }
      await exited;
      clearTimeout(timer);
    }
    const keeperGone = new Promise<void>((resolve) => (this.keeper.exitCode !== null || this.keeper.signalCode !== null ? resolve() : this.keeper.once('exit', () => resolve())));
    this.keeper.stdin!.end();
    await keeperGone;
  }

  private async servingPid(): Promise<number> {
    const info = await runtimeCommand(this.o.adminSocket, 'show info', 1000);
    const match = /^Pid: (\d+)$/m.exec(info);
    return match ? Number(match[1]) : 0;
  }
}
