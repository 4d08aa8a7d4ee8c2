// Drill 5c: Redis frozen (SIGSTOP) for twice and for six times the lease under load, below the
// hosters' control-plane grace (90 s). Every machine loses Redis at once; each hoster asks the others' proxies, learns that Redis
// is away for all of them, and keeps its apps running past their leases; the reaper, when Redis
// answers again, sees the gap in its own ticks and holds expiries for a lease, so every hoster
// renews first. Zero failed requests, every instance keeps its claim (same machine, same epoch),
// one copy each throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs } from './observer.js';

/** Long enough for a hoster to tell an outage of Redis from its own cut before its lease says stop. */
const LEASE_MS = 10_000;
const INSTANCES = 6;
const BEFORE_REQUESTS = 200;
const AFTER_REQUESTS = 300;

for (const FROZEN_MS of [2 * LEASE_MS, 6 * LEASE_MS]) {
  let drill: Drill;

  describe.skipIf(UNAVAILABLE !== undefined)(`drill: Redis frozen ${FROZEN_MS / 1000} s under load${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
    beforeAll(async () => {
      drill = await startDrill({ machines: 3, leaseMs: LEASE_MS });
    });
    afterAll(async () => {
      drill?.cluster.redis.thaw();
      await drill?.down();
    });

    it(`serves every request and stops nothing while Redis is frozen for ${FROZEN_MS / 1000} s`, async () => {
      await drill.publish('frz', INSTANCES);
      const client = drill.cluster.registry.client;
      const claims = async () => new Map((await client.listAppInstances('frz')).map((i) => [i.id, `${i.machine}/${i.epoch}/${i.state}`]));
      const before = await claims();
      expect(new Set([...before.values()].map((c) => c.split('/')[0])).size).toBe(3);
      const load = drill.load('/frz/', 4, 'GET', FROZEN_MS + 40_000);
      await waitFor(() => load.total >= BEFORE_REQUESTS, { deadlineMs: 30_000, what: `${BEFORE_REQUESTS} requests before the freeze` });

      const frozenAt = monotonicMs();
      drill.cluster.redis.freeze();
      try {
        await new Promise((r) => setTimeout(r, FROZEN_MS));
      } finally {
        drill.cluster.redis.thaw();
      }
      const frozenMs = monotonicMs() - frozenAt;
      await waitFor(async () => (await client.health().catch(() => undefined))?.status === 'ok', { deadlineMs: 20_000, what: 'the registry back on Redis' });
      const servedNow = load.total;
      await waitFor(() => load.total >= servedNow + AFTER_REQUESTS, { deadlineMs: 20_000, what: `${AFTER_REQUESTS} requests after the freeze` });
      const result = await load.stop();

      expect(result.failures).toEqual([]);
      const after = await claims();
      const moved = [...after].filter(([id, claim]) => before.get(id) !== claim);
      // What the hosters said of a copy that moved, so that a run where one did explains itself.
      for (const [id] of moved) {
        const said = drill.cluster.machines.flatMap((m) => m.hoster!.output().split('\n').filter((l) => l.includes(id) || l.includes('cut off')).map((l) => `${m.name}: ${l.slice(0, 300)}`));
        process.stdout.write(`drill 5c: ${id} moved (${before.get(id)} → ${after.get(id)}):\n${said.join('\n')}\n`);
      }
      expect(after).toEqual(before);
      // Each instance ran as one copy throughout.
      expect(drill.collector.runs().length).toBe(INSTANCES);
      await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 10_000, what: `${INSTANCES} copies reporting` });
      drill.check();
      for (const m of drill.cluster.machines) {
        expect(m.hoster!.output(), m.name).toMatch(/Redis is away for every machine that answers/);
        // At the thaw the proxies reach Redis a moment before the hosters do: that is Redis back, not a cut.
        expect(m.hoster!.output(), m.name).not.toMatch(/this machine is the one cut off/);
      }
      expect(drill.cluster.registry.proc.output()).toMatch(/holding lease expiries for \d+ ms: the reaper did not run for \d+ ms/);
      process.stdout.write(`drill 5c: Redis frozen ${frozenMs.toFixed(0)} ms (lease ${LEASE_MS} ms); ${result.failures.length} of ${result.total} requests failed; ${INSTANCES - moved.length} of ${INSTANCES} claims unchanged\n`);
    }, FROZEN_MS + 60_000);
  });
}
