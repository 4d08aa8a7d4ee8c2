// Drill 1: a hoster killed with SIGKILL while its apps run. Its apps stop under their shims
// before their leases could be granted again, the instances run on other machines within
// lease + reap + poll + start, and the observer never sees one instance run twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs } from './observer.js';

const LEASE_MS = 4000;
const POLL_MS = 1000;
const REAP_MS = 200;
/** Install and start of a copy on a loaded 2-core machine, health check included. */
const START_BUDGET_MS = 6000;
const INSTANCES = 6;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: hoster SIGKILL${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3, leaseMs: LEASE_MS });
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('moves the instances of a killed hoster elsewhere within the bound, never running one twice', async () => {
    await drill.publish('obs', INSTANCES);
    const placed = await drill.placement('obs');
    const [victimName, victims] = [...placed.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
    expect(victims.length).toBeGreaterThan(0);
    const victim = drill.cluster.machines.find((m) => m.name === victimName)!;
    await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 10_000, what: 'every copy reporting' });

    const killedAt = monotonicMs();
    victim.hoster!.kill('SIGKILL');
    await victim.hoster!.exited;

    // Every instance of the killed hoster reports again, from another machine.
    const moved = await waitFor(
      () => {
        const elsewhere = drill.collector.runs().filter((r) => victims.includes(r.instance) && r.machine !== victimName && r.first > killedAt);
        return new Set(elsewhere.map((r) => r.instance)).size === victims.length ? elsewhere : undefined;
      },
      { deadlineMs: LEASE_MS + REAP_MS + POLL_MS + START_BUDGET_MS + 10_000, what: 'the killed hoster’s instances reporting from other machines' },
    );
    const old = drill.collector.runs().filter((r) => r.machine === victimName);
    const lastOld = Math.max(...old.map((r) => r.last)) - killedAt;
    const firstNew = Math.min(...moved.map((r) => r.first)) - killedAt;
    const lastNew = Math.max(...moved.map((r) => r.first)) - killedAt;
    process.stdout.write(`drill 1: ${victims.length} instances on ${victimName}; old copies' last report ${lastOld.toFixed(0)} ms after SIGKILL; replacements first ${firstNew.toFixed(0)} ms, all ${lastNew.toFixed(0)} ms after\n`);

    // Old copies died within the lease (the shim's deadline), new ones ran within the bound.
    expect(lastOld).toBeLessThan(LEASE_MS);
    expect(lastNew).toBeLessThan(LEASE_MS + REAP_MS + POLL_MS + START_BUDGET_MS);
    // Everyone runs once, nothing remains on the dead machine.
    await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 5000, what: `${INSTANCES} copies reporting` });
    expect(drill.liveByMachine().get(victimName)).toBeUndefined();
    drill.check();
  });
});
