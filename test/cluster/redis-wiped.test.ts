// Drill 5, second half: Redis wiped (every key gone) while apps run. No hoster can prove its
// claims any more: each stops its copies within one renewal period (instance_not_found), the
// routes empty, and once the app is published again the platform converges to it, with no
// instance ever running twice (epochs start again from 1: the checker tells copies apart by
// instance, machine and pid).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs } from './observer.js';

const LEASE_MS = 4000;
const RENEW_EVERY_MS = LEASE_MS / 4;
/** A renewal on a loaded 2-core machine, and the app's stop (grace 0.5 s), take at most this. */
const STOP_SLACK_MS = 3000;
const INSTANCES = 6;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: Redis wiped${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3, leaseMs: LEASE_MS });
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('stops every copy within a renewal and converges again once the app is published again', async () => {
    await drill.publish('wiped', INSTANCES);
    await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 10_000, what: 'every copy reporting' });
    const first = new Set(drill.collector.runs().map((r) => r.instance));

    const wipedAt = monotonicMs();
    drill.cluster.redis.wipe();
    await waitFor(() => drill.collector.live().length === 0, { deadlineMs: RENEW_EVERY_MS + STOP_SLACK_MS + 5000, what: 'every copy stopped' });
    const lastOld = Math.max(...drill.collector.runs().map((r) => r.last)) - wipedAt;
    expect(lastOld).toBeLessThan(RENEW_EVERY_MS + STOP_SLACK_MS);
    // Nothing is routed any more: the balancer answers 404 no_route (or 503 while it learns).
    const probe = drill.load('/wiped/', 1);
    await waitFor(() => probe.failures.some((f) => f.startsWith('404')), { deadlineMs: 15_000, what: 'the balancer to know no route' });
    await probe.stop();

    const againAt = monotonicMs();
    await drill.publish('wiped', INSTANCES);
    await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 10_000, what: 'every new copy reporting' });
    const convergedMs = monotonicMs() - againAt;
    const fresh = drill.collector.live();
    expect(fresh.every((r) => !first.has(r.instance))).toBe(true);
    drill.check();
    process.stdout.write(`drill 5b: Redis wiped; every copy stopped ${lastOld.toFixed(0)} ms after; published again, ${INSTANCES} running in ${convergedMs.toFixed(0)} ms\n`);
  });
});
