// Every seed registry call works through REST and the SDK: register, get, list, list unclaimed, claim, unregister (by id and by match), plus running, renew, release and machines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthClient } from '../../sdk/berth-client.js';
import { startRedisBackend, type TestRedisBackend } from '../helpers/test-redis-backend.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';

let redis: TestRedisBackend;
let fixture: RegistryFixture;
let client: BerthClient;

beforeAll(async () => {
  redis = await startRedisBackend();
  fixture = await startTestRegistry(redis);
  client = fixture.client;
});

afterAll(async () => {
  await fixture.close();
  await redis.stop();
});

const digest = 'a'.repeat(64);

describe('registry REST API through the SDK', () => {
  it('walks an instance through its whole life', async () => {
    const a = await client.registerInstance('payments', { path: '/payments', attributes: { minMemoryMb: 256 }, files: digest });
    const b = await client.registerInstance('payments', { path: '/payments' });
    const c = await client.registerInstance('mailer', { path: '/email' });
    expect(a).toMatchObject({ service: 'payments', path: '/payments', state: 'unclaimed', attributes: { minMemoryMb: 256 }, files: digest, epoch: 0 });

    expect(await client.listServices()).toEqual(['mailer', 'payments']);
    expect((await client.listUnclaimedServices()).sort()).toEqual(['mailer', 'payments', 'payments']);
    expect((await client.getServiceInfo('payments')).map((i) => i.id)).toEqual([a.id, b.id]);

    const claimed = await client.claimService('payments', { machine: 'abc', host: '10.0.0.5', port: 4001, attributes: { zone: 'a' } });
    expect(claimed).toMatchObject({ id: a.id, state: 'claimed', machine: 'abc', host: '10.0.0.5', port: 4001, claimAttributes: { zone: 'a' } });
    expect(claimed.epoch).toBeGreaterThan(0);
    expect(claimed.leaseUntil).toBeGreaterThan(Date.now() - 5000);
    expect(await client.listUnclaimedServices()).toEqual(['payments', 'mailer']);

    const running = await client.markRunning('payments', a.id, { machine: 'abc', epoch: claimed.epoch, pid: 4242 });
    expect(running).toMatchObject({ state: 'running', pid: 4242, restarts: 0 });
    // Its holder restarted it in place: the same claim, a new process, the count it sends.
    expect(await client.markRunning('payments', a.id, { machine: 'abc', epoch: claimed.epoch, pid: 4243, restarts: 1 })).toMatchObject({ state: 'running', pid: 4243, restarts: 1 });
    const until = await client.renewLease('payments', a.id, { machine: 'abc', epoch: claimed.epoch, leaseMs: 60_000 });
    expect(until).toBeGreaterThan(claimed.leaseUntil!);
    expect(await client.getInstance('payments', a.id)).toMatchObject({ state: 'running', leaseUntil: until });

    const released = await client.releaseInstance('payments', a.id, { machine: 'abc', epoch: claimed.epoch, reason: 'evacuating' });
    expect(released).toMatchObject({ state: 'unclaimed', machine: null, port: null, reason: 'evacuating' });
    await expect(client.renewLease('payments', a.id, { machine: 'abc', epoch: claimed.epoch })).rejects.toMatchObject({
      code: 'stale_epoch',
      status: 409,
    });

    // UnregisterInstance(service, path, host, port) removes a single matching instance.
    const again = await client.claimService('payments', { machine: 'abc', port: 4002 });
    const removed = await client.unregisterMatching('payments', { path: '/payments', host: 'abc', port: 4002 });
    expect(removed.id).toBe(again.id);
    await expect(client.unregisterMatching('payments', { path: '/payments', port: 9 })).rejects.toMatchObject({ code: 'instance_not_found' });

    const remaining = [a.id, b.id].find((id) => id !== again.id)!;
    await client.unregisterInstance('payments', remaining);
    await expect(client.getServiceInfo('payments')).rejects.toMatchObject({ code: 'service_not_found', status: 404 });
    expect(await client.listServices()).toEqual(['mailer']);
    await client.unregisterInstance('mailer', c.id);
    expect(await client.listServices()).toEqual([]);
    expect(await client.listUnclaimedServices()).toEqual([]);
  });

  it('answers 409 nothing_to_claim when every instance is taken', async () => {
    await client.registerInstance('solo', { path: '/solo' });
    await client.claimService('solo', { machine: 'm1', port: 4100 });
    await expect(client.claimService('solo', { machine: 'm2', port: 4101 })).rejects.toMatchObject({ code: 'nothing_to_claim', status: 409 });
  });

  it('a claim whose reply is lost is retried by the SDK without claiming twice', async () => {
    await client.registerInstance('lossy', { path: '/lossy' });
    await client.registerInstance('lossy', { path: '/lossy' });
    let dropped = 0;
    // The request really reaches the registry; only its reply is thrown away, once.
    const losingFetch: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input).endsWith('/claim') && dropped === 0) {
        dropped++;
        await res.arrayBuffer();
        throw new TypeError('fetch failed: connection reset before the reply');
      }
      return res;
    };
    const sdk = new BerthClient({ url: fixture.daemon.url, token: fixture.token, fetch: losingFetch, retries: 2 });
    const claimed = await sdk.claimService('lossy', { machine: 'm1', port: 4200 });
    expect(dropped).toBe(1);
    const instances = await client.getServiceInfo('lossy');
    expect(instances.filter((i) => i.state === 'claimed').map((i) => i.id)).toEqual([claimed.id]);
    expect(instances.filter((i) => i.state === 'unclaimed')).toHaveLength(1);
  });

  it('lists machines by their heartbeats', async () => {
    await fixture.daemon.store.heartbeat('machine-1', { proxy: 'http://10.0.0.1:8080', cpus: 2, memoryMb: 2048, load: 0.1 });
    const machines = await client.listMachines();
    expect(machines).toHaveLength(1);
    expect(machines[0]).toMatchObject({ name: 'machine-1', facts: { proxy: 'http://10.0.0.1:8080', cpus: 2 } });
  });

  it('answers /healthz without a token', async () => {
    const res = await fetch(`${fixture.daemon.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });
});
