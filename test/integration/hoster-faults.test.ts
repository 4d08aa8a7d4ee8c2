// Hosters as real processes under faults: two share the work with each instance running once; a SIGKILLed hoster's apps die before their leases could be re-granted and run elsewhere; Redis outages shorter than the fencing margin change nothing, longer ones stop the apps first; SIGTERM evacuates make-before-break; a restarted hoster re-adopts.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BerthClient } from '../../sdk/berth-client.js';
import { appProcesses } from '../helpers/app-processes.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { instancePortRange } from '../helpers/port-range.js';
import { helloApp, traversableTempDir, uploadApp } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const LEASE_MS = 3000;
const READOPT_LEASE_MS = 10_000;
let redis: TestRedis;
let registry: RegistryFixture;
let client: BerthClient;
let tag: string;
let daemons: { proc: DaemonProcess; dir: string }[] = [];

function hosterProcess(machine: string, dataDir = traversableTempDir(`berth-${machine}-`), leaseMs = LEASE_MS, env: Record<string, string> = {}): DaemonProcess {
  // Machines share this host: give each its own ports, as separate machines would have.
  const ports = instancePortRange();
  const proc = startDaemon(['hoster', '--machine', machine, '--data-dir', dataDir], {
    REDIS_URL: redis.url,
    BERTH_KEY_PREFIX: registry.prefix,
    BERTH_LEASE_MS: String(leaseMs),
    BERTH_MAX_LOAD_PER_CPU: '1000',
    BERTH_HEALTH_INTERVAL_MS: '300',
    BERTH_STOP_GRACE_MS: '1000',
    BERTH_SPREAD_DELAY_MS: '20',
    BERTH_HEARTBEAT_MS: '1000',
    BERTH_EVACUATE_TIMEOUT_MS: '45000',
    BERTH_CLAIMS_PER_ROUND: '8',
    BERTH_CAPACITY: '40',
    BERTH_PORT_RANGE: ports,
    ...env,
  });
  daemons.push({ proc, dir: dataDir });
  return proc;
}

/** Instances of this test's apps that run as processes right now. */
function live(): Map<string, number[]> {
  return appProcesses(tag);
}

/** Samples the processes until stopped; fails the test if any instance ever ran twice. */
function watchForDoubles(): { stop: () => Promise<number> } {
  let on = true;
  let samples = 0;
  const doubles: string[] = [];
  const loop = (async () => {
    while (on) {
      for (const [id, pids] of live()) if (pids.length > 1) doubles.push(`${id}: ${pids.join(',')}`);
      samples++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      expect(doubles, 'an instance ran twice at once').toEqual([]);
      return samples;
    },
  };
}

async function byMachine(app: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const i of await client.listAppInstances(app)) {
    if (i.state !== 'running' || i.machine === null) continue;
    out.set(i.machine, [...(out.get(i.machine) ?? []), i.id]);
  }
  return out;
}

beforeAll(async () => {
  redis = await startRedis({ appendonly: true });
  registry = await startTestRegistry(redis, { reconcileIntervalMs: 50, drainMs: 300, leaseMs: LEASE_MS, reapIntervalMs: 200 });
  client = registry.client;
});

afterEach(async () => {
  await redis.start();
  await waitFor(async () => (await client.health().catch(() => undefined))?.status === 'ok', { deadlineMs: 20_000, what: 'registry back' });
  for (const { proc } of daemons) proc.kill('SIGKILL');
  await Promise.all(daemons.map((d) => d.proc.exited));
  // Shims of killed hosters stop their apps by their lease deadline: wait for that.
  await waitFor(() => live().size === 0, { deadlineMs: 15_000, what: 'no app process left' });
  for (const { dir } of daemons) rmSync(dir, { recursive: true, force: true });
  daemons = [];
  for (const app of await client.listApps()) await client.deleteApp(app.name).catch(() => undefined);
});

afterAll(async () => {
  await registry.close();
  await redis.stop();
});

async function publish(name: string, instances: number): Promise<void> {
  tag = `t${randomBytes(4).toString('hex')}`;
  const bundle = await uploadApp(client, helloApp());
  await client.publishApp({ name, path: `/${name}`, instances, bundle, env: { TEST_TAG: tag } });
}

