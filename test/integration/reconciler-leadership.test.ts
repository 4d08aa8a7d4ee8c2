// Two reconcilers never double-register: the count-and-add is one script, and only one registry leads at a time, handing over when the leader goes.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, type RedisClient } from '../../common/redis-connection.js';
import { RegistryStore } from '../../registry/store/registry-store.js';
import { startRedisBackend, type TestRedisBackend } from '../helpers/test-redis-backend.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedisBackend;
const connections: RedisClient[] = [];

async function store(prefix: string): Promise<RegistryStore> {
  const c = connectRedis(redis.settings(5000), { name: 'test' });
  connections.push(c);
  await waitFor(() => c.status === 'ready', { what: 'redis connection' });
  return new RegistryStore(c, { keyPrefix: prefix });
}

beforeAll(async () => {
  redis = await startRedisBackend();
});

afterAll(async () => {
  for (const c of connections) await closeRedis(c);
  await redis.stop();
});

describe('reconciler races', () => {
  it('twenty concurrent registerMissing calls for 7 wanted register exactly 7', async () => {
    const prefix = testPrefix();
    const stores = await Promise.all(Array.from({ length: 20 }, () => store(prefix)));
    const added = await Promise.all(
      stores.map((s) => s.registerMissing({ service: 'web', path: '/web', release: 1, wanted: 7, attributes: {}, files: 'a'.repeat(64) })),
    );
    expect(added.flat()).toHaveLength(7);
    expect(await stores[0]!.instancesOf('web')).toHaveLength(7);
    // Retiring ones do not count as live: the release is topped up again.
    const [first] = await stores[0]!.instancesOf('web');
    expect(await stores[0]!.retire('web', first!.id, 1000, 'scaled_down')).toBe('removed');
    expect(await stores[1]!.registerMissing({ service: 'web', path: '/web', release: 1, wanted: 7, attributes: {}, files: 'a'.repeat(64) })).toHaveLength(1);
  });

  it('two registries reconcile one app without ever registering more than wanted, and the second takes over when the leader stops', async () => {
    const shared = testPrefix();
    const overrides = { keyPrefix: shared, reconcileIntervalMs: 20 };
    const a: RegistryFixture = await startTestRegistry(redis, overrides);
    const b: RegistryFixture = await startTestRegistry(redis, overrides);
    try {
      await waitFor(() => a.daemon.reconciler.isLeader !== b.daemon.reconciler.isLeader, { what: 'one leader' });
      const bytes = randomBytes(512);
      const digest = createHash('sha256').update(bytes).digest('hex');
      await a.client.uploadBundle(digest, bytes);
      await a.client.publishApp({ name: 'twice', path: '/twice', instances: 5, bundle: digest });
      let most = 0;
      const deadline = Date.now() + 1500;
      while (Date.now() < deadline) {
        most = Math.max(most, (await a.daemon.store.instancesOf('twice')).length);
        expect(a.daemon.reconciler.isLeader && b.daemon.reconciler.isLeader).toBe(false);
      }
      expect(most).toBe(5);

      const [leader, follower] = a.daemon.reconciler.isLeader ? [a, b] : [b, a];
      await leader.close();
      await waitFor(() => follower.daemon.reconciler.isLeader, { deadlineMs: 10_000, what: 'the other registry to lead' });
      await follower.client.scaleApp('twice', { instances: 6 });
      await waitFor(async () => (await follower.daemon.store.instancesOf('twice')).length === 6, { what: 'the new leader to act' });
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('retirement', () => {
  it('walks a running instance through draining and stopping; the holder confirms the stop', async () => {
    const s = await store(testPrefix());
    const [id] = await s.registerMissing({ service: 'web', path: '/web', release: 1, wanted: 1, attributes: {}, files: 'b'.repeat(64) });
    const held = await s.claim({ service: 'web', machine: 'm1', port: 4001 });
    await s.markRunning({ service: 'web', id: id!, machine: 'm1', epoch: held.epoch, pid: 9 });

    expect(await s.retire('web', id!, 300, 'replaced')).toBe('draining');
    const draining = await s.getInstance(id!);
    expect(draining).toMatchObject({ state: 'draining', reason: 'replaced' });
    expect(draining.drainUntil).toBeGreaterThan(0);
    // Not yet: the drain time has not passed.
    expect(await s.retire('web', id!, 300, 'replaced')).toBe('draining');
    await expect(s.markRunning({ service: 'web', id: id!, machine: 'm1', epoch: held.epoch, pid: 9 })).rejects.toMatchObject({ code: 'invalid_state' });
    await expect(s.confirmStopped({ service: 'web', id: id!, machine: 'm1', epoch: held.epoch })).rejects.toMatchObject({ code: 'invalid_state' });

    await waitFor(async () => (await s.retire('web', id!, 300, 'replaced')) === 'stopping', { what: 'drain to end' });
    await expect(s.confirmStopped({ service: 'web', id: id!, machine: 'm2', epoch: held.epoch })).rejects.toMatchObject({ code: 'stale_epoch' });
    await s.confirmStopped({ service: 'web', id: id!, machine: 'm1', epoch: held.epoch });
    expect(await s.instancesOf('web')).toEqual([]);
    expect(await s.listServices()).toEqual([]);
  });

  it('removes a retiring instance whose holder died (lease expired) instead of offering it again', async () => {
    const s = await store(testPrefix());
    const [id] = await s.registerMissing({ service: 'web', path: '/web', release: 1, wanted: 1, attributes: {}, files: 'c'.repeat(64) });
    const held = await s.claim({ service: 'web', machine: 'm1', port: 4001, leaseMs: 1000 });
    expect(await s.retire('web', id!, 0, 'scaled_down')).toBe('stopping');
    const reaped = await waitFor(async () => {
      const r = await s.reapExpired();
      return r.length > 0 ? r : undefined;
    }, { what: 'lease expiry' });
    expect(reaped).toEqual([{ id, service: 'web', machine: 'm1', epoch: held.epoch, outcome: 'removed' }]);
    expect(await s.listUnclaimed()).toEqual([]);
    expect(await s.instancesOf('web')).toEqual([]);
  });

  it('a release for a crash records the machine; a release of a retiring instance removes it', async () => {
    const s = await store(testPrefix());
    await s.registerMissing({ service: 'web', path: '/web', release: 1, wanted: 1, attributes: {}, files: 'd'.repeat(64) });
    const a = await s.claim({ service: 'web', machine: 'm1', port: 4001 });
    const crashed = await s.release({ service: 'web', id: a.id, machine: 'm1', epoch: a.epoch, reason: 'crash_loop' });
    expect(crashed).toMatchObject({ state: 'unclaimed', failedOn: ['m1'], reason: 'crash_loop' });
    const again = await s.claim({ service: 'web', machine: 'm2', port: 4002 });
    expect(again.id).toBe(a.id);
    const twice = await s.release({ service: 'web', id: a.id, machine: 'm2', epoch: again.epoch, reason: 'unhealthy' });
    expect(twice!.failedOn).toEqual(['m1', 'm2']);
    // An ordinary hand-back is no failure.
    const third = await s.claim({ service: 'web', machine: 'm3', port: 4003 });
    expect((await s.release({ service: 'web', id: a.id, machine: 'm3', epoch: third.epoch, reason: 'evacuating' }))!.failedOn).toEqual(['m1', 'm2']);

    await s.registerMissing({ service: 'api', path: '/api', release: 1, wanted: 1, attributes: {}, files: 'd'.repeat(64) });
    const b = await s.claim({ service: 'api', machine: 'm3', port: 4004 });
    await s.retire('api', b.id, 0, 'scaled_down');
    expect(await s.release({ service: 'api', id: b.id, machine: 'm3', epoch: b.epoch, reason: 'evacuating' })).toBeNull();
    await expect(s.getInstance(b.id)).rejects.toMatchObject({ code: 'instance_not_found' });
  });
});

describe('bundle collection', () => {
  it('deletes bundles no release uses once past the grace period, and keeps every used one', async () => {
    const f = await startTestRegistry(redis, { bundleGraceMs: 1 });
    try {
      const upload = async () => {
        const bytes = randomBytes(256);
        const digest = createHash('sha256').update(bytes).digest('hex');
        await f.client.uploadBundle(digest, bytes);
        return digest;
      };
      const [v1, v2, unused] = [await upload(), await upload(), await upload()];
      await f.client.publishApp({ name: 'keep', path: '/keep', instances: 0, bundle: v1 });
      await f.client.updateApp('keep', { bundle: v2 });
      const deleted = await f.daemon.reconciler.collectBundles();
      expect(deleted).toEqual([unused]);
      expect(await f.client.hasBundle(v1)).toBe(true);
      expect(await f.client.hasBundle(v2)).toBe(true);
      expect(await f.client.hasBundle(unused)).toBe(false);
    } finally {
      await f.close();
    }
  });
});
