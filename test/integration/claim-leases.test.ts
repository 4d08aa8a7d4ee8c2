// Claims never race: concurrent claimers each get distinct instances, leases expire and fence.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, closeRedis, type RedisClient } from '../../common/redis-connection.js';
import { RegistryStore } from '../../registry/store/registry-store.js';
import { startRedisBackend, type TestRedisBackend } from '../helpers/test-redis-backend.js';
import { testPrefix } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedisBackend;
const connections: RedisClient[] = [];

function connection(): RedisClient {
  const c = connectRedis(
    redis.settings(5000),
    { name: 'test' },
  );
  connections.push(c);
  return c;
}

async function readyStore(prefix: string, options: { leaseMs?: number } = {}): Promise<RegistryStore> {
  const c = connection();
  await waitFor(() => c.status === 'ready', { what: 'redis connection' });
  return new RegistryStore(c, { keyPrefix: prefix, ...options });
}

beforeAll(async () => {
  redis = await startRedisBackend();
});

afterAll(async () => {
  for (const c of connections) await closeRedis(c);
  await redis.stop();
});

describe('claims', () => {
  it('gives each of 500 instances to exactly one of 12 concurrent claimers; the rest get nothing_to_claim', async () => {
    const prefix = testPrefix();
    const admin = await readyStore(prefix);
    const registered = new Set<string>();
    for (let i = 0; i < 500; i++) registered.add((await admin.register({ service: 'pay', path: '/pay' })).id);

    const claimers = await Promise.all(Array.from({ length: 12 }, () => readyStore(prefix)));
    const won = new Map<string, string>();
    const epochs: number[] = [];
    let losses = 0;
    await Promise.all(
      claimers.map(async (store, n) => {
        for (;;) {
          try {
            const inst = await store.claim({ service: 'pay', machine: `m${n}`, port: 4000 + n });
            expect(won.has(inst.id), `instance ${inst.id} claimed twice`).toBe(false);
            won.set(inst.id, `m${n}`);
            epochs.push(inst.epoch);
          } catch (err) {
            expect((err as { code?: string }).code).toBe('nothing_to_claim');
            losses++;
            return;
          }
        }
      }),
    );
    expect(won.size).toBe(500);
    expect(new Set(won.keys())).toEqual(registered);
    expect(new Set(epochs).size).toBe(500);
    expect(losses).toBe(12);
    expect(await admin.listUnclaimed()).toEqual([]);
    // Work was spread: more than one claimer won something.
    expect(new Set(won.values()).size).toBeGreaterThan(1);
  });

  it('re-claims after a release with a strictly higher epoch', async () => {
    const store = await readyStore(testPrefix());
    const { id } = await store.register({ service: 'mail', path: '/email' });
    let last = 0;
    for (let round = 0; round < 5; round++) {
      const inst = await store.claim({ service: 'mail', machine: `m${round % 2}`, port: 5000 });
      expect(inst.id).toBe(id);
      expect(inst.epoch).toBeGreaterThan(last);
      last = inst.epoch;
      await store.release({ service: 'mail', id, machine: inst.machine!, epoch: inst.epoch, reason: 'test' });
    }
  });

  it('answers service_not_found for a service with no instances', async () => {
    const store = await readyStore(testPrefix());
    await expect(store.claim({ service: 'ghost', machine: 'm1', port: 1 })).rejects.toMatchObject({ code: 'service_not_found' });
  });

  it('a retried claim (same request id, lost reply) returns the same claim, not a second one', async () => {
    const store = await readyStore(testPrefix());
    await store.register({ service: 'pay', path: '/pay' });
    await store.register({ service: 'pay', path: '/pay' });
    const first = await store.claim({ service: 'pay', machine: 'm1', port: 4001, requestId: 'req-0001' });
    const retry = await store.claim({ service: 'pay', machine: 'm1', port: 4001, requestId: 'req-0001' });
    expect(retry.id).toBe(first.id);
    expect(retry.epoch).toBe(first.epoch);
    expect((await store.listUnclaimed()).length).toBe(1);
    // A different request is a new claim.
    const other = await store.claim({ service: 'pay', machine: 'm1', port: 4002, requestId: 'req-0002' });
    expect(other.id).not.toBe(first.id);
  });

  it('claims only an instance with the requested path', async () => {
    const store = await readyStore(testPrefix());
    await store.register({ service: 'pay', path: '/pay' });
    const v2 = await store.register({ service: 'pay', path: '/pay/v2' });
    const inst = await store.claim({ service: 'pay', machine: 'm1', port: 4001, path: '/pay/v2' });
    expect(inst.id).toBe(v2.id);
    await expect(store.claim({ service: 'pay', machine: 'm1', port: 4001, path: '/pay/v2' })).rejects.toMatchObject({ code: 'nothing_to_claim' });
  });
});

