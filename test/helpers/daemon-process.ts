import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** A real `berth` daemon process, forked from the compiled entry point, with its output kept. */
export interface DaemonProcess {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** JSON log lines printed so far. */
  logLines(): Array<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name) once it exits. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/** `wrap` runs the daemon through a command that then execs it, e.g. `ip netns exec <ns>` (same pid). */
export function startDaemon(args: string[], env: NodeJS.ProcessEnv, options: { wrap?: string[] } = {}): DaemonProcess {
  const [command, ...rest] = [...(options.wrap ?? []), process.execPath, CLI_MAIN, ...args];
  const child = spawn(command!, rest, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output: () => out,
    logLines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        }),
    exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
