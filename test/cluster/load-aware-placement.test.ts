// Drill 8: load-aware placement. A machine made busy stops claiming: new instances land on
// the idle machines, and one app's instances spread over them. Machines in namespaces share
// one kernel and so one load average (and other programs' load besides): each hoster reads
// its own load file (BERTH_LOAD_FILE), which the drill sets, instead of running a CPU burner.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';

const INSTANCES = 6;
const MORE = 4;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: load-aware placement${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    // A longer spread delay than by default: a loaded test host must not blur the spread.
    drill = await startDrill({ machines: 3, hosterEnv: { BERTH_SPREAD_DELAY_MS: '300' } });
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('keeps new instances off a busy machine and spreads them over the idle ones', async () => {
    const [busy, ...idle] = drill.cluster.machines;
    busy!.setLoad(3);
    await drill.publish('spread', INSTANCES);
    const placed = await drill.placement('spread');
    expect(placed.get(busy!.name)).toBeUndefined();
    // Spread: each idle machine has a share.
    for (const m of idle) expect(placed.get(m.name)?.length ?? 0).toBeGreaterThanOrEqual(1);

    // Busy again later: more instances still avoid it; idle again: it takes work.
    await drill.cluster.registry.client.scaleApp('spread', { instances: INSTANCES + MORE });
    await waitFor(async () => [...(await drill.placement('spread')).values()].flat().length === INSTANCES + MORE, { deadlineMs: 40_000, what: `${INSTANCES + MORE} running` });
    const more = await drill.placement('spread');
    expect(more.get(busy!.name)).toBeUndefined();

    busy!.setLoad(0);
    await drill.publish('after', INSTANCES);
    const after = await drill.placement('after');
    expect(after.get(busy!.name)?.length ?? 0).toBeGreaterThan(0);
    drill.check();
    const counts = (p: Map<string, string[]>) => JSON.stringify(Object.fromEntries([...p].map(([m, ids]) => [m, ids.length])));
    process.stdout.write(`drill 8: ${busy!.name} busy: ${counts(placed)}, then ${counts(more)}; idle again, a new app: ${counts(after)}\n`);
  });
});