describe('hosters under faults', () => {
  it('two hosters run 20 instances once each; after one is SIGKILLed its apps stop and run on the other', async () => {
    const a = hosterProcess('m1');
    hosterProcess('m2');
    await publish('many', 20);
    const watch = watchForDoubles();
    await waitFor(async () => (await client.listAppInstances('many')).filter((i) => i.state === 'running').length === 20, {
      deadlineMs: 40_000,
      what: '20 running',
    });
    const placed = await byMachine('many');
    expect([...placed.keys()].sort()).toEqual(['m1', 'm2']);
    const onM1 = placed.get('m1')!;

    const killedAt = Date.now();
    a.kill('SIGKILL');
    await a.exited;
    await waitFor(async () => {
      const instances = await client.listAppInstances('many');
      return instances.length === 20 && instances.every((i) => i.state === 'running' && i.machine === 'm2');
    }, { deadlineMs: LEASE_MS + 25_000, what: 'every instance running on m2' }).catch(async (e) => {
      process.stderr.write('STATES ' + JSON.stringify((await client.listAppInstances('many')).map((i) => [i.state, i.machine, i.reason, i.failedOn])) + '\n');
      process.stderr.write('M2 ' + daemons[1]!.proc.output().split('\n').slice(-40).join('\n') + '\n');
      throw e;
    });
    const moved = Date.now() - killedAt;
    expect(moved).toBeLessThan(LEASE_MS + 20_000);
    for (const id of onM1) expect((await client.getInstance('many', id)).machine).toBe('m2');
    expect(await watch.stop()).toBeGreaterThan(10);
  });
});

describe('hosters and Redis outages', () => {
  it('a Redis outage shorter than the fencing margin changes nothing: same processes, same claims', async () => {
    // A longer lease than the other drills: the margin must hold on a loaded 2-core machine.
    const leaseMs = 4 * LEASE_MS;
    hosterProcess('m1', undefined, leaseMs);
    await publish('steady', 2);
    const before = await waitFor(async () => {
      const r = (await client.listAppInstances('steady')).filter((i) => i.state === 'running');
      return r.length === 2 ? r : undefined;
    }, { deadlineMs: 20_000, what: '2 running' });
    const pidsBefore = new Map(live());
    expect(pidsBefore.size).toBe(2);

    await redis.kill();
    // Well inside the margin: a renewal may be late by about half a lease.
    await new Promise((r) => setTimeout(r, leaseMs / 8));
    await redis.start();
    await waitFor(async () => (await client.health().catch(() => undefined))?.status === 'ok', { deadlineMs: 20_000, what: 'registry back' });
    // Past the lease: had anything been lost, it would show now.
    await new Promise((r) => setTimeout(r, leaseMs + 500));
    const after = await client.listAppInstances('steady');
    expect(after.map((i) => [i.id, i.epoch, i.state]).sort()).toEqual(before.map((i) => [i.id, i.epoch, 'running']).sort());
    expect(live()).toEqual(pidsBefore);
  });

  it('with the control-plane grace off, a Redis outage longer than the lease: the hoster stops its apps before their leases end', async () => {
    // (The lease here is also too short for a grace: see control-plane-outage.test.ts for one.)
    const h = hosterProcess('m1', undefined, LEASE_MS, { BERTH_CONTROL_PLANE_GRACE_MS: '0' });
    await publish('cutoff', 2);
    await waitFor(async () => (await client.listAppInstances('cutoff')).filter((i) => i.state === 'running').length === 2, { deadlineMs: 20_000, what: '2 running' });
    expect(live().size).toBe(2);
    await redis.kill();
    const cut = Date.now();
    // The leases end LEASE_MS after the last renewal at the latest: the apps must be gone by then.
    await waitFor(() => live().size === 0, { deadlineMs: LEASE_MS + 2000, what: 'apps stopped by their hoster' });
    expect(Date.now() - cut).toBeLessThan(LEASE_MS);
    // The hoster (self-fencing) or the instance's shim (lease deadline), whichever came first, said
    // why. The shim tells the hoster once the app has exited: its line can follow the exit by a moment.
    const why = /stopping it before it can be claimed elsewhere|stopped the app because the lease was not renewed in time/;
    await waitFor(() => why.test(h.output()), { deadlineMs: 2000, what: 'the hoster saying why the apps stopped' }).catch(() => undefined);
    expect(h.output()).toMatch(why);
    await redis.start();
    // Back: the instances are claimed and started again (once each).
    const watch = watchForDoubles();
    await waitFor(async () => (await client.listAppInstances('cutoff').catch(() => [])).filter((i) => i.state === 'running').length === 2, {
      deadlineMs: 30_000,
      what: '2 running again',
    });
    await watch.stop();
  });
});

