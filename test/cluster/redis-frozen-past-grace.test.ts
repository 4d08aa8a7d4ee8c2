// Drill 5d: Redis frozen (SIGSTOP) for longer than the hosters' control-plane grace. Every
// machine keeps its apps past their leases (Redis is away for all), up to the grace counted
// from when it last reached Redis: then every copy stops, at the grace (± 1 s, plus the stop
// grace). When Redis answers again the hosters give those claims back and the instances run
// again within seconds; never two copies of one instance at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs } from './observer.js';

// A lease long enough for each hoster's verdict ("Redis is away for every machine") to come
// before its lease says stop, on a loaded machine too: with 10 s, a verdict that stayed
// "unsure" for 5 s (slow peers' answers) fenced a copy at 6.5 s, safe but not what is drilled.
const LEASE_MS = 16_000;
const GRACE_MS = 22_000;
const FROZEN_MS = GRACE_MS + 8000;
const INSTANCES = 6;
/** The drills' stop grace (cluster-harness.ts) and the slack the bound allows. */
const STOP_GRACE_MS = 500;
const SLACK_MS = 1000;

let drill: Drill;

/** What each hoster judged, and when it fenced: why a copy stopped when it did. */
function judged(): string {
  const lines = (out: string) => out.split('\n').filter((l) => /"verdict"|Redis is out of reach|past its lease|cannot renew the lease of .* in time: stopping|past the control-plane grace|shim stopped/.test(l));
  const brief = (l: string) => {
    try {
      const { time, msg } = JSON.parse(l) as { time: number; msg: string };
      return `${new Date(time).toISOString().slice(11, 23)} ${msg}`;
    } catch {
      return l;
    }
  };
  return drill.cluster.machines.map((m) => `--- ${m.name}\n${lines(m.hoster!.output()).map(brief).join('\n')}`).join('\n');
}

describe.skipIf(UNAVAILABLE !== undefined)(`drill: Redis frozen past the control-plane grace${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3, leaseMs: LEASE_MS, hosterEnv: { BERTH_CONTROL_PLANE_GRACE_MS: String(GRACE_MS) } });
  });
  afterAll(async () => {
    drill?.cluster.redis.thaw();
    await drill?.down();
  });

  it(`stops every copy at the grace (${GRACE_MS / 1000} s ± 1 s) and runs them again within seconds of Redis returning`, async () => {
    await drill.publish('past', INSTANCES);
    await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 10_000, what: 'every copy reporting' });
    const frozenAt = monotonicMs();
    drill.cluster.redis.freeze();
    let thawedAt: number;
    try {
      // Every copy stopped (none reported for a while) before Redis comes back.
      await waitFor(() => drill.collector.runs().every((r) => monotonicMs() - r.last > 1500), { deadlineMs: FROZEN_MS - 2000, what: 'every copy stopped during the freeze' });
      await new Promise((r) => setTimeout(r, Math.max(0, frozenAt + FROZEN_MS - monotonicMs())));
    } finally {
      drill.cluster.redis.thaw();
      thawedAt = monotonicMs();
    }
    // The copies that ran when Redis froze (reporting within a second of it): on a loaded
    // machine one may have failed its start and moved before the freeze.
    const before = drill.collector.runs().filter((r) => r.last <= frozenAt - 1000);
    const runs = drill.collector.runs().filter((r) => r.last > frozenAt - 1000);
    const stops = runs.map((r) => r.last - frozenAt);
    // The grace counts from when each machine last reached Redis: at most a presence round (250 ms) before the freeze.
    expect(runs.length, 'copies running when Redis froze').toBeGreaterThanOrEqual(INSTANCES);
    const outside = runs.filter((r) => r.last - frozenAt <= GRACE_MS - SLACK_MS || r.last - frozenAt >= GRACE_MS + STOP_GRACE_MS + SLACK_MS);
    expect(
      outside.map((r) => `${r.instance} on ${r.machine} stopped ${Math.round(r.last - frozenAt)} ms into the freeze`),
      `every copy stops ${GRACE_MS - SLACK_MS}–${GRACE_MS + STOP_GRACE_MS + SLACK_MS} ms into the freeze; the hosters judged:\n${judged()}`,
    ).toEqual([]);
    const back = await waitFor(
      () => {
        const again = drill.collector.runs().filter((r) => r.first > thawedAt);
        return new Set(again.map((r) => r.instance)).size === INSTANCES ? again : undefined;
      },
      { deadlineMs: 20_000, what: 'every instance running again after the thaw' },
    );
    const backMs = Math.max(...back.map((r) => r.first)) - thawedAt;
    expect(backMs).toBeLessThan(15_000);
    for (const m of drill.cluster.machines) expect(m.hoster!.output(), `${m.name} judged:\n${judged()}`).toMatch(/Redis is away for every machine that answers/);
    drill.check();
    process.stdout.write(
      `drill 5d: Redis frozen ${((thawedAt - frozenAt) / 1000).toFixed(1)} s with a ${GRACE_MS / 1000} s grace (lease ${LEASE_MS / 1000} s); copies stopped ${(Math.min(...stops) / 1000).toFixed(2)}–${(Math.max(...stops) / 1000).toFixed(2)} s into the freeze; all ${INSTANCES} running again ${(backMs / 1000).toFixed(1)} s after the thaw${before.length ? ` (${before.length} copies had ended before the freeze)` : ''}\n`,
    );
  }, FROZEN_MS + 60_000);
});
