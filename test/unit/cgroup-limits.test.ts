import { describe, expect, it } from 'vitest';
import { cgroupLimitsOf, cpuShares, oomKills, ownCgroups } from '../../hoster/cgroup-limits.js';
import { cpuWeight, memorySize } from '../../cli/flag-values.js';

describe('cgroup limits', () => {
  it("reads this process's cgroups, v1 controllers and v2 alike", () => {
    const own = ownCgroups('12:cpu,cpuacct:/system.slice/berth-hoster.service\n4:memory:/process_api/0daf\n0::/system.slice/berth-hoster.service\n');
    expect(own.get('memory')).toBe('/process_api/0daf');
    expect(own.get('cpu')).toBe('/system.slice/berth-hoster.service');
    expect(own.get('cpuacct')).toBe('/system.slice/berth-hoster.service');
    expect(own.get('')).toBe('/system.slice/berth-hoster.service');
  });

  it('counts OOM kills from v1 memory.oom_control and v2 memory.events', () => {
    expect(oomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n')).toBe(3);
    expect(oomKills('low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n')).toBe(2);
    expect(oomKills('oom_kill_disable 0\nunder_oom 0\n')).toBe(0);
  });

  it('maps a v2 CPU weight to v1 shares (100 is 1024, the defaults of each)', () => {
    expect(cpuShares(100)).toBe(1024);
    expect(cpuShares(50)).toBe(512);
    expect(cpuShares(1)).toBe(10);
    expect(cpuShares(10_000)).toBe(102_400);
  });

  it('takes the limits from the attributes, and nothing from attributes that are not limits', () => {
    expect(cgroupLimitsOf({ maxMemoryMb: 512, cpuWeight: 50, zone: 'a' })).toEqual({ memoryMb: 512, cpuWeight: 50 });
    expect(cgroupLimitsOf({ maxMemoryMb: 256 })).toEqual({ memoryMb: 256 });
    expect(cgroupLimitsOf({ zone: 'a', minMemoryMb: 256 })).toBeUndefined();
    expect(cgroupLimitsOf({ maxMemoryMb: -1, cpuWeight: 0 })).toBeUndefined();
  });

  it('reads --memory and --cpu-weight as a person writes them', () => {
    expect(memorySize('512M')).toBe(512);
    expect(memorySize('512')).toBe(512);
    expect(memorySize('1G')).toBe(1024);
    expect(memorySize('1.5g')).toBe(1536);
    expect(memorySize('256MB')).toBe(256);
    for (const bad of ['', 'lots', '8M', '-1G', '1T', '0.1M']) expect(() => memorySize(bad), bad).toThrow(/Expected a memory size/);
    expect(cpuWeight('50')).toBe(50);
    for (const bad of ['0', '10001', '1.5', 'x']) expect(() => cpuWeight(bad), bad).toThrow(/Expected a CPU weight/);
  });
});
