// Drill 5: Redis restarted (SIGKILL, then started again on its append-only file, written with
// fsync always) under load through the balancer. Proxies and the balancer serve from their
// last route tables meanwhile, hosters keep their apps within the fencing margin: zero failed
// requests, and every instance keeps its claim (same machine, same epoch: nothing re-claimed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill } from './drill-fixture.js';
import { monotonicMs } from './observer.js';

/** Long enough that a Redis restart on a loaded host stays within the fencing margin (about half of it). */
const LEASE_MS = 10_000;
const INSTANCES = 6;
const BEFORE_REQUESTS = 200;
const AFTER_REQUESTS = 300;

let drill: Drill;

describe.skipIf(UNAVAILABLE !== undefined)(`drill: Redis restarted under load${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3, leaseMs: LEASE_MS });
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('serves every request and re-claims nothing across a Redis restart', async () => {
    await drill.publish('rr', INSTANCES);
    const client = drill.cluster.registry.client;
    const claims = async () => new Map((await client.listAppInstances('rr')).map((i) => [i.id, `${i.machine}/${i.epoch}/${i.state}`]));
    const before = await claims();
    const load = drill.load('/rr/', 4);
    await waitFor(() => load.total >= BEFORE_REQUESTS, { deadlineMs: 30_000, what: `${BEFORE_REQUESTS} requests before the restart` });

    const downAt = monotonicMs();
    await drill.cluster.redis.kill();
    await drill.cluster.redis.start();
    const downMs = monotonicMs() - downAt;
    await waitFor(async () => (await client.health().catch(() => undefined))?.status === 'ok', { deadlineMs: 20_000, what: 'the registry back on Redis' });
    // Past a full lease after the restart: renewals went through, or the apps would have stopped.
    const servedNow = load.total;
    await waitFor(() => load.total >= servedNow + AFTER_REQUESTS && monotonicMs() - downAt > LEASE_MS, { deadlineMs: 40_000, what: `${AFTER_REQUESTS} requests and a lease after the restart` });
    const result = await load.stop();

    expect(result.failures).toEqual([]);
    expect(await claims()).toEqual(before);
    expect(drill.collector.live().length).toBe(INSTANCES);
    // Each instance ran as one copy throughout.
    expect(drill.collector.runs().length).toBe(INSTANCES);
    drill.check();
    process.stdout.write(`drill 5: Redis down ${downMs.toFixed(0)} ms; ${result.failures.length} of ${result.total} requests failed; ${INSTANCES} claims unchanged\n`);
  });
});
