// Each failure a Lua script reports has its own code and becomes its own typed error, naming what it is about, in one place.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, type RedisClient } from '../../common/redis-connection.js';
import { AppStore, DEFAULT_HEALTH_CHECK, RegistryStore, TokenStore, registryKeys, type ReleaseInput } from '../../registry/store/index.js';
import { testPrefix } from '../helpers/registry-fixture.js';
import { startRedisBackend, type TestRedisBackend } from '../helpers/test-redis-backend.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedisBackend;
let client: RedisClient;

const release: ReleaseInput = {
  bundle: 'a'.repeat(64),
  env: {},
  command: null,
  requirements: {},
  healthCheck: DEFAULT_HEALTH_CHECK,
  description: 'test',
  createdBy: 'test',
};

beforeAll(async () => {
  redis = await startRedisBackend();
  client = connectRedis(redis.settings(5000), { name: 'test' });
  await waitFor(() => client.status === 'ready', { what: 'redis connection' });
});

afterAll(async () => {
  await closeRedis(client);
  await redis.stop();
});

describe('script failures', () => {
  it('tells an unknown service from one with nothing unclaimed, in the claim script itself', async () => {
    const store = new RegistryStore(client, { keyPrefix: testPrefix() });
    await expect(store.claim({ service: 'ghost', machine: 'm1', port: 1 })).rejects.toMatchObject({ code: 'service_not_found', message: expect.stringContaining('"ghost"') });
    const i = await store.register({ service: 'shop', path: '/shop' });
    await store.claim({ service: 'shop', machine: 'm1', port: 1 });
    await expect(store.claim({ service: 'shop', machine: 'm1', port: 2 })).rejects.toMatchObject({ code: 'nothing_to_claim' });
    await expect(store.register({ service: 'shop', path: '/shop', id: i.id })).rejects.toMatchObject({ code: 'instance_exists' });
    await expect(store.renew({ service: 'shop', id: i.id, machine: 'm2', epoch: 1 })).rejects.toMatchObject({ code: 'stale_epoch' });
    await expect(store.renew({ service: 'shop', id: 'nope', machine: 'm1', epoch: 1 })).rejects.toMatchObject({ code: 'instance_not_found' });
    await expect(store.confirmStopped({ service: 'shop', id: i.id, machine: 'm1', epoch: 1 })).rejects.toMatchObject({ code: 'invalid_state' });
  });

  it('names the app, the token and the owner of a path', async () => {
    const prefix = testPrefix();
    const apps = new AppStore(client, { keyPrefix: prefix });
    const tokens = new TokenStore(client, registryKeys(prefix));
    await apps.create({ name: 'shop', path: '/shop', instances: 1, stripPrefix: false, release });
    await expect(apps.create({ name: 'shop', path: '/other', instances: 1, stripPrefix: false, release })).rejects.toMatchObject({ code: 'app_exists', message: expect.stringContaining('"shop"') });
    await expect(apps.create({ name: 'cart', path: '/shop/cart', instances: 1, stripPrefix: false, release })).rejects.toMatchObject({ code: 'path_taken', message: expect.stringContaining('"shop"') });
    await expect(apps.createRelease('shop', release, 0)).rejects.toMatchObject({ code: 'release_conflict' });
    await expect(apps.createRelease('ghost', release, null)).rejects.toMatchObject({ code: 'app_not_found', message: expect.stringContaining('"ghost"') });
    await apps.setAutoscale('shop', { min: 1, max: 2, targetCpu: 0.6, cooldownUpSeconds: 30, cooldownDownSeconds: 120 });
    await expect(apps.updateSettings('shop', { instances: 3 })).rejects.toMatchObject({ code: 'autoscale_on', message: expect.stringContaining('berth scale shop') });
    await expect(apps.applyScaleDecision({ app: 'shop', from: 1, to: 2, cause: 'test' }, {}, 'not-the-leader', 10)).resolves.toEqual({ applied: false, why: 'not_leader' });
    await tokens.create({ name: 'ci', app: null, readOnly: false }, 'admin');
    await expect(tokens.create({ name: 'ci', app: null, readOnly: false }, 'admin')).rejects.toMatchObject({ code: 'token_exists', message: expect.stringContaining('ci') });
    await expect(tokens.revoke('nobody')).rejects.toMatchObject({ code: 'token_not_found', message: expect.stringContaining('nobody') });
    await expect(apps.remove('ghost')).resolves.toBe(true);
    await expect(apps.remove('shop')).resolves.toBe(false);
  });
});
