// Drill 6: a machine's proxy killed (SIGKILL) under load through the balancer. The balancer
// routes around it (a refused connection is retried on another proxy, a request cut on a
// reused connection is retried when idempotent): no GET fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';

const INSTANCES = 6;
const BEFORE_REQUESTS = 200;
const AFTER_REQUESTS = 400;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: machine proxy killed under load${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3 });
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('loses no GET when a proxy dies', async () => {
    await drill.publish('px', INSTANCES);
    const load = drill.load('/px/', 6);
    await waitFor(() => load.total >= BEFORE_REQUESTS, { deadlineMs: 30_000, what: `${BEFORE_REQUESTS} requests before the kill` });
    const victim = drill.cluster.machines[0]!;
    const servedBefore = load.total;
    victim.proxy!.kill('SIGKILL');
    await victim.proxy!.exited;
    await waitFor(() => load.total >= servedBefore + AFTER_REQUESTS, { deadlineMs: 40_000, what: `${AFTER_REQUESTS} requests after the kill` });
    const result = await load.stop();
    expect(result.failures).toEqual([]);
    // Other machines answered throughout; the app's copies on the victim keep running.
    expect(result.byMachine.size).toBeGreaterThan(1);
    drill.check();
    process.stdout.write(`drill 6: proxy of ${victim.name} killed; ${result.failures.length} of ${result.total} GETs failed; answered by ${JSON.stringify(Object.fromEntries(result.byMachine))}\n`);
  });
});
