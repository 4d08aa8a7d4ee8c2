// Every registry change appends one event, followers read them in order, and a follower that fell behind the stream is told to resynchronise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, type RedisClient } from '../../common/redis-connection.js';
import { currentEventId, readEvents } from '../../registry/store/event-stream.js';
import { RegistryStore } from '../../registry/store/registry-store.js';
import type { RegistryEvent } from '../../sdk/types.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
const connections: RedisClient[] = [];

async function ready(options: { blocking?: boolean } = {}): Promise<RedisClient> {
  const c = connectRedis({ url: redis.url, sentinels: [], sentinelName: 'mymaster', clusterNodes: [], commandTimeoutMs: 5000 }, { name: 'test', ...options });
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

describe('event stream', () => {
  it('records each change once, in order, with instance, service, machine and epoch', async () => {
    const store = new RegistryStore(await ready(), { keyPrefix: testPrefix(), leaseMs: 200 });
    const reader = await ready({ blocking: true });
    const start = await currentEventId(reader, store.keys);
    expect(start).toBe('0-0');

    const a = await store.register({ service: 'pay', path: '/pay' });
    const claim = await store.claim({ service: 'pay', machine: 'm1', port: 4001 });
    await store.renew({ service: 'pay', id: a.id, machine: 'm1', epoch: claim.epoch });
    await store.markRunning({ service: 'pay', id: a.id, machine: 'm1', epoch: claim.epoch, pid: 10 });
    // A repeated report is not a change; a restart in place (a new process, counted) is announced again.
    await store.markRunning({ service: 'pay', id: a.id, machine: 'm1', epoch: claim.epoch, pid: 10, restarts: 0 });
    await store.markRunning({ service: 'pay', id: a.id, machine: 'm1', epoch: claim.epoch, pid: 11, restarts: 1 });
    await store.release({ service: 'pay', id: a.id, machine: 'm1', epoch: claim.epoch, reason: 'crash_loop' });
    const again = await store.claim({ service: 'pay', machine: 'm2', port: 4002 });
    await waitFor(async () => (await store.reapExpired()).length === 1, { what: 'reap' });
    await store.unregister('pay', a.id);
    await store.heartbeat('m1', { cpus: 2 });
    await store.heartbeat('m1', { cpus: 2 });

    const batch = await readEvents(reader, store.keys, start, { blockMs: 100, count: 100 });
    expect(batch.resync).toBe(false);
    const slim = batch.events.map(({ id: _id, ...rest }) => rest);
    expect(slim).toEqual([
      { kind: 'registered', instance: a.id, service: 'pay', epoch: 0 },
      { kind: 'claimed', instance: a.id, service: 'pay', epoch: claim.epoch, machine: 'm1' },
      { kind: 'running', instance: a.id, service: 'pay', epoch: claim.epoch, machine: 'm1' },
      { kind: 'running', instance: a.id, service: 'pay', epoch: claim.epoch, machine: 'm1' },
      { kind: 'released', instance: a.id, service: 'pay', epoch: claim.epoch, machine: 'm1', reason: 'crash_loop' },
      { kind: 'claimed', instance: a.id, service: 'pay', epoch: again.epoch, machine: 'm2' },
      { kind: 'expired', instance: a.id, service: 'pay', epoch: again.epoch, machine: 'm2', reason: 'lease_expired' },
      { kind: 'unregistered', instance: a.id, service: 'pay', epoch: again.epoch },
      { kind: 'machine-joined', machine: 'm1' },
    ]);
  });

  it('a blocking read wakes as soon as an event is appended', async () => {
    const store = new RegistryStore(await ready(), { keyPrefix: testPrefix() });
    const reader = await ready({ blocking: true });
    const from = await currentEventId(reader, store.keys);
    const pending = readEvents(reader, store.keys, from, { blockMs: 5000, count: 10 });
    const started = Date.now();
    await store.register({ service: 'pay', path: '/pay' });
    const batch = await pending;
    expect(batch.events.map((e) => e.kind)).toEqual(['registered']);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('tells a follower older than the stream keeps to resynchronise', async () => {
    const store = new RegistryStore(await ready(), { keyPrefix: testPrefix(), eventsMaxLength: 10 });
    const reader = await ready({ blocking: true });
    await store.register({ service: 'pay', path: '/pay' });
    const first = (await readEvents(reader, store.keys, '0-0', { blockMs: 100, count: 1 })).events[0]!.id;
    // Approximate trimming drops whole stream nodes (100 entries by default): write well past one.
    for (let i = 0; i < 400; i++) await store.register({ service: 'pay', path: '/pay' });
    const behind = await readEvents(reader, store.keys, first, { blockMs: 100, count: 10 });
    expect(behind.resync).toBe(true);
    const now = await currentEventId(reader, store.keys);
    expect((await readEvents(reader, store.keys, now, { blockMs: 50, count: 10 })).resync).toBe(false);
  });

  it('tells a follower to resynchronise when Redis lost its data', async () => {
    const prefix = testPrefix();
    const store = new RegistryStore(await ready(), { keyPrefix: prefix });
    const reader = await ready({ blocking: true });
    await store.register({ service: 'pay', path: '/pay' });
    const seen = await currentEventId(reader, store.keys);
    const c = redis.client();
    await c.del(...(await c.keys(`{${prefix}}:*`)));
    expect((await readEvents(reader, store.keys, seen, { blockMs: 50, count: 10 })).resync).toBe(true);
    await store.register({ service: 'pay', path: '/pay' });
    // The recreated stream's ids may be lower than what the follower saw: still a resync.
    expect((await readEvents(reader, store.keys, seen, { blockMs: 50, count: 10 })).resync).toBe(true);
  });

  it('streams events over GET /v1/events to the SDK, from now or from a given id', async () => {
    const fixture = await startTestRegistry(redis);
    try {
      const abort = new AbortController();
      const received: RegistryEvent[] = [];
      const following = (async () => {
        for await (const e of fixture.client.events({ signal: abort.signal })) {
          if (e.kind !== 'resync') received.push(e as RegistryEvent);
        }
      })().catch(() => undefined);
      // The follower starts from "now": wait until it is connected before changing anything.
      await waitFor(async () => {
        await fixture.client.registerInstance('probe', { path: '/probe' });
        return received.length > 0;
      }, { what: 'SSE follower to connect' });
      const inst = await fixture.client.registerInstance('pay', { path: '/pay' });
      await waitFor(() => received.some((e) => e.instance === inst.id), { what: 'registered event over SSE' });
      abort.abort();
      await following;

      // Replaying from the first event gives the same events again, in order.
      const replay: RegistryEvent[] = [];
      const abort2 = new AbortController();
      const replaying = (async () => {
        for await (const e of fixture.client.events({ from: received[0]!.id, signal: abort2.signal })) replay.push(e as RegistryEvent);
      })().catch(() => undefined);
      await waitFor(() => replay.some((e) => e.instance === inst.id), { what: 'replayed events' });
      abort2.abort();
      await replaying;
      const after = received.slice(1).map((e) => e.id);
      expect(replay.slice(0, after.length).map((e) => e.id)).toEqual(after);
    } finally {
      await fixture.close();
    }
  });
});
