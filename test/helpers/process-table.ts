// The host's processes as /proc shows them, for tests that watch daemons fork, die and come back.
import { readdirSync, readFileSync } from 'node:fs';

/** A process's state letter and parent, or undefined when it is gone. */
function stat(pid: number | string): { state: string; ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name, in parentheses, may hold spaces: the fields start after its last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** Live (not zombie) children of `pid`. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const s = stat(entry);
    if (s !== undefined && s.state !== 'Z' && s.ppid === pid) out.push(Number(entry));
  }
  return out;
}

/** The process runs (a zombie, dead but not yet reaped, does not). */
export function alive(pid: number): boolean {
  const s = stat(pid);
  return s !== undefined && s.state !== 'Z';
}
