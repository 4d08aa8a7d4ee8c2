// The drills' checker and the hoster's file load source, on fixed inputs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileLoad } from '../../common/load-source.js';
import { violations, type Run } from '../cluster/observer.js';

const run = (instance: string, machine: string, pid: number, epoch: number, first: number, last: number): Run => ({ instance, machine, pid, epoch, first, last, version: 'v1', reports: 1 });

describe('the drills’ checker', () => {
  it('accepts copies one after the other, under announced claims', () => {
    const runs = [run('a', 'm1', 10, 1, 0, 1000), run('a', 'm2', 20, 2, 1500, 3000), run('b', 'm1', 11, 3, 0, 3000)];
    expect(violations(runs, new Set(['a/m1/1', 'a/m2/2', 'b/m1/3']))).toEqual([]);
  });

  it('reports two copies of one instance that overlap beyond the skew', () => {
    const runs = [run('a', 'm1', 10, 1, 0, 1000), run('a', 'm2', 20, 2, 900, 3000)];
    expect(violations(runs, undefined, 20)).toEqual(['a ran twice for 100 ms: m1 pid 10 epoch 1 and m2 pid 20 epoch 2']);
    expect(violations(runs, undefined, 150)).toEqual([]);
  });

  it('reports a copy whose claim the event stream never announced', () => {
    expect(violations([run('a', 'm1', 10, 7, 0, 10)], new Set(['a/m1/6']))).toEqual(['a ran on m1 under epoch 7, a claim the event stream never announced']);
  });
});

describe('fileLoad', () => {
  it('reads /proc/loadavg form, per CPU from the 5-minute figure, and counts an unreadable file as no load', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-load-'));
    try {
      const file = join(dir, 'load');
      writeFileSync(file, '1.50 3.00 0.50 1/100 1\n');
      const reasons: string[] = [];
      const load = fileLoad(file, (r) => reasons.push(r));
      expect(load()).toEqual({ load1: 1.5, load5: 3, load15: 0.5, cpus: cpus().length, perCpu: 3 / cpus().length });
      writeFileSync(file, '0 0 0');
      expect(load().perCpu).toBe(0);
      rmSync(file);
      expect(load().perCpu).toBe(0);
      expect(reasons).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
