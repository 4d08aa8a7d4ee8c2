// Drill 6: a machine's proxy killed (SIGKILL) under load through the balancer, then started
// again and stopped cleanly (SIGTERM). The balancer routes around it (a refused connection is
// retried on another proxy, a GET cut on a reused connection once), and the dying proxy's
// workers finish what they have in flight: no GET fails, and no POST that was never sent;
// the clean stop costs no request at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { startDrill, UNAVAILABLE, type Drill, type LoadResult } from './drill-fixture.js';

const INSTANCES = 6;
const BEFORE_REQUESTS = 200;
const AFTER_REQUESTS = 400;

let drill: Drill;

/** A POST that failed because the balancer says it may have reached the app (cut after it was sent). */
const maybeSent = (failure: string) => failure.startsWith('502 ') && failure.includes('may have reached');

/** Requests a proxy answered for the drill's app, from its /metrics (every worker's). */
async function servedBy(proxyUrl: string): Promise<number> {
  const text = await (await fetch(`${proxyUrl}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  return [...text.matchAll(/^berth_proxy_requests_total\{app="px",[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** GETs and POSTs at once, `during` whatever the drill does, with enough requests before and after. */
async function underLoad(during: () => Promise<void>): Promise<{ gets: LoadResult; posts: LoadResult }> {
  const gets = drill.load('/px/', 4);
  const posts = drill.load('/px/', 2, 'POST');
  await waitFor(() => gets.total + posts.total >= BEFORE_REQUESTS, { deadlineMs: 30_000, what: `${BEFORE_REQUESTS} requests before the fault` });
  await during();
  const servedBefore = gets.total + posts.total;
  await waitFor(() => gets.total + posts.total >= servedBefore + AFTER_REQUESTS, { deadlineMs: 40_000, what: `${AFTER_REQUESTS} requests after the fault` });
  return { gets: await gets.stop(), posts: await posts.stop() };
}

describe.skipIf(UNAVAILABLE !== undefined)(`drill: machine proxy killed under load${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    drill = await startDrill({ machines: 3 });
    await drill.publish('px', INSTANCES);
  });
  afterAll(async () => {
    await drill?.down();
  });

  it('loses no GET, and no POST that was never sent, when a proxy dies', async () => {
    const victim = drill.cluster.machines[0]!;
    const { gets, posts } = await underLoad(async () => {
      victim.proxy!.kill('SIGKILL');
      await victim.proxy!.exited;
    });
    expect(gets.failures).toEqual([]);
    expect(posts.failures.filter((f) => !maybeSent(f))).toEqual([]);
    // Other machines answered throughout; the app's copies on the victim keep running.
    expect(gets.byMachine.size).toBeGreaterThan(1);
    drill.check();
    process.stdout.write(
      `drill 6: proxy of ${victim.name} killed; ${gets.failures.length} of ${gets.total} GETs and ${posts.failures.length} of ${posts.total} POSTs failed ` +
        `(${posts.failures.filter(maybeSent).length} of them may have been sent); answered by ${JSON.stringify(Object.fromEntries(gets.byMachine))}\n`,
    );
  });

  it('loses no request at all when that proxy, started again, is stopped cleanly (SIGTERM)', async () => {
    const victim = drill.cluster.machines[0]!;
    const proxy = await victim.startProxy();
    const { gets, posts } = await underLoad(async () => {
      // The balancer takes it back (its health check passes): it serves its share first.
      await waitFor(async () => (await servedBy(victim.proxyUrl)) >= 20, { deadlineMs: 30_000, what: `the restarted proxy of ${victim.name} to serve again` });
      proxy.kill('SIGTERM');
      expect(await proxy.exited).toBe(0);
    });
    expect(gets.failures).toEqual([]);
    expect(posts.failures).toEqual([]);
    drill.check();
    process.stdout.write(`drill 6b: proxy of ${victim.name} stopped with SIGTERM; ${gets.failures.length} of ${gets.total} GETs and ${posts.failures.length} of ${posts.total} POSTs failed\n`);
  });
});
