// Drill 2: a machine cut off from Redis but still reachable (a blackhole route to Redis's
// address in its namespace). Its hoster stops its apps before their leases could expire,
// other machines take the instances, the balancer stops sending the prefix there, and on
// healing the machine does not start the old copies again. Run with the drills' 4 s lease
// (too short for a control-plane grace) and with a 10 s one, where the hoster asks the others
// and learns that it alone is cut off: it fences exactly as without a grace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs, REPORT_EVERY_MS } from './observer.js';

const POLL_MS = 1000;
const REAP_MS = 200;
const START_BUDGET_MS = 6000;
const INSTANCES = 6;
/** Requests after the routes converged, all of which must avoid the cut machine. */
const AFTER_REQUESTS = 300;

for (const LEASE_MS of [4000, 10_000]) {
  describe.skipIf(UNAVAILABLE !== undefined)(`drill: machine cut off from Redis, lease ${LEASE_MS} ms${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
    let drill: Drill;
    beforeAll(async () => {
      drill = await startDrill({ machines: 3, leaseMs: LEASE_MS });
    });
    afterAll(async () => {
      await drill?.down();
    });

    it('stops the apps there before the lease ends, runs them elsewhere, routes around it, and does not restart them on healing', async () => {
      await drill.publish('cut', INSTANCES);
      const placed = await drill.placement('cut');
      const [victimName, victims] = [...placed.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
      const victim = drill.cluster.machines.find((m) => m.name === victimName)!;
      await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 10_000, what: 'every copy reporting' });
      const oldEpochs = new Set(drill.collector.runs().filter((r) => r.machine === victimName).map((r) => `${r.instance}/${r.epoch}`));
      const load = drill.load('/cut/', 4);
      await waitFor(() => load.total > 50, { deadlineMs: 20_000, what: 'load under way' });

      const cutAt = monotonicMs();
      victim.cutFromRedis();
      try {
        const moved = await waitFor(
          () => {
            const elsewhere = drill.collector.runs().filter((r) => victims.includes(r.instance) && r.machine !== victimName && r.first > cutAt);
            return new Set(elsewhere.map((r) => r.instance)).size === victims.length ? elsewhere : undefined;
          },
          { deadlineMs: LEASE_MS + REAP_MS + POLL_MS + START_BUDGET_MS + 10_000, what: 'the cut machine’s instances reporting from other machines' },
        );
        const lastOld = Math.max(...drill.collector.runs().filter((r) => r.machine === victimName).map((r) => r.last)) - cutAt;
        const allNew = Math.max(...moved.map((r) => r.first)) - cutAt;
        // Should this fail, what the cut machine's hoster judged says why.
        const judged = () => victim.hoster!.output().split('\n').filter((l) => /Redis is out of reach|"verdict"|past its lease/.test(l)).join('\n');
        expect(lastOld, judged()).toBeLessThan(LEASE_MS);
        expect(allNew).toBeLessThan(LEASE_MS + REAP_MS + POLL_MS + START_BUDGET_MS);

        // The balancer follows the registry: once the new copies are routable nothing goes there.
        await waitFor(async () => !(await drill.placement('cut')).has(victimName) && [...(await drill.placement('cut')).values()].flat().length === INSTANCES, {
          deadlineMs: 10_000,
          what: 'every instance running elsewhere',
        });
        const before = await load.stop();
        const failedDuringCut = before.failures.length;
        const after = drill.load('/cut/', 4);
        await waitFor(() => after.total >= AFTER_REQUESTS, { deadlineMs: 30_000, what: `${AFTER_REQUESTS} requests after convergence` });
        const routed = await after.stop();
        expect(routed.byMachine.get(victimName) ?? 0).toBe(0);
        expect(routed.failures).toEqual([]);
        if (LEASE_MS >= 10_000) {
          // Long enough a lease for the grace: the cut machine asked the others and fenced.
          expect(victim.hoster!.output()).toMatch(/reached Redis \d+ ms ago, \d+ ms after this machine last did: this machine is the one cut off/);
          for (const m of drill.cluster.machines) expect(m.hoster!.output(), m.name).not.toMatch(/Redis is away for every machine/);
        }
        process.stdout.write(
          `drill 2 (lease ${LEASE_MS} ms): ${victims.length} instances on ${victimName}; old copies' last report ${lastOld.toFixed(0)} ms after the cut, all replacements ${allNew.toFixed(0)} ms after; ${failedDuringCut} of ${before.total} requests failed during the cut, 0 of ${routed.total} after\n`,
        );
      } finally {
        victim.healRedis();
      }

      // Healed: the hoster hears Redis again and keeps its hands off the old claims.
      const healedAt = monotonicMs();
      const heartbeat = async () => (await drill.cluster.registry.client.listMachines()).find((m) => m.name === victimName)?.heartbeatAt ?? 0;
      const lastBeat = await heartbeat();
      await waitFor(async () => (await heartbeat()) > lastBeat, { deadlineMs: 20_000, what: 'the healed hoster’s heartbeat' });
      const reportsNow = drill.collector.reports.length;
      // Watch for two leases' worth of reports (time measured by the apps' own reports).
      await waitFor(() => drill.collector.reports.length > reportsNow + (INSTANCES * 2 * LEASE_MS) / REPORT_EVERY_MS, { deadlineMs: 30_000, what: 'two leases of reports after healing' });
      const restarted = drill.collector.runs().filter((r) => r.machine === victimName && r.first > healedAt && oldEpochs.has(`${r.instance}/${r.epoch}`));
      expect(restarted).toEqual([]);
      expect(drill.collector.live().length).toBe(INSTANCES);
      drill.check();
    });
  });
}
