// The store's bulk read (a route table's full load) answers what one read per service answers, across its pipeline chunks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, type RedisClient } from '../../common/redis-connection.js';
import { RegistryStore } from '../../registry/store/registry-store.js';
import { testPrefix } from '../helpers/registry-fixture.js';
import { startRedisBackend, type TestRedisBackend } from '../helpers/test-redis-backend.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedisBackend;
let connection: RedisClient;

beforeAll(async () => {
  redis = await startRedisBackend();
  connection = connectRedis(redis.settings(10_000), { name: 'test' });
  await waitFor(() => connection.status === 'ready', { what: 'redis connection' });
});

afterAll(async () => {
  await closeRedis(connection);
  await redis.stop();
});

describe('registry store reads', () => {
  it('instancesOfEach gives every service its instances, oldest first, as instancesOf does, past a chunk of 1,000', async () => {
    const store = new RegistryStore(connection, { keyPrefix: testPrefix() });
    // 1,001 services of one instance, one of three (in the second chunk), and one unregistered again.
    const services = Array.from({ length: 1001 }, (_, n) => `s${String(n).padStart(4, '0')}`);
    await Promise.all(services.map((service) => store.register({ service, path: `/${service}` })));
    for (let n = 0; n < 2; n++) await store.register({ service: 's1000', path: '/s1000' });
    const gone = await store.register({ service: 's0500', path: '/s0500' });
    await store.unregister('s0500', gone.id);
    await store.claim({ service: 's1000', machine: 'm1', port: 4000 });

    const listed = await store.listServices();
    expect(listed).toHaveLength(1001);
    const each = await store.instancesOfEach([...listed, 'never-registered']);
    expect([...each.keys()]).toEqual([...listed, 'never-registered']);
    for (const service of listed) expect(each.get(service), service).toEqual(await store.instancesOf(service));
    expect(each.get('s1000')!.map((i) => i.state)).toEqual(['claimed', 'unclaimed', 'unclaimed']);
    expect(each.get('s0500')).toHaveLength(1);
    expect(each.get('never-registered')).toEqual([]);
  });
});
