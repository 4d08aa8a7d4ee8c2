import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { BerthError } from '../common/errors.js';

export const DEFAULT_SAMPLE_INTERVAL_MS = 1000;
export const DEFAULT_CPU_WINDOW_MS = 10_000;
/** What Linux uses on every common architecture when `getconf CLK_TCK` cannot be asked. */
export const DEFAULT_CLOCK_TICKS = 100;

/** One instance running on this machine, as the route table knows it. */
export interface CpuTarget {
  service: string;
  instance: string;
  /** The instance's process; it may be a shell whose child is the app. */
  pid: number;
}

/** An instance's CPU use over the sampler's window. */
export interface CpuShare extends CpuTarget {
  /** CPU seconds per wall second over all CPUs: 1.0 is the whole machine. */
  cpuShare: number;
  /** CPU seconds per wall second: 1.0 is one core kept busy. */
  cpuCores: number;
}

export interface CpuSamplerOptions {
  /** The instances running on this machine; asked once per sample. */
  targets: () => CpuTarget[];
  /** @default DEFAULT_SAMPLE_INTERVAL_MS */
  intervalMs?: number;
  /** How far back shares look. @default DEFAULT_CPU_WINDOW_MS */
  windowMs?: number;
  /** @default os.cpus().length */
  cpus?: number;
  /** Clock ticks per second of /proc/<pid>/stat times. @default `getconf CLK_TCK`, else DEFAULT_CLOCK_TICKS */
  clockTicks?: number;
}

/** The fields of /proc/<pid>/stat that the sampler uses. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** User and system CPU time, in clock ticks. */
  utime: number;
  stime: number;
  /** Clock ticks after boot when it started: tells a reused pid from the process it replaced. */
  starttime: number;
}

/**
 * Parses one /proc/<pid>/stat line, or returns null when it is not one. The command name
 * sits in parentheses and may itself hold spaces and parentheses, so the fields after it
 * start at the last ')'.
 */
export function parseStat(line: string): ProcStat | null {
  const open = line.indexOf(' (');
  const close = line.lastIndexOf(')');
  if (open < 1 || close < open) return null;
  const pid = Number(line.slice(0, open));
  // After ')': state is field 3 of proc(5), so field n is rest[n - 3].
  const rest = line.slice(close + 2).split(' ');
  const state = rest[0];
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const starttime = Number(rest[19]);
  if (!state || ![pid, ppid, utime, stime, starttime].every(Number.isSafeInteger)) return null;
  return { pid, comm: line.slice(open + 2, close), state, ppid, utime, stime, starttime };
}

/** Processes by pid and the children of each, from one pass over /proc. */
export interface ProcessTable {
  byPid: Map<number, ProcStat>;
  children: Map<number, number[]>;
}

export function processTable(stats: Iterable<ProcStat>): ProcessTable {
  const byPid = new Map<number, ProcStat>();
  const children = new Map<number, number[]>();
  for (const stat of stats) {
    byPid.set(stat.pid, stat);
    const siblings = children.get(stat.ppid);
    if (siblings) siblings.push(stat.pid);
    else children.set(stat.ppid, [stat.pid]);
  }
  return { byPid, children };
}

/** `root` and all its descendants that the table holds (none when root is not in it). */
export function processTree(table: ProcessTable, root: number): ProcStat[] {
  const out: ProcStat[] = [];
  // /proc is read file by file, not atomically: a reused pid could close a loop.
  const seen = new Set<number>();
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    const stat = table.byPid.get(pid);
    if (!stat || seen.has(pid)) continue;
    seen.add(pid);
    out.push(stat);
    for (const child of table.children.get(pid) ?? []) queue.push(child);
  }
  return out;
}

let systemClockTicks: number | undefined;

/** Asked once per process: the rate never changes while the kernel runs. */
function clockTicksPerSecond(): number {
  if (systemClockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      systemClockTicks = Number.isInteger(n) && n > 0 ? n : DEFAULT_CLOCK_TICKS;
    } catch {
      systemClockTicks = DEFAULT_CLOCK_TICKS;
    }
  }
  return systemClockTicks;
}

interface Tracked extends CpuTarget {
  /** Start time of the instance's own process: a change means a new process under that pid. */
  rootStart: number;
  /** CPU ticks of each process of the tree at the last sample, with its start time. */
  last: Map<number, { start: number; ticks: number }>;
  /** Ticks used by the tree since tracking began. */
  total: number;
  /** (time, total) at each sample inside the window, oldest first. */
  samples: Array<{ at: number; total: number }>;
}

/**
 * Measures the CPU each instance on this machine uses, counting its whole process tree, over
 * a sliding window; GetCulprit reads it. Emits `sampleFailed` (error) when a whole sample
 * fails; a process that vanishes mid-sample is simply dropped.
 */
export class CpuSampler extends EventEmitter {
  readonly intervalMs: number;
  readonly windowMs: number;
  readonly cpus: number;
  readonly clockTicks: number;
  private readonly targets: () => CpuTarget[];
  private readonly tracked = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private started = false;
  private closed = false;

