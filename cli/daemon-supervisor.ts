import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';

export interface SupervisedDaemon {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** How long it may take to drain after SIGTERM before it is killed. @default 15000 */
  stopGraceMs?: number;
}

export interface SupervisorEvents {
  started: [name: string, pid: number];
  exited: [name: string, code: number | null, signal: NodeJS.Signals | null, restartInMs: number | null];
}

/**
 * Keeps a set of daemons running as child processes: one that dies is restarted with a
 * capped backoff (reset once it stayed up a while), and `stop()` stops them in reverse order.
 */
export class DaemonSupervisor extends EventEmitter<SupervisorEvents> {
  private readonly children = new Map<string, { spec: SupervisedDaemon; child?: ChildProcess; restarts: number; timer?: NodeJS.Timeout }>();
  private stopping = false;

  start(spec: SupervisedDaemon): void {
    const entry = { spec, restarts: 0 };
    this.children.set(spec.name, entry);
    this.launch(spec.name);
  }

  private launch(name: string): void {
    const entry = this.children.get(name);
    if (!entry || this.stopping) return;
    const { spec } = entry;
    // Own process group: a terminal's Ctrl-C reaches only the supervisor, which then stops
    // the daemons in order instead of all of them at once.
    const child = spawn(spec.command, spec.args, {
      env: spec.env ?? process.env,
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    });
    entry.child = child;
    const startedAt = Date.now();
    child.once('spawn', () => this.emit('started', name, child.pid ?? 0));
    child.once('error', () => undefined); // 'exit' follows and is handled there
    child.once('exit', (code, signal) => {
      entry.child = undefined;
      if (this.stopping) {
        this.emit('exited', name, code, signal, null);
        return;
      }
      if (Date.now() - startedAt > 30_000) entry.restarts = 0;
      const delay = Math.min(250 * 2 ** entry.restarts, 10_000);
      entry.restarts++;
      this.emit('exited', name, code, signal, delay);
      entry.timer = setTimeout(() => this.launch(name), delay);
    });
  }

  /** Kills every daemon at once (a second Ctrl-C): nothing is left running behind. */
  killNow(): void {
    this.stopping = true;
    for (const entry of this.children.values()) {
      clearTimeout(entry.timer);
      entry.child?.kill('SIGKILL');
    }
  }

  /** Stops every daemon, last started first; SIGKILL after each one's grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const entry of [...this.children.values()].reverse()) {
      clearTimeout(entry.timer);
      const child = entry.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      await stopChild(child, entry.spec.stopGraceMs ?? 15_000);
    }
  }
}

/** Attaches the exit listener first, then SIGTERM, then SIGKILL after `graceMs`. */
export function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