describe('leases', () => {
  it('an unrenewed lease expires to unclaimed and is re-claimed with a higher epoch; the old holder is fenced', async () => {
    const store = await readyStore(testPrefix(), { leaseMs: 300 });
    const { id } = await store.register({ service: 'pay', path: '/pay' });
    const old = await store.claim({ service: 'pay', machine: 'old', port: 4001 });
    await store.markRunning({ service: 'pay', id, machine: 'old', epoch: old.epoch, pid: 1234 });
    // Its holder restarted it twice in place under this claim.
    expect(await store.markRunning({ service: 'pay', id, machine: 'old', epoch: old.epoch, pid: 1235, restarts: 2 })).toMatchObject({ pid: 1235, restarts: 2 });

    const reaped = await waitFor(async () => {
      const r = await store.reapExpired();
      return r.length > 0 ? r : undefined;
    }, { what: 'lease expiry' });
    expect(reaped).toEqual([{ id, service: 'pay', machine: 'old', epoch: old.epoch, outcome: 'unclaimed' }]);
    const after = await store.getInstance(id);
    expect(after).toMatchObject({ state: 'unclaimed', machine: null, reason: 'lease_expired' });

    const fresh = await store.claim({ service: 'pay', machine: 'new', port: 4002 });
    expect(fresh.id).toBe(id);
    expect(fresh.epoch).toBeGreaterThan(old.epoch);
    // The count is per claim: a new one starts at 0, and the old holder cannot write it.
    expect(fresh.restarts).toBe(0);
    await expect(store.renew({ service: 'pay', id, machine: 'old', epoch: old.epoch })).rejects.toMatchObject({ code: 'stale_epoch' });
    await expect(store.markRunning({ service: 'pay', id, machine: 'old', epoch: old.epoch, pid: 1, restarts: 5 })).rejects.toMatchObject({ code: 'stale_epoch' });
    expect((await store.getInstance(id)).restarts).toBe(0);
    await expect(store.release({ service: 'pay', id, machine: 'old', epoch: old.epoch, reason: 'x' })).rejects.toMatchObject({ code: 'stale_epoch' });
    // Even the right epoch from the wrong machine is refused.
    await expect(store.renew({ service: 'pay', id, machine: 'old', epoch: fresh.epoch })).rejects.toMatchObject({ code: 'stale_epoch' });
    expect(await store.renew({ service: 'pay', id, machine: 'new', epoch: fresh.epoch })).toMatchObject({ leaseUntil: expect.any(Number), state: 'claimed' });
  });

  it('a renewed lease does not expire', async () => {
    const store = await readyStore(testPrefix(), { leaseMs: 400 });
    const { id } = await store.register({ service: 'pay', path: '/pay' });
    const held = await store.claim({ service: 'pay', machine: 'm1', port: 4001 });
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      await store.renew({ service: 'pay', id, machine: 'm1', epoch: held.epoch });
      expect(await store.reapExpired()).toEqual([]);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await store.getInstance(id)).state).toBe('claimed');
  });

  it('concurrent reapers reap each expired lease exactly once', async () => {
    const prefix = testPrefix();
    const store = await readyStore(prefix, { leaseMs: 200 });
    for (let i = 0; i < 50; i++) await store.register({ service: 'pay', path: '/pay' });
    for (let i = 0; i < 50; i++) await store.claim({ service: 'pay', machine: 'm1', port: 4001 });
    const reapers = await Promise.all(Array.from({ length: 4 }, () => readyStore(prefix)));
    await waitFor(async () => (await store.getService('pay')).every((i) => (i.leaseUntil ?? 0) < Date.now() - 50), { what: 'leases to pass' });
    const results = await Promise.all(reapers.map((r) => r.reapExpired()));
    const ids = results.flat().map((r) => r.id);
    expect(ids.length).toBe(50);
    expect(new Set(ids).size).toBe(50);
    expect((await store.listUnclaimed()).length).toBe(50);
  });

  it('markRunning is idempotent and only for the holder', async () => {
    const store = await readyStore(testPrefix());
    const { id } = await store.register({ service: 'pay', path: '/pay' });
    const held = await store.claim({ service: 'pay', machine: 'm1', port: 4001 });
    const a = await store.markRunning({ service: 'pay', id, machine: 'm1', epoch: held.epoch, pid: 77 });
    const b = await store.markRunning({ service: 'pay', id, machine: 'm1', epoch: held.epoch, pid: 77 });
    expect(a.state).toBe('running');
    expect(b).toEqual(a);
    await expect(store.markRunning({ service: 'pay', id, machine: 'm2', epoch: held.epoch, pid: 77 })).rejects.toMatchObject({ code: 'stale_epoch' });
    // Naming the instance under another service names nothing, for every holder call.
    await expect(store.markRunning({ service: 'mail', id, machine: 'm1', epoch: held.epoch, pid: 77 })).rejects.toMatchObject({ code: 'instance_not_found' });
    await expect(store.renew({ service: 'mail', id, machine: 'm1', epoch: held.epoch })).rejects.toMatchObject({ code: 'instance_not_found' });
    await expect(store.release({ service: 'mail', id, machine: 'm1', epoch: held.epoch, reason: 'x' })).rejects.toMatchObject({ code: 'instance_not_found' });
    expect((await store.getInstance(id)).state).toBe('running');
  });
});
