// A hoster's claim round reads a bounded sample of the unclaimed instances, not all of them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, type RedisClient } from '../../common/redis-connection.js';
import { RegistryStore } from '../../registry/store/registry-store.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const WINDOW = 8;
let redis: TestRedis;
let connection: RedisClient;

beforeAll(async () => {
  redis = await startRedis();
  connection = connectRedis({ url: redis.url, sentinels: [], sentinelName: 'mymaster', clusterNodes: [], commandTimeoutMs: 5000 }, { name: 'test' });
  await waitFor(() => connection.status === 'ready', { what: 'redis connection' });
});

afterAll(async () => {
  await closeRedis(connection);
  await redis.stop();
});

async function registerMany(store: RegistryStore, service: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await store.register({ service, path: `/${service}` });
}

describe('unclaimedServicesSample', () => {
  it('returns every service once when no more than the window wait, and nothing when none wait', async () => {
    const store = new RegistryStore(connection, { keyPrefix: testPrefix() });
    expect(await store.unclaimedServicesSample(WINDOW)).toEqual([]);
    await registerMany(store, 'old', 3);
    await registerMany(store, 'new', 2);
    expect((await store.unclaimedServicesSample(WINDOW)).sort()).toEqual(['new', 'old']);
  });

  it('reads the oldest window and one more window at the random place, never the whole set', async () => {
    const store = new RegistryStore(connection, { keyPrefix: testPrefix() });
    await registerMany(store, 'head', WINDOW * 4);
    await registerMany(store, 'middle', WINDOW);
    await registerMany(store, 'tail', WINDOW);
    // random 0: the window right after the oldest one, still all "head".
    expect(await store.unclaimedServicesSample(WINDOW, () => 0)).toEqual(['head']);
    // Near 1: the newest window, so instances behind a head no machine takes are still seen.
    expect((await store.unclaimedServicesSample(WINDOW, () => 0.999)).sort()).toEqual(['head', 'tail']);
    // Half way through what follows the oldest window (40 of them): the middle ones.
    expect((await store.unclaimedServicesSample(WINDOW, () => (WINDOW * 3) / (WINDOW * 5))).sort()).toEqual(['head', 'middle']);
  });

  it('gives the services in random order, so hosters do not all race for the same app', async () => {
    const store = new RegistryStore(connection, { keyPrefix: testPrefix() });
    for (const service of ['a', 'b', 'c', 'd']) await registerMany(store, service, 1);
    const orders = new Set<string>();
    for (let i = 0; i < 40; i++) orders.add((await store.unclaimedServicesSample(WINDOW)).join(','));
    // 24 orders are possible; 40 draws all giving one is a broken shuffle (chance about 1e-53).
    expect(orders.size).toBeGreaterThan(1);
    for (const order of orders) expect(order.split(',').sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('stops showing an instance once it is claimed', async () => {
    const store = new RegistryStore(connection, { keyPrefix: testPrefix() });
    await registerMany(store, 'only', 1);
    await store.claim({ service: 'only', machine: 'm1', port: 4000 });
    expect(await store.unclaimedServicesSample(WINDOW)).toEqual([]);
  });
});
