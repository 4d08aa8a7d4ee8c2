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
/**
 * Stops the shared listening socket itself (shutdown(SHUT_RD) on descriptor 3): new
 * connections are refused and the port is free for a replacement, while haproxy finishes what
 * it has. haproxy never does this to a socket it inherited (it would break it for its master),
 * and its master keeps its copy until it exits; Node has no shutdown for a listening socket.
 * perl is part of every Debian (perl-base is essential).
 */
const STOP_LISTENING = 'open(my $s, "+<&=", 3) or die "fd 3: $!\\n"; shutdown($s, 0) or die "shutdown: $!\\n"';

/** The listening socket's descriptor in haproxy (its config binds `fd@3`). */
export const LISTEN_FD = 3;

/**
 * The socket keeper: a shell that holds the proxy's listening socket (its descriptor 3) for the
 * life of the proxy and starts haproxy, which inherits it, each time berth writes a line. A
 * haproxy that dies takes no socket with it: connections wait in the socket's backlog until the
 * next one accepts them, so a crash costs the requests in flight and nothing more. On a drain
 * it stops the socket (`stop-listening`, STOP_LISTENING). When berth
 * is gone (its end of the pipe closes, even after a SIGKILL), the keeper stops haproxy and exits:
 * no haproxy outlives its proxy.
 */
const KEEPER = [
  'while read -r line; do',
  '  case "$line" in',
  `    stop-listening) if perl -e '${STOP_LISTENING}' 3<&3; then echo berth-stopped-listening; else echo berth-still-listening; fi ;;`,
  '    *) ( "$0" -W -S "$1" -f "$2" 3<&3 & p=$!; echo "$p" > "$3"; echo "berth-haproxy-pid $p"; wait "$p"; echo "berth-haproxy-exit $?" ) & ;;',
  '  esac',
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
  private stoppedListening: ((ok: boolean) => void) | undefined;
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
      if (line === 'berth-stopped-listening' || line === 'berth-still-listening') {
        this.stoppedListening?.(line === 'berth-stopped-listening');
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
   * The drain: haproxy keeps accepting for `listenLingerMs` (closing a listener resets the
   * connections queued on it; the engine has made every answer say that it drains by then),
   * then soft-stops (SIGUSR1: requests in flight finish, an idle client connection is answered
   * once more with Connection: close, `option idle-close-on-response`) and the keeper stops the
   * socket, so that the port refuses and is free for a replacement; idle client connections are
   * left to their clients for `idleLingerMs` (as the Node engine's drain does), then, once
   * nothing is in flight, a hard stop closes them; SIGKILL after the grace. Then the keeper goes.
   */
  async close(graceMs: number, linger: { listenLingerMs?: number; idleLingerMs?: number } = {}): Promise<void> {
    const { listenLingerMs = 0, idleLingerMs = 0 } = linger;
    this.closing = true;
    const master = this.masterPid;
    if (master > 0) {
      let gone = false;
      const exited = new Promise<void>((resolve) => (this.exited = resolve));
      void exited.then(() => (gone = true));
      const worker = this.workerPid;
      const timer = setTimeout(() => !gone && process.kill(master, 'SIGKILL'), graceMs + 1000);
      const wait = (ms: number) => Promise.race([exited, new Promise((r) => setTimeout(r, ms))]);
      if (listenLingerMs > 0) await wait(Math.min(listenLingerMs, graceMs));
      if (!gone) process.kill(master, 'SIGUSR1');
      await this.stopListening();
      await wait(idleLingerMs);
      while (!gone && worker > 0) {
        const sessions = await runtimeCommand(this.o.masterSocket, `@!${worker} show sess`, 1000).catch(() => undefined);
        if (sessions === undefined || !/ fe=berth /.test(sessions)) {
          process.kill(master, 'SIGTERM');
          break;
        }
        await wait(100);
      }
      await exited;
      clearTimeout(timer);
    }
    const keeperGone = new Promise<void>((resolve) => (this.keeper.exitCode !== null || this.keeper.signalCode !== null ? resolve() : this.keeper.once('exit', () => resolve())));
    this.keeper.stdin!.end();
    await keeperGone;
  }

  /** The keeper stops the listening socket (STOP_LISTENING); without perl the port is held until haproxy has exited. */
  private async stopListening(): Promise<void> {
    const done = new Promise<boolean>((resolve) => (this.stoppedListening = resolve));
    this.keeper.stdin!.write('stop-listening\n');
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000).unref());
    if (!(await Promise.race([done, timeout]))) {
      this.o.logger.warn(`the proxy's port could not be stopped before haproxy exits (is perl installed?): ${this.stderrTail.at(-1) ?? 'no answer'}`);
    }
    this.stoppedListening = undefined;
  }

  /** Workers of earlier configs still finishing their connections after a reload (the master's `show proc`). */
  async oldWorkers(): Promise<number[]> {
    if (this.masterPid === 0) return [];
    const table = await runtimeCommand(this.o.masterSocket, 'show proc', 1000);
    const section = table.split(/^# old workers$/m)[1]?.split(/^#/m)[0] ?? '';
    return [...section.matchAll(/^(\d+)\s+worker\b/gm)].map((m) => Number(m[1]));
  }

  private async servingPid(): Promise<number> {
    const info = await runtimeCommand(this.o.adminSocket, 'show info', 1000);
    const match = /^Pid: (\d+)$/m.exec(info);
    return match ? Number(match[1]) : 0;
  }
}
