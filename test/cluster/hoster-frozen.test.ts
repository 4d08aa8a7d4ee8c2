// Drill 3: a hoster frozen (SIGSTOP) longer than its lease, then resumed. Its shims stop its
// apps before the lease ends, the instances run elsewhere, and once resumed its renewals are
// refused as stale within one renewal period: it never runs those copies again, and no
// request reaches the machine's old copies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs, REPORT_EVERY_MS } from './observer.js';

const LEASE_MS = 4000;
const RENEW_EVERY_MS = LEASE_MS / 4;
/** A resumed process is scheduled again on a loaded machine within this. */
const RESUME_SLACK_MS = 3000;
const INSTANCES = 6;
const AFTER_REQUESTS = 300;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: hoster frozen past its lease${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3, leaseMs: LEASE_MS });
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('refuses the frozen hoster’s stale claims once it resumes, its apps having stopped within the lease', async () => {
    await drill.publish('frozen', INSTANCES);
    const placed = await drill.placement('frozen');
    const [victimName, victims] = [...placed.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
    const victim = drill.cluster.machines.find((m) => m.name === victimName)!;
    await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 10_000, what: 'every copy reporting' });
    const oldEpochs = new Set(drill.collector.runs().filter((r) => r.machine === victimName).map((r) => `${r.instance}/${r.epoch}`));

    const frozenAt = monotonicMs();
    victim.hoster!.kill('SIGSTOP');
    let resumedAt = 0;
    try {
      // Frozen past the lease: every instance runs elsewhere meanwhile.
      await waitFor(
        () => {
          const elsewhere = drill.collector.runs().filter((r) => victims.includes(r.instance) && r.machine !== victimName && r.first > frozenAt);
          return new Set(elsewhere.map((r) => r.instance)).size === victims.length && monotonicMs() - frozenAt > LEASE_MS;
        },
        { deadlineMs: 30_000, what: 'the frozen hoster’s instances running elsewhere' },
      );
    } finally {
      resumedAt = monotonicMs();
      victim.hoster!.kill('SIGCONT');
    }
    const lastOld = Math.max(...drill.collector.runs().filter((r) => r.machine === victimName).map((r) => r.last)) - frozenAt;
    expect(lastOld).toBeLessThan(LEASE_MS);

    // Resumed: each renewal is refused (stale epoch) and its copies are given up.
    const lostLines = () => victim.hoster!.logLines().filter((l) => String(l.msg ?? '').startsWith('lost the claim'));
    await waitFor(() => lostLines().length >= victims.length, { deadlineMs: RENEW_EVERY_MS + RESUME_SLACK_MS, what: 'every stale claim refused within one renewal' });
    const noticedMs = monotonicMs() - resumedAt;

    const reportsNow = drill.collector.reports.length;
    const load = drill.load('/frozen/', 4);
    await waitFor(() => load.total >= AFTER_REQUESTS && drill.collector.reports.length > reportsNow + (INSTANCES * LEASE_MS) / REPORT_EVERY_MS, {
      deadlineMs: 30_000,
      what: `${AFTER_REQUESTS} requests and a lease of reports after resuming`,
    });
    const routed = await load.stop();
    expect(routed.failures).toEqual([]);
    expect(routed.byMachine.get(victimName) ?? 0).toBe(0);
    expect(drill.collector.runs().filter((r) => r.machine === victimName && r.last > resumedAt && oldEpochs.has(`${r.instance}/${r.epoch}`))).toEqual([]);
    expect(drill.collector.live().length).toBe(INSTANCES);
    drill.check();
    process.stdout.write(`drill 3: ${victims.length} instances on ${victimName}; old copies' last report ${lastOld.toFixed(0)} ms after SIGSTOP; stale claims refused ${noticedMs.toFixed(0)} ms after SIGCONT; 0 of ${routed.total} requests reached it\n`);
  });
});
