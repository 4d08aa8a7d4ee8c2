import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** An app's memory and CPU limits, from its release's attributes. */
export interface CgroupLimits {
  /** Memory (and swap) ceiling per instance, MiB: over it the kernel kills the app. */
  memoryMb?: number;
  /** CPU weight against the machine's other instances, 1–10000 (100 is everyone's default). */
  cpuWeight?: number;
}

/** Where a machine's cgroups are and which kind: what `detectCgroups` finds. */
export type CgroupSupport =
  | { kind: 'v1'; memory: string; cpu: string | undefined }
  | { kind: 'v2'; root: string }
  | { kind: 'none'; why: string };

/** The parent, under the hoster's own cgroup, of every instance's cgroup. */
const PARENT = 'berth-apps';

/** The cgroup paths of this process from /proc/self/cgroup: controller (or '' for v2) → path. */
export function ownCgroups(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const controller of m[1]!.split(',')) out.set(controller, m[2]!);
  }
  return out;
}

/**
 * Finds the cgroup hierarchy this hoster can make instance cgroups in: cgroup v1's memory (and
 * cpu) controllers, or cgroup v2 with the memory controller enabled for its children. Apps'
 * cgroups go under the hoster's own, so a systemd unit's limits still hold over all of them.
 */
export function detectCgroups(fsRoot = '/sys/fs/cgroup', self = '/proc/self/cgroup'): CgroupSupport {
  if (process.getuid?.() !== 0) return { kind: 'none', why: 'the hoster is not root' };
  let own: Map<string, string>;
  try {
    own = ownCgroups(readFileSync(self, 'utf8'));
  } catch (err) {
    return { kind: 'none', why: `cannot read ${self}: ${(err as Error).message}` };
  }
  if (existsSync(join(fsRoot, 'memory', 'cgroup.procs')) && own.has('memory')) {
    const cpu = existsSync(join(fsRoot, 'cpu', 'cgroup.procs')) && own.has('cpu') ? join(fsRoot, 'cpu', own.get('cpu')!, PARENT) : undefined;
    return { kind: 'v1', memory: join(fsRoot, 'memory', own.get('memory')!, PARENT), cpu };
  }
  const controllers = (() => {
    try {
      return readFileSync(join(fsRoot, 'cgroup.controllers'), 'utf8').split(/\s+/);
    } catch {
      return [];
    }
  })();
  if (controllers.includes('memory') && own.has('')) {
    // v2 allows no process in a cgroup whose controllers are handed down, so the hoster (and any
    // shim it re-adopts) moves into a leaf of its own cgroup (a systemd unit with Delegate=yes),
    // and the apps go into `berth-apps/<instance>` beside it.
    const parent = join(fsRoot, own.get('')!);
    const wanted = `+memory${controllers.includes('cpu') ? ' +cpu' : ''}`;
    try {
      const self = join(parent, 'berth-hoster');
      mkdirSync(self, { recursive: true });
      for (const pid of readFileSync(join(parent, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) writeFileSync(join(self, 'cgroup.procs'), pid);
      writeFileSync(join(parent, 'cgroup.subtree_control'), wanted);
      mkdirSync(join(parent, PARENT), { recursive: true });
      writeFileSync(join(parent, PARENT, 'cgroup.subtree_control'), wanted);
    } catch (err) {
      return { kind: 'none', why: `cannot hand the memory controller down from ${parent} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; under systemd give the hoster's unit Delegate=yes)` };
    }
    return { kind: 'v2', root: join(parent, PARENT) };
  }
  return { kind: 'none', why: `no memory controller at ${fsRoot} (cgroup v1 memory, or v2 with memory in cgroup.controllers)` };
}

/** v1's cpu.shares for a v2-style weight (100 ↔ 1024, the defaults of each). */
export function cpuShares(weight: number): number {
  return Math.max(2, Math.round((weight * 1024) / 100));
}

/** The `oom_kill` count of a v1 memory.oom_control or a v2 memory.events text. */
export function oomKills(text: string): number {
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** One instance's cgroup(s): made with its limits, joined by its app, read for OOM kills, removed. */
export interface InstanceCgroup {
  /** Directories whose cgroup.procs the app's pid goes into. */
  dirs: string[];
  /** The file whose oom_kill line counts the kernel's kills in this cgroup. */
  oomFile: string;
  memoryMb: number | undefined;
  remove(): void;
}

/** Makes the cgroup of one instance with its limits; throws with what to do when it cannot. */
export function makeInstanceCgroup(support: CgroupSupport, name: string, limits: CgroupLimits): InstanceCgroup {
  if (support.kind === 'none') throw new Error(`memory and CPU limits need cgroups: ${support.why}`);
  const dirs: string[] = [];
  const write = (dir: string, file: string, value: string) => writeFileSync(join(dir, file), value);
  if (support.kind === 'v1') {
    const memory = join(support.memory, name);
    mkdirSync(memory, { recursive: true });
    dirs.push(memory);
    if (limits.memoryMb !== undefined) {
      const bytes = String(limits.memoryMb * 1024 * 1024);
      write(memory, 'memory.limit_in_bytes', bytes);
      // Swap counts too, or an app over its limit pages out instead of being stopped.
      if (existsSync(join(memory, 'memory.memsw.limit_in_bytes'))) write(memory, 'memory.memsw.limit_in_bytes', bytes);
    }
    if (limits.cpuWeight !== undefined && support.cpu !== undefined) {
      const cpu = join(support.cpu, name);
      mkdirSync(cpu, { recursive: true });
      write(cpu, 'cpu.shares', String(cpuShares(limits.cpuWeight)));
      dirs.push(cpu);
    }
    return { dirs, oomFile: join(memory, 'memory.oom_control'), memoryMb: limits.memoryMb, remove: () => removeDirs(dirs) };
  }
  const dir = join(support.root, name);
  mkdirSync(dir, { recursive: true });
  dirs.push(dir);
  if (limits.memoryMb !== undefined) {
    write(dir, 'memory.max', String(limits.memoryMb * 1024 * 1024));
    if (existsSync(join(dir, 'memory.swap.max'))) write(dir, 'memory.swap.max', '0');
  }
  if (limits.cpuWeight !== undefined && existsSync(join(dir, 'cpu.weight'))) write(dir, 'cpu.weight', String(limits.cpuWeight));
  return { dirs, oomFile: join(dir, 'memory.events'), memoryMb: limits.memoryMb, remove: () => removeDirs(dirs) };
}

function removeDirs(dirs: string[]): void {
  // A cgroup goes once its last process has: an app still exiting leaves it for the next try.
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch {
      // busy or gone
    }
  }
}

/** The limits an app's attributes ask for (`maxMemoryMb`, `cpuWeight`), or undefined for none. */
export function cgroupLimitsOf(attributes: Record<string, unknown>): CgroupLimits | undefined {
  const limits: CgroupLimits = {};
  const memory = Number(attributes.maxMemoryMb);
  if (Number.isInteger(memory) && memory > 0) limits.memoryMb = memory;
  const weight = Number(attributes.cpuWeight);
  if (Number.isInteger(weight) && weight >= 1 && weight <= 10_000) limits.cpuWeight = weight;
  return Object.keys(limits).length === 0 ? undefined : limits;
}
