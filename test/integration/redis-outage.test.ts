// While Redis is away the registry answers 503 quickly (never hangs), and it recovers by itself when Redis returns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestProxy } from '../helpers/proxy-fixture.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let fixture: RegistryFixture;

/** A close takes milliseconds; one that waits on a read the outage cut never ends. */
const CLOSE_DEADLINE_MS = 5000;

beforeAll(async () => {
  redis = await startRedis({ appendonly: true });
  fixture = await startTestRegistry(redis, { redisCommandTimeoutMs: 1000 });
});

afterAll(async () => {
  await fixture.close();
  await redis.stop();
});

async function timedGet(path: string): Promise<{ status: number; body: unknown; ms: number }> {
  const started = Date.now();
  const res = await fetch(`${fixture.daemon.url}${path}`, {
    headers: { authorization: `Bearer ${fixture.token}` },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json(), ms: Date.now() - started };
}

describe('Redis outage', () => {
  it('answers 503 redis_unavailable within the command timeout while Redis is down, then recovers with the data kept', async () => {
    const before = await fixture.client.registerInstance('pay', { path: '/pay' });

    await redis.kill();
    for (const path of ['/v1/services', '/v1/services/pay', '/v1/unclaimed', '/healthz']) {
      const answer = await timedGet(path);
      expect(answer.status, path).toBe(503);
      expect(answer.body).toMatchObject({ error: { code: 'redis_unavailable' } });
      expect(answer.ms, path).toBeLessThan(3000);
    }
    const claim = await fetch(`${fixture.daemon.url}/v1/services/pay/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fixture.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ machine: 'm1', port: 4001 }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(claim.status).toBe(503);
    expect(claim.headers.get('retry-after')).toBe('1');

    await redis.start();
    await waitFor(async () => (await timedGet('/healthz')).status === 200, { deadlineMs: 20_000, what: 'registry to reconnect' });
    // Scripts were loaded into the old server: EVALSHA falls back to EVAL on the new one.
    const claimed = await fixture.client.claimService('pay', { machine: 'm1', port: 4001 });
    expect(claimed.id).toBe(before.id);
    expect(claimed.state).toBe('claimed');
  });

  it('answers 503 (not a hang) when Redis accepts connections but does not answer', async () => {
    const c = redis.client();
    // CLIENT PAUSE makes Redis hold every command: the registry's command timeout must cut in.
    await c.call('CLIENT', 'PAUSE', '3000', 'ALL');
    const answer = await timedGet('/v1/services');
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ error: { code: 'redis_unavailable' } });
    expect(answer.ms).toBeLessThan(2900);
    await c.call('CLIENT', 'UNPAUSE');
    await waitFor(async () => (await timedGet('/v1/services')).status === 200, { deadlineMs: 20_000, what: 'registry to answer again' });
  });

  it('stops a proxy promptly while Redis is away (its blocked event read, cut by the outage, is not waited on)', async () => {
    const proxy = await startTestProxy(redis, fixture.prefix, 'm1');
    // The event connection (private to the route sync) between its loss and its first reconnect.
    const events = (proxy.sync as unknown as { o: { events: { status: string } } }).o.events;
    await redis.kill();
    try {
      await waitFor(() => events.status === 'reconnecting', { what: "the proxy's event connection to notice the outage" });
      const outcome = await Promise.race([
        proxy.close().then(() => 'closed'),
        new Promise<string>((resolve) => setTimeout(() => resolve('still closing'), CLOSE_DEADLINE_MS).unref()),
      ]);
      expect(outcome).toBe('closed');
    } finally {
      await redis.start();
    }
  });
});
