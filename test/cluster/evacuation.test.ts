// Drill 4: SIGTERM to a hoster under load evacuates it: replacements run on other machines
// before the old copies stop (make before break), and no request through the balancer fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs } from './observer.js';

const INSTANCES = 6;
const BEFORE_REQUESTS = 200;
const AFTER_REQUESTS = 300;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: evacuation on SIGTERM${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3 });
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('starts replacements elsewhere before stopping the old copies, with zero failed requests', async () => {
    await drill.publish('evac', INSTANCES);
    const placed = await drill.placement('evac');
    const [victimName, victims] = [...placed.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
    const victim = drill.cluster.machines.find((m) => m.name === victimName)!;
    const original = new Set([...placed.values()].flat());
    const load = drill.load('/evac/', 4);
    await waitFor(() => load.total >= BEFORE_REQUESTS, { deadlineMs: 30_000, what: `${BEFORE_REQUESTS} requests before SIGTERM` });

    const termAt = monotonicMs();
    victim.hoster!.kill('SIGTERM');
    expect(await victim.hoster!.exited).toBe(0);
    const exitedAt = monotonicMs();
    const exitedMs = exitedAt - termAt;
    const servedNow = load.total;
    await waitFor(() => load.total >= servedNow + AFTER_REQUESTS, { deadlineMs: 30_000, what: `${AFTER_REQUESTS} requests after the evacuation` });
    const result = await load.stop();
    expect(result.failures).toEqual([]);

    // Make before break: when the k-th old copy stopped, at least k replacements were running.
    const runs = drill.collector.runs();
    const old = runs.filter((r) => r.machine === victimName).sort((a, b) => a.last - b.last);
    const replacements = runs.filter((r) => !original.has(r.instance)).map((r) => r.first);
    expect(old.length).toBe(victims.length);
    expect(replacements.length).toBeGreaterThanOrEqual(victims.length);
    old.forEach((copy, k) => expect(replacements.filter((t) => t < copy.last).length).toBeGreaterThanOrEqual(k + 1));
    // The hoster exits only once its copies have: none reported after it was gone. (Asked of the
    // reports' own stamps, not of the collector's live window, which a fast load can fall inside.)
    expect(old.filter((copy) => copy.last > exitedAt).map((copy) => `${copy.instance} reported ${(copy.last - exitedAt).toFixed(0)} ms after its hoster exited`)).toEqual([]);
    await waitFor(() => drill.collector.live().length === INSTANCES, { deadlineMs: 10_000, what: `${INSTANCES} copies reporting` });
    drill.check();
    process.stdout.write(`drill 4: ${victims.length} instances evacuated from ${victimName}; hoster exited ${exitedMs.toFixed(0)} ms after SIGTERM; ${result.failures.length} of ${result.total} requests failed\n`);
  });
});
