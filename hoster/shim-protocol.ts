import type { Socket } from 'node:net';

/**
 * Messages between a hoster and an instance shim, one JSON object per line over the shim's
 * Unix socket. The shim owns the app process; the hoster owns the lease.
 */
export type HosterToShim =
  /** The claim is good for this much longer; stop the app before then unless told again. */
  | { t: 'lease'; validForMs: number }
  /** Stop the app now: SIGTERM its process group, SIGKILL after graceMs. */
  | { t: 'stop'; graceMs: number };

export type ShimToHoster =
  | { t: 'hello'; instance: string; service: string; epoch: number; port: number; pid: number; appPid: number }
  | { t: 'log'; s: 'out' | 'err'; l: string }
  /** `oom`: the kernel killed it for going over its cgroup's memory limit. */
  | { t: 'exit'; code: number | null; signal: string | null; why: 'exited' | 'stopped' | 'lease_deadline'; oom?: boolean };

/** What the hoster tells a shim at start, in a file only root (or the hoster's user) can read. */
export interface ShimSpec {
  instance: string;
  service: string;
  epoch: number;
  release: number;
  port: number;
  socketPath: string;
  logFile: string;
  cwd: string;
  env: Record<string, string>;
  command: { shell: string } | { file: string; args: string[] };
  uid?: number;
  gid?: number;
  /** The instance's cgroup directories (memory and CPU limits): the app joins them as it starts. */
  cgroups?: string[];
  /** Where the kernel counts OOM kills in that cgroup (an `oom_kill N` line). */
  oomFile?: string;
  /** How long the app may run before the hoster must have renewed (it stops in time otherwise). */
  leaseValidForMs: number;
  /** SIGTERM → SIGKILL grace when the shim stops the app on its own. */
  stopGraceMs: number;
}

/** Writes one message as a line. */
export function send(socket: Socket, message: HosterToShim | ShimToHoster): void {
  if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(message)}\n`);
}

/**
 * Calls `onMessage` for each complete JSON line read from `socket`; ignores malformed lines.
 * When `onMessage` returns 'stop', reading stops after that line: the socket is paused with
 * the bytes read past it put back, so that the next reader (who resumes it) misses nothing.
 * Returns what stops the calls.
 */
export function onLines<T>(socket: Socket, onMessage: (message: T) => void | 'stop'): () => void {
  let buffer = '';
  socket.setEncoding('utf8');
  const onData = (chunk: string) => {
    buffer += chunk;
    // A peer that never sends a newline must not grow the buffer without end.
    if (buffer.length > 1024 * 1024) buffer = '';
    let end;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      let verdict: void | 'stop' = undefined;
      try {
        verdict = onMessage(JSON.parse(line) as T);
      } catch {
        // not ours: ignore
      }
      if (verdict === 'stop') {
        socket.off('data', onData);
        socket.pause();
        if (buffer !== '') socket.unshift(buffer, 'utf8');
        buffer = '';
        return;
      }
    }
  };
  socket.on('data', onData);
  return () => socket.off('data', onData);
}
