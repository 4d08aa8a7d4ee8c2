import { spawn as spawnPty } from 'node-pty';

/** A process on a pseudo-terminal of this machine (an interactive run). */
export interface Terminal {
  readonly pid: number;
  onData(listener: (data: string) => void): void;
  onExit(listener: (code: number | null, signal: number | null) => void): void;
  write(data: string): void;
  resize(cols: number, rows: number): void;
  kill(signal: NodeJS.Signals): void;
}

export interface TerminalSpec {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** The app's user (the hoster is root): the PTY's process is never root's. */
  uid?: number;
  gid?: number;
}

/**
 * Spawns `file` on a new PTY with node-pty (a real terminal: programs that insist on one, a
 * shell's job control, Ctrl-C as the terminal's interrupt character). The process runs as the
 * app's user: node-pty sets uid and gid in the child before exec.
 */
export function spawnTerminal(spec: TerminalSpec): Terminal {
  const pty = spawnPty(spec.file, spec.args, {
    name: 'xterm-256color',
    cols: 80,
    rows: 24,
    cwd: spec.cwd,
    env: { TERM: 'xterm-256color', ...spec.env },
    uid: spec.uid,
    gid: spec.gid,
  });
  return {
    pid: pty.pid,
    onData: (listener) => void pty.onData(listener),
    onExit: (listener) => void pty.onExit(({ exitCode, signal }) => listener(signal ? null : exitCode, signal ?? null)),
    write: (data) => pty.write(data),
    resize: (cols, rows) => pty.resize(cols, rows),
    kill: (signal) => pty.kill(signal),
  };
}
