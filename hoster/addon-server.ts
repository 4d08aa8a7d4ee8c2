import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { AddonServerState, AddonUsage, StoredAddon } from '../registry/store/index.js';
import { addonKindServer, type AddonBinaries, type AddonKindServer } from './addon-kinds.js';
import type { AddonUser } from './addon-user.js';
import { restartBackoffMs } from './crash-policy.js';

/** A server must accept connections within this after its start, or it counts as a crash. */
const START_DEADLINE_MS = 60_000;
/** A server that ran this long starts its backoff over at the next crash. */
const STEADY_MS = 60_000;
/** How long a server may take to stop after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 15_000;

export interface AddonServerOptions {
  addon: StoredAddon;
  /** The add-on's folder (its data inside). */
  dir: string;
  user: AddonUser;
  binaries: AddonBinaries;
  logger: Logger;
  /** Called when the state changes, so that the holder reports it at once. */
  onChange: () => void;
}

/**
 * One add-on's server process, kept running: started as the add-on's user, watched until it
 * accepts connections, restarted with a growing backoff each time it dies, never given up on
 * (its data is here and nowhere else). Nothing here ever removes its data.
 */
export class AddonServer {
  state: AddonServerState = 'starting';
  detail = '';
  restarts = 0;
  private child: ChildProcess | undefined;
  private stopped = false;
  private crashes = 0;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private readonly kind: AddonKindServer;
  private readonly log: Logger;
  private readonly tail: string[] = [];

  constructor(private readonly o: AddonServerOptions) {
    this.kind = addonKindServer(o.addon, o.dir, o.user, o.binaries);
    this.log = o.logger.child({ addon: o.addon.name, kind: o.addon.kind });
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Its data size and connections now (addon-kinds.ts), for a server that runs. */
  measure(): Promise<Omit<AddonUsage, 'measuredAt'>> {
    return this.kind.measure();
  }

  /** Stops the server (SIGTERM, then SIGKILL after a grace) and its restarts. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.terminate(this.child);
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const startedAt = Date.now();
      try {
        await this.kind.prepare();
        await this.stopLeftover();
        if (this.stopped) break;
        const exited = this.spawnServer();
        await Promise.race([this.acceptsConnections(), exited.then((how) => Promise.reject(new Error(`it exited (${how}) while starting: ${this.lastWords()}`)))]);
        await Promise.race([this.retried(() => this.kind.afterStart()), exited.then((how) => Promise.reject(new Error(`it exited (${how}) while starting: ${this.lastWords()}`)))]);
        this.set('running', '');
        this.log.info({ pid: this.pid, port: this.o.addon.port }, `add-on ${this.o.addon.name} runs`);
        const how = await exited;
        if (this.stopped) break;
        throw new Error(`it exited (${how}): ${this.lastWords()}`);
      } catch (err) {
        await this.terminate(this.child);
        if (this.stopped) break;
        if (Date.now() - startedAt > STEADY_MS) this.crashes = 0;
        this.crashes++;
        this.restarts++;
        const backoffMs = restartBackoffMs(this.crashes);
        const detail = this.masked(err instanceof Error ? err.message : String(err));
        this.set('crashed', detail);
        this.log.warn({ detail, backoffMs, restarts: this.restarts }, `add-on ${this.o.addon.name} crashed: restarting in ${backoffMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoffMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
        if (!this.stopped) this.set('starting', detail);
      }
    }
  }

  /** PostgreSQL accepts connections before it takes queries ("the database system is starting up"): tried again until the deadline. */
  private async retried(step: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + START_DEADLINE_MS;
    for (;;) {
      try {
        return await step();
      } catch (err) {
        if (this.stopped || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private set(state: AddonServerState, detail: string): void {
    this.state = state;
    this.detail = detail;
    this.o.onChange();
  }

  /** Starts the server; resolves how it ended. */
  private spawnServer(): Promise<string> {
    const { file, args } = this.kind.command();
    const u = this.o.user;
    const child = spawn(file, args, {
      cwd: this.o.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      // None of the hoster's secrets (token, Redis URL): the server needs nothing of its environment.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
      ...(u.name === null ? {} : { uid: u.uid, gid: u.gid }),
    });
    this.child = child;
    const ended = new Promise<string>((resolve) => {
      child.once('error', (err) => resolve(`could not start ${file}: ${err.message}`));
      child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`));
    });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream! }).on('line', (line) => {
        const text = this.masked(line);
        this.tail.push(text);
        if (this.tail.length > 5) this.tail.shift();
        this.log.info({ line: text }, 'add-on server output');
      });
    }
    return ended;
  }

  /** Resolves once the server's port accepts a connection (polled), rejects at the deadline or when stopped. */
  private async acceptsConnections(): Promise<void> {
    const deadline = Date.now() + START_DEADLINE_MS;
    while (!this.stopped) {
      if (await tcpOpen(this.o.addon.host, this.o.addon.port)) return;
      if (Date.now() > deadline) throw new Error(`it did not accept connections on ${this.o.addon.host}:${this.o.addon.port} within ${START_DEADLINE_MS / 1000} s: ${this.lastWords()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('stopped');
  }

  /** A server left running by a hoster that died (its pid file names it) is stopped before another starts on its data. */
  private async stopLeftover(): Promise<void> {
    const pid = await stopLeftoverServer(this.o.dir, this.child?.pid);
    if (pid !== undefined) this.log.info({ pid }, `stopped the server a previous hoster left running on ${this.o.addon.name}'s data`);
  }

  private async terminate(child: ChildProcess | undefined): Promise<void> {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    // The listener first, then the signal (STYLE 13).
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // PostgreSQL's "fast" shutdown: SIGINT rolls back open transactions and stops cleanly.
    child.kill(this.o.addon.kind === 'postgres' ? 'SIGINT' : 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  private lastWords(): string {
    return this.tail.length === 0 ? 'no output' : this.tail.slice(-2).join(' / ');
  }

  /** The password never reaches a log line or a detail. */
  masked(text: string): string {
    return text.split(this.o.addon.password).join('***');
  }
}

/**
 * Stops the add-on server a dead hoster left running on the folder `dir`, if there is one: the
 * pid its pid file names, when that process still works in `dir` (a pid given meanwhile to another
 * process, another add-on's server among them, is left alone). SIGKILL after the grace: a Redis
 * whose folder is gone refuses to exit until it could save. Replies the pid it stopped.
 */
export async function stopLeftoverServer(dir: string, except?: number): Promise<number | undefined> {
  for (const file of [join(dir, 'redis.pid'), join(dir, 'data', 'postmaster.pid')]) {
    let pid: number;
    try {
      pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 1 || pid === except) continue;
    let comm: string;
    let cwd: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    // Both servers work in their data folder (redis `dir`, postgres -D).
    if ((comm !== 'postgres' && !comm.startsWith('redis-server')) || !(cwd === dir || cwd.startsWith(`${dir}/`))) continue;
    // PostgreSQL's SIGTERM waits for every session to end; SIGINT is its fast shutdown.
    signal(pid, comm === 'postgres' ? 'SIGINT' : 'SIGTERM');
    const deadline = Date.now() + STOP_GRACE_MS;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) signal(pid, 'SIGKILL');
    const killedBy = Date.now() + 5000;
    while (alive(pid) && Date.now() < killedBy) await new Promise((r) => setTimeout(r, 50));
    return pid;
  }
  return undefined;
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}
