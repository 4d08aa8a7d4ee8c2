// Drill 2b: most machines cut off from Redis while one machine and the registry keep it (a
// partition, not an outage of Redis). The reaper sees most machines silent and holds expiries,
// as it would if Redis were away; each cut machine asks the others, hears that one of them still
// reaches Redis, judges itself cut off and fences as without a grace. So the cut machines' apps
// stop within their lease, and the instances come back on the machine that kept Redis once the
// leases have ended by more than the holders' grace: never two copies at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs } from './observer.js';

/** Long enough for a hoster to ask the others before its lease says stop. */
const LEASE_MS = 10_000;
const GRACE_MS = 12_000;
const REAP_MS = 200;
const POLL_MS = 1000;
const START_BUDGET_MS = 6000;
const INSTANCES = 6;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: most machines cut off from Redis${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3, leaseMs: LEASE_MS, hosterEnv: { BERTH_CONTROL_PLANE_GRACE_MS: String(GRACE_MS) } });
  });
  afterAll(async () => {
    for (const m of drill?.cluster.machines ?? []) {
      try {
        m.healRedis();
      } catch {
        // not cut
      }
    }
    await drill?.down();
  });

  it('fences only the cut machines, within the lease, and runs their instances on the one that kept Redis after the grace, never twice', async () => {
    await drill.publish('most', INSTANCES);
    const placed = await drill.placement('most');
    expect(placed.size).toBe(3);
    const [keeper, ...cut] = drill.cluster.machines;
    const cutNames = cut.map((m) => m.name);
    const cutInstances = cutNames.flatMap((name) => placed.get(name) ?? []);
    await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 10_000, what: 'every copy reporting' });
    const load = drill.load('/most/', 4);
    await waitFor(() => load.total > 50, { deadlineMs: 20_000, what: 'load under way' });

    const cutAt = monotonicMs();
    for (const m of cut) m.cutFromRedis();
    const moved = await waitFor(
      () => {
        const onKeeper = drill.collector.runs().filter((r) => cutInstances.includes(r.instance) && r.machine === keeper!.name && r.first > cutAt);
        return new Set(onKeeper.map((r) => r.instance)).size === cutInstances.length ? onKeeper : undefined;
      },
      { deadlineMs: LEASE_MS + GRACE_MS + REAP_MS + POLL_MS + START_BUDGET_MS + 15_000, what: `the cut machines’ instances reporting from ${keeper!.name}` },
    );
    const result = await load.stop();
    const lastOld = Math.max(...drill.collector.runs().filter((r) => cutNames.includes(r.machine)).map((r) => r.last)) - cutAt;
    const allMoved = Math.max(...moved.map((r) => r.first)) - cutAt;

    for (const m of cut) {
      const judged = m.hoster!.output().split('\n').filter((l) => /Redis is out of reach|"verdict"|cut off|away for every/.test(l)).join('\n');
      expect(m.hoster!.output(), `${m.name}: ${judged}`).toMatch(/this machine is the one cut off/);
      expect(m.hoster!.output(), m.name).not.toMatch(/Redis is away for every machine/);
    }
    expect(lastOld).toBeLessThan(LEASE_MS);
    // The reaper took most machines' silence for an outage and held: the price is the grace.
    expect(drill.cluster.registry.proc.output()).toMatch(/holding lease expiries for \d+ ms: 2 of 3 machines holding claims have not been heard from/);
    expect(allMoved).toBeLessThan(LEASE_MS + GRACE_MS + REAP_MS + POLL_MS + START_BUDGET_MS);
    // The cut machines' proxies still route (they keep their last table) to the keeper's copies.
    expect(result.failures).toEqual([]);
    drill.check();
    process.stdout.write(
      `drill 2b: ${cutNames.join(' and ')} cut off from Redis (lease ${LEASE_MS} ms, grace ${GRACE_MS} ms); their copies' last report ${lastOld.toFixed(0)} ms after the cut; ${cutInstances.length} instances running on ${keeper!.name} ${allMoved.toFixed(0)} ms after; ${result.failures.length} of ${result.total} requests failed\n`,
    );
  });
});