describe('hoster shutdown', () => {
  it('SIGTERM evacuates: replacements run on the other machine before the old copies stop', async () => {
    const leaving = hosterProcess('m1');
    await publish('move', 2);
    await waitFor(async () => (await byMachine('move')).get('m1')?.length === 2, { deadlineMs: 20_000, what: '2 running on m1' });
    const old = new Map(live());
    const m2Started = Date.now();
    hosterProcess('m2');
    // Machines outlive tests in the registry: wait for this m2's own heartbeat.
    await waitFor(async () => (await client.listMachines()).some((m) => m.name === 'm2' && m.heartbeatAt >= m2Started), { deadlineMs: 15_000, what: 'm2 up' });

    // Sample: at every moment, at least 2 instances run (processes), counting both machines.
    let lowest = Infinity;
    let sampling = true;
    const trace: string[] = [];
    const sampler = (async () => {
      while (sampling) {
        const l = live();
        const desc = [...l.keys()].sort().join(',');
        if (trace.at(-1)?.split(' ')[1] !== desc) trace.push(`${Date.now()} ${desc}`);
        lowest = Math.min(lowest, l.size);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    leaving.kill('SIGTERM');
    expect(await leaving.exited).toBe(0);
    sampling = false;
    await sampler;
    if (lowest < 2) process.stderr.write('STATE ' + JSON.stringify({ leader: registry.daemon.reconciler.isLeader, apps: (await client.listApps()).map((a) => [a.name, a.state, a.status]), instances: (await client.listAppInstances('move')).map((i) => [i.id, i.state, i.machine, i.evacuating, i.release]) }) + '\n');
    if (lowest < 2) process.stderr.write('TRACE\n' + trace.join('\n') + '\nM1 ' + leaving.output() + '\nM2 ' + daemons[1]!.proc.output() + '\n');
    expect(lowest).toBeGreaterThanOrEqual(2);
    const placed = await byMachine('move');
    expect(placed.get('m2')).toHaveLength(2);
    for (const pids of old.values()) for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('a hoster restarted quickly after SIGKILL re-adopts its running apps (same processes), and their restart counts go on', async () => {
    const dir = traversableTempDir('berth-m1-');
    // Re-adoption needs the new hoster up within the lease (else the shims rightly stop the
    // apps first): a lease long enough for a Node process to boot on an oversubscribed machine.
    const first = hosterProcess('m1', dir, READOPT_LEASE_MS);
    await publish('keep', 2);
    await waitFor(async () => (await client.listAppInstances('keep')).filter((i) => i.state === 'running').length === 2, { deadlineMs: 20_000, what: '2 running' });
    // One app crashes once under the first hoster: restarted in place, counted.
    const [crashing] = await client.listAppInstances('keep');
    const restartedTo = async (restarts: number, pid: number) =>
      waitFor(async () => {
        const i = (await client.listAppInstances('keep')).find((x) => x.id === crashing!.id);
        return i?.state === 'running' && i.pid !== pid && i.restarts === restarts ? i : undefined;
      }, { deadlineMs: 20_000, what: `${crashing!.id} running again after restart ${restarts}` });
    process.kill(crashing!.pid!, 'SIGKILL');
    const once = await restartedTo(1, crashing!.pid!);
    const pids = new Map(live());
    const before = await client.listAppInstances('keep');
    first.kill('SIGKILL');
    await first.exited;
    const second = hosterProcess('m1', dir, READOPT_LEASE_MS);
    await waitFor(() => second.output().includes('re-adopted'), { deadlineMs: READOPT_LEASE_MS, what: 're-adoption' });
    // Well past the old leases: the same processes serve, under the same claims.
    await new Promise((r) => setTimeout(r, READOPT_LEASE_MS + 500));
    expect(live()).toEqual(pids);
    const after = await client.listAppInstances('keep');
    expect(after.map((i) => [i.id, i.epoch, i.state, i.restarts]).sort()).toEqual(before.map((i) => [i.id, i.epoch, 'running', i.restarts]).sort());
    // The second hoster read the count when it re-adopted: its first restart of that claim is the second.
    process.kill(once.pid!, 'SIGKILL');
    expect(await restartedTo(2, once.pid!)).toMatchObject({ epoch: crashing!.epoch });
  });
});
