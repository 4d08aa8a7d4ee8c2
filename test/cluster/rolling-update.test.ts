// Drill 7: a rolling update of a 3-instance app spread over 3 machines, under load through
// the balancer: every request answered, by v1 then v2, and only v2 runs at the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';

const INSTANCES = 3;
const BEFORE_REQUESTS = 200;
const AFTER_REQUESTS = 300;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: rolling update under load${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3 });
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('replaces v1 by v2 on every machine with zero failed requests', async () => {
    await drill.publish('roll', INSTANCES, 'v1');
    const spread = (await drill.placement('roll')).size;
    const load = drill.load('/roll/', 4);
    await waitFor(() => load.total >= BEFORE_REQUESTS, { deadlineMs: 30_000, what: `${BEFORE_REQUESTS} requests on v1` });
    const startedAt = Date.now();
    await drill.update('roll', 'v2');
    const client = drill.cluster.registry.client;
    await waitFor(async () => {
      const instances = await client.listAppInstances('roll');
      return instances.length === INSTANCES && instances.every((i) => i.release === 2 && i.state === 'running');
    }, { deadlineMs: 40_000, what: 'only v2 running' });
    const rolledMs = Date.now() - startedAt;
    const servedNow = load.total;
    // Past the old copies' drain and stop.
    await waitFor(() => load.total >= servedNow + AFTER_REQUESTS, { deadlineMs: 30_000, what: `${AFTER_REQUESTS} requests after the update` });
    const result = await load.stop();

    expect(result.failures).toEqual([]);
    expect(result.byVersion.get('v1')).toBeGreaterThan(0);
    expect(result.byVersion.get('v2')).toBeGreaterThan(0);
    expect(spread).toBeGreaterThanOrEqual(2);
    await waitFor(() => drill.collector.live().length === INSTANCES && drill.collector.live().every((r) => r.version === 'v2'), { deadlineMs: 10_000, what: 'only v2 copies reporting' });
    drill.check();
    process.stdout.write(`drill 7: ${INSTANCES} instances on ${spread} machines rolled to v2 in ${rolledMs} ms; ${result.failures.length} of ${result.total} requests failed (${JSON.stringify(Object.fromEntries(result.byVersion))})\n`);
  });
});
