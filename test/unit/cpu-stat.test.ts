// /proc/<pid>/stat lines parse right even when the command name holds spaces and parentheses, and a process tree gathers every descendant once.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CpuSampler, parseStat, processTable, processTree, type ProcStat } from '../../proxy/cpu-sampler.js';

/** A stat line as the kernel writes it: fields 3.. after the comm, utime and stime at 14 and 15, starttime at 22. */
function statLine(pid: number, comm: string, ppid: number, utime = 0, stime = 0, state = 'S'): string {
  const after = [state, ppid, pid, pid, 0, -1, 4194304, 10, 0, 0, 0, utime, stime, 0, 0, 20, 0, 1, 0, 5000 + pid, 1024, 100];
  return `${pid} (${comm}) ${after.join(' ')}`;
}

describe('parseStat', () => {
  it('splits at the last ")" so a comm like "(a) (b)" keeps its spaces and parentheses', () => {
    expect(parseStat(statLine(123, '(a) (b)', 45, 700, 80, 'R'))).toEqual({ pid: 123, comm: '(a) (b)', state: 'R', ppid: 45, utime: 700, stime: 80, starttime: 5123 });
  });

  it('keeps a comm that is only a closing parenthesis and a space', () => {
    expect(parseStat(statLine(7, ') ', 1, 3, 4))).toMatchObject({ pid: 7, comm: ') ', ppid: 1, utime: 3, stime: 4 });
  });

  it("reads this process's own stat line", () => {
    const stat = parseStat(readFileSync('/proc/self/stat', 'utf8').trimEnd());
    expect(stat).toMatchObject({ pid: process.pid, ppid: process.ppid, comm: expect.any(String) });
    expect(stat!.utime + stat!.stime).toBeGreaterThan(0);
  });

  it('returns null for what is not a stat line', () => {
    expect(parseStat('')).toBeNull();
    expect(parseStat('123 no-parentheses S 1 2 3')).toBeNull();
    expect(parseStat('123 (short) S 1 2')).toBeNull();
    // utime (field 14) not a number
    expect(parseStat(statLine(5, 'x', 1).replace(/^(5 \(x\) (?:\S+ ){11})\S+/, '$1zz'))).toBeNull();
  });
});

describe('processTree', () => {
  const stats = (lines: string[]) => lines.map((l) => parseStat(l)!) as ProcStat[];

  it('gathers the root and all its descendants, and nothing else', () => {
    const table = processTable(stats([statLine(1, 'init', 0), statLine(10, 'sh', 1), statLine(11, 'node', 10), statLine(12, 'worker', 11), statLine(20, 'other', 1)]));
    expect(processTree(table, 10).map((p) => p.pid).sort((a, b) => a - b)).toEqual([10, 11, 12]);
    expect(processTree(table, 99)).toEqual([]);
  });

  it('stops at a loop that a non-atomic read of /proc could make', () => {
    const table = processTable(stats([statLine(10, 'a', 11), statLine(11, 'b', 10)]));
    expect(processTree(table, 10).map((p) => p.pid).sort()).toEqual([10, 11]);
  });
});

describe('CpuSampler options', () => {
  it('refuses a window shorter than its interval, naming the option', () => {
    expect(() => new CpuSampler({ targets: () => [], intervalMs: 1000, windowMs: 500 })).toThrow(/windowMs/);
    expect(() => new CpuSampler({ targets: () => [], cpus: 0 })).toThrow(/cpus/);
  });

  it('reads the clock tick rate from the system', () => {
    expect(new CpuSampler({ targets: () => [] }).clockTicks).toBeGreaterThan(0);
  });
});