  constructor(options: CpuSamplerOptions) {
    super();
    this.targets = options.targets;
    this.intervalMs = options.intervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
    this.windowMs = options.windowMs ?? DEFAULT_CPU_WINDOW_MS;
    this.cpus = options.cpus ?? Math.max(1, cpus().length);
    this.clockTicks = options.clockTicks ?? clockTicksPerSecond();
    const bad: string[] = [];
    if (typeof this.targets !== 'function') bad.push('targets must be a function');
    if (!Number.isInteger(this.intervalMs) || this.intervalMs < 10) bad.push(`intervalMs must be an integer of at least 10 (got ${this.intervalMs})`);
    if (!Number.isInteger(this.windowMs) || this.windowMs < this.intervalMs) bad.push(`windowMs must be an integer of at least intervalMs (got ${this.windowMs})`);
    if (!Number.isInteger(this.cpus) || this.cpus < 1) bad.push(`cpus must be a positive integer (got ${this.cpus})`);
    if (!Number.isInteger(this.clockTicks) || this.clockTicks < 1) bad.push(`clockTicks must be a positive integer (got ${this.clockTicks})`);
    if (bad.length > 0) throw new BerthError('invalid_config', `CpuSampler: ${bad.join('; ')}.`);
  }

  /** Takes a first sample at once, then one every intervalMs until close(). */
  start(): this {
    if (this.started || this.closed) return this;
    this.started = true;
    this.tick();
    return this;
  }

  /** Stops sampling; resolves once a sample under way has finished. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  /** The instance using the most CPU over the window, or null while none has used any. */
  culprit(): CpuShare | null {
    const top = this.shares()[0];
    return top && top.cpuShare > 0 ? top : null;
  }

  /** Every instance measured over at least two samples, the busiest first. */
  shares(): CpuShare[] {
    const out: CpuShare[] = [];
    for (const t of this.tracked.values()) {
      const first = t.samples[0];
      const last = t.samples[t.samples.length - 1];
      if (!first || !last || last.at <= first.at) continue;
      const cpuCores = (last.total - first.total) / this.clockTicks / ((last.at - first.at) / 1000);
      out.push({ service: t.service, instance: t.instance, pid: t.pid, cpuShare: cpuCores / this.cpus, cpuCores });
    }
    return out.sort((a, b) => b.cpuShare - a.cpuShare);
  }

  private tick = (): void => {
    this.timer = undefined;
    this.inFlight = this.sample()
      .catch((err: unknown) => {
        // A listener that throws must not turn into an unhandled rejection on the timer.
        try {
          this.emit('sampleFailed', err);
        } catch {
          /* ignored: nothing above the timer could handle it */
        }
      })
      .finally(() => {
        this.inFlight = undefined;
        if (this.closed) return;
        this.timer = setTimeout(this.tick, this.intervalMs);
        // Sampling alone is no reason to keep the process alive.
        this.timer.unref();
      });
  };

  private async sample(): Promise<void> {
    const targets = this.targets();
    const table = processTable(await readProcesses());
    const now = performance.now();
    const current = new Set<string>();
    for (const target of targets) {
      current.add(target.instance);
      const root = table.byPid.get(target.pid);
      // Gone, or exited and not yet reaped: nothing left to measure.
      if (!root || root.state === 'Z' || root.state === 'X') {
        this.tracked.delete(target.instance);
        continue;
      }
      const tree = processTree(table, target.pid);
      let t = this.tracked.get(target.instance);
      if (t && (t.pid !== target.pid || t.rootStart !== root.starttime)) t = undefined;
      if (!t) {
        t = { ...target, rootStart: root.starttime, last: new Map(), total: 0, samples: [] };
        for (const p of tree) t.last.set(p.pid, { start: p.starttime, ticks: p.utime + p.stime });
        t.samples.push({ at: now, total: 0 });
        this.tracked.set(target.instance, t);
        continue;
      }
      // Per process rather than the tree's sum: a child that exits takes its ticks with it,
      // which must not read as negative use; a child born since the last sample used all of
      // its ticks inside the interval.
      const next = new Map<number, { start: number; ticks: number }>();
      let used = 0;
      for (const p of tree) {
        const ticks = p.utime + p.stime;
        const before = t.last.get(p.pid);
        used += before && before.start === p.starttime ? Math.max(0, ticks - before.ticks) : ticks;
        next.set(p.pid, { start: p.starttime, ticks });
      }
      t.last = next;
      t.total += used;
      t.samples.push({ at: now, total: t.total });
      while (t.samples.length > 2 && t.samples[0]!.at < now - this.windowMs) t.samples.shift();
    }
    for (const instance of this.tracked.keys()) if (!current.has(instance)) this.tracked.delete(instance);
  }
}

/** Every process's stat; ones that exit while being read are skipped. */
async function readProcesses(): Promise<ProcStat[]> {
  const pids = (await readdir('/proc')).filter((name) => /^[0-9]+$/.test(name));
  const stats = await Promise.all(
    pids.map((pid) =>
      readFile(`/proc/${pid}/stat`, 'utf8').then(
        (line) => parseStat(line.trimEnd()),
        () => null,
      ),
    ),
  );
  return stats.filter((s): s is ProcStat => s !== null);
}
