// The route table follows the registry while it reloads in the background: changes made during a periodic load are neither delayed by it nor undone by its install.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { closeRedis, connectRedis, type RedisClient } from '../../common/redis-connection.js';
import { RouteSync, RouteTable } from '../../forward/index.js';
import { AppStore, DomainStore, RegistryStore } from '../../registry/store/index.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
const connections: RedisClient[] = [];

async function connection(blocking = false): Promise<RedisClient> {
  const c = connectRedis({ url: redis.url, sentinels: [], sentinelName: 'mymaster', clusterNodes: [], commandTimeoutMs: 10_000 }, { name: 'test', blocking });
  connections.push(c);
  await waitFor(() => c.status === 'ready', { what: 'redis connection' });
  return c;
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const c of connections) await closeRedis(c);
  await redis.stop();
});

describe('route sync', () => {
  it('keeps every instance added while a periodic load is read, and drops every one removed meanwhile', async () => {
    const keyPrefix = testPrefix();
    const redisClient = await connection();
    const store = new RegistryStore(redisClient, { keyPrefix });
    const table = new RouteTable('m1');
    // 1,000 services already there make each load take a while; a load begins whenever the last was installed.
    const base = Array.from({ length: 1000 }, (_, n) => `base${n}`);
    await Promise.all(base.map((service) => store.register({ service, path: `/${service}` })));
    const sync = new RouteSync({ table, store, apps: new AppStore(redisClient, { keyPrefix }), domains: new DomainStore(redisClient, { keyPrefix }), events: await connection(true), logger: silentLogger(), resyncIntervalMs: 0 });
    sync.start();
    try {
      await waitFor(() => sync.ready, { what: 'the first load' });
      const routed = (service: string) => table.lookup(`/${service}`)?.local.length ?? 0;
      // Every millisecond: an instance the table had must stay until it is removed in Redis.
      const kept = new Set<string>();
      const lost: string[] = [];
      const watch = setInterval(() => {
        for (const service of kept) if (routed(service) === 0) lost.push(service);
      }, 1);
      // Loads installed during the changes (each replaces the whole table).
      let installs = 0;
      const replaceAll = table.replaceAll.bind(table);
      table.replaceAll = (...args) => {
        installs++;
        replaceAll(...args);
      };
      try {
        for (let n = 0; n < 60; n++) {
          const service = `live${n}`;
          const r = await store.register({ service, path: `/${service}` });
          const c = await store.claim({ service, machine: 'm1', port: 5000 + n, instanceId: r.id, leaseMs: 60_000 });
          await store.markRunning({ service, id: r.id, machine: 'm1', epoch: c.epoch, pid: 1 });
          await waitFor(() => routed(service) === 1, { what: `${service} routed` });
          kept.add(service);
          // Every third one goes again: once released in Redis it may leave the table.
          if (n % 3 === 0) {
            kept.delete(service);
            await store.release({ service, id: r.id, machine: 'm1', epoch: c.epoch, reason: 'test' });
            await waitFor(() => routed(service) === 0, { what: `${service} gone` });
          }
        }
      } finally {
        clearInterval(watch);
      }
      expect(lost).toEqual([]);
      expect(installs).toBeGreaterThan(10);
      // The table is the registry's.
      for (let n = 0; n < 60; n++) expect(routed(`live${n}`), `live${n}`).toBe(n % 3 === 0 ? 0 : 1);
    } finally {
      await sync.close();
    }
  });
});
