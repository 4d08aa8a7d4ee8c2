// CpuSampler, pointed at real processes, names a CPU burner as the culprit (counting a burner that runs as a grandchild under sh), sees an idle process near zero, and drops a burner once it is killed; sampling outlives a failing targets(); the GetLoad and GetCulprit bodies have their documented shape.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { CpuSampler, parseStat, processTable, processTree, type CpuTarget, type ProcStat } from '../../proxy/cpu-sampler.js';
import { culpritReport, loadReport } from '../../proxy/machine-report.js';
import { waitFor } from '../helpers/wait-for.js';

// Bounded in themselves too, so that not even a killed test runner leaves them spinning.
const BURN = 'const end = Date.now() + 30000; while (Date.now() < end) {}';
// The idle child's program (it exits by itself after half a minute should cleanup fail).
const IDLE_CHILD_LIFETIME_MS = 30_000;
const IDLE = `setTimeout(() => {}, ${IDLE_CHILD_LIFETIME_MS})`;

let groups: ChildProcess[] = [];
let sampler: CpuSampler | undefined;

/** A child in its own process group, so that killing the group takes its descendants too. */
function spawnGroup(file: string, args: string[]): ChildProcess & { pid: number } {
  const child = spawn(file, args, { stdio: 'ignore', detached: true });
  groups.push(child);
  if (child.pid === undefined) throw new Error(`could not spawn ${file}`);
  return child as ChildProcess & { pid: number };
}

function readStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^[0-9]+$/.test(n))) {
    try {
      const stat = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8').trimEnd());
      if (stat) out.push(stat);
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** The live (not zombie) processes of `pid`'s tree. */
function liveTree(pid: number): ProcStat[] {
  return processTree(processTable(readStats()), pid).filter((p) => p.state !== 'Z' && p.state !== 'X');
}

/** SIGKILLs the child's whole group and waits until none of its processes runs any more. */
async function killGroup(child: ChildProcess & { pid: number }): Promise<void> {
  const members = liveTree(child.pid);
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group is already gone
  }
  await waitFor(
    () => {
      const now = new Map(readStats().map((p) => [p.pid, p]));
      return members.every((m) => {
        const p = now.get(m.pid);
        return !p || p.starttime !== m.starttime || p.state === 'Z' || p.state === 'X';
      });
    },
    { deadlineMs: 5000, what: `process group ${child.pid} to exit` },
  );
}

afterEach(async () => {
  await sampler?.close();
  sampler = undefined;
  for (const child of groups) await killGroup(child as ChildProcess & { pid: number });
  groups = [];
});

/**
 * What a burner must be seen using, in cores: well above an idle process's ~0, yet reachable
 * when the test machine is many times oversubscribed (a burner then gets a fraction of a core).
 */
const BUSY_CORES = 0.1;

describe('CpuSampler on real processes', () => {
  it('names the burner as culprit, sees the idle one near zero, and drops the burner once killed', async () => {
    const burner = spawnGroup(process.execPath, ['-e', BURN]);
    const idle = spawnGroup(process.execPath, ['-e', IDLE]);
    const targets: CpuTarget[] = [
      { service: 'hot', instance: 'burner', pid: burner.pid },
      { service: 'calm', instance: 'idle', pid: idle.pid },
    ];
    sampler = new CpuSampler({ targets: () => targets, intervalMs: 200, windowMs: 2000 }).start();
    const s = sampler;

    const culprit = await waitFor(
      () => {
        const top = s.culprit();
        const calm = s.shares().find((x) => x.instance === 'idle');
        // Past its start-up, the idle process uses next to nothing.
        if (top?.instance === 'burner' && top.cpuCores > BUSY_CORES && calm !== undefined && calm.cpuCores < 0.05) return top;
        throw new Error(`shares: ${JSON.stringify(s.shares())}`);
      },
      { deadlineMs: 10_000, what: 'the burner as culprit and the idle one near 0' },
    );
    expect(culprit).toMatchObject({ service: 'hot', instance: 'burner', pid: burner.pid });
    // One busy core is 1/cpus of the machine.
    expect(culprit.cpuShare).toBeGreaterThan(BUSY_CORES / s.cpus);
    expect(culprit.cpuShare).toBeCloseTo(culprit.cpuCores / s.cpus, 9);
    expect(s.shares().map((x) => x.instance)).toEqual(['burner', 'idle']);

    const report = culpritReport(s, 'machine-a');
    expect(report).toEqual({
      machine: 'machine-a',
      culprit: { app: 'hot', instance: 'burner', pid: burner.pid, cpuShare: expect.any(Number), cpuCores: expect.any(Number) },
      instances: [
        { app: 'hot', instance: 'burner', cpuShare: expect.any(Number), cpuCores: expect.any(Number) },
        { app: 'calm', instance: 'idle', cpuShare: expect.any(Number), cpuCores: expect.any(Number) },
      ],
      windowMs: 2000,
    });
    expect(report.culprit!.cpuCores).toBeGreaterThan(BUSY_CORES);

    // The route table still lists it: the sampler must notice by itself that the pid is gone.
    await killGroup(burner);
    await waitFor(() => !s.shares().some((x) => x.instance === 'burner'), { deadlineMs: 10_000, what: 'the killed burner to be dropped' });
    expect(s.culprit()?.instance).not.toBe('burner');
    expect(s.shares().map((x) => x.instance)).toEqual(['idle']);
  });

  it("counts the whole process tree: a burner that is sh's child makes sh's instance the culprit", async () => {
    // "; true" keeps sh from exec-ing node in its place: node stays a child of sh.
    const shell = spawnGroup('/bin/sh', ['-c', `"${process.execPath}" -e '${BURN}' ; true`]);
    const idle = spawnGroup(process.execPath, ['-e', IDLE]);
    await waitFor(() => liveTree(shell.pid).length === 2, { deadlineMs: 5000, what: 'sh to start its node child' });
    sampler = new CpuSampler({
      targets: () => [
        { service: 'tree', instance: 'shell', pid: shell.pid },
        { service: 'calm', instance: 'idle', pid: idle.pid },
      ],
      intervalMs: 200,
      windowMs: 2000,
    }).start();
    const s = sampler;

    // sh itself uses next to no CPU: only the grandchild's time can make this pass.
    const culprit = await waitFor(
      () => {
        const top = s.culprit();
        if (top?.instance === 'shell' && top.cpuCores > BUSY_CORES) return top;
        throw new Error(`shares: ${JSON.stringify(s.shares())}`);
      },
      { deadlineMs: 10_000, what: "sh's tree as culprit" },
    );
    expect(culprit).toMatchObject({ service: 'tree', pid: shell.pid });
    expect(culprit.cpuShare).toBeGreaterThan(BUSY_CORES / s.cpus);
  });
  it('survives a targets() that throws: reports each failure and goes on sampling', async () => {
    const idle = spawnGroup(process.execPath, ['-e', IDLE]);
    let calls = 0;
    const failures: unknown[] = [];
    sampler = new CpuSampler({
      targets: () => {
        if (++calls <= 2) throw new Error('route table not loaded');
        return [{ service: 'calm', instance: 'idle', pid: idle.pid }];
      },
      intervalMs: 50,
      windowMs: 500,
    });
    const s = sampler;
    // A throwing listener must not escape the timer either.
    s.on('sampleFailed', (err) => {
      failures.push(err);
      throw new Error('listener failed');
    });
    s.start();
    await waitFor(() => s.shares().some((x) => x.instance === 'idle'), { deadlineMs: 5000, what: 'sampling to resume' });
    expect(failures.map((e) => (e as Error).message)).toEqual(['route table not loaded', 'route table not loaded']);
  });
});

describe('loadReport', () => {
  it('gives the 5-minute load per CPU, rounded, and whether the machine is at capacity', () => {
    expect(loadReport({ load1: 3.2, load5: 2.46789, load15: 1.1, cpus: 2, perCpu: 2.46789 / 2 })).toEqual({
      load: 1.234,
      load1: 3.2,
      load5: 2.468,
      load15: 1.1,
      cpus: 2,
      atCapacity: true,
    });
    expect(loadReport({ load1: 0.5, load5: 0.4, load15: 0.3, cpus: 4, perCpu: 0.1 })).toMatchObject({ load: 0.1, atCapacity: false });
    // Judged on the number shown: 0.9996 shows as 1 and so is at capacity.
    expect(loadReport({ load1: 0, load5: 3.9984, load15: 0, cpus: 4, perCpu: 0.9996 })).toMatchObject({ load: 1, atCapacity: true });
  });
});
