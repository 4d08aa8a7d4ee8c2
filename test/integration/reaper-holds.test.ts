// The reaper holds lease expiries when the evidence says the control plane was away, not the holders: after a gap in its own ticks (Redis frozen with SIGSTOP) and while most machines holding claims are silent; a lone silent machine is expired as before, and a held lease whose holder's grace ran out is expired during the hold.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, type RedisClient } from '../../common/redis-connection.js';
import { startReaper } from '../../registry/reaper.js';
import { RegistryStore, SILENT_AFTER_MS } from '../../registry/store/registry-store.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
const connections: RedisClient[] = [];

async function store(prefix: string, leaseMs: number): Promise<RegistryStore> {
  const c = connectRedis({ url: redis.url, sentinels: [], sentinelName: 'mymaster', clusterNodes: [], commandTimeoutMs: 1000 }, { name: 'test' });
  connections.push(c);
  await waitFor(() => c.status === 'ready', { what: 'redis connection' });
  return new RegistryStore(c, { keyPrefix: prefix, leaseMs });
}

/** A logger whose messages the test reads. */
function capturingLogger(): { logger: pino.Logger; messages: string[] } {
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) messages.push((JSON.parse(line) as { msg: string }).msg);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), messages };
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const c of connections) await closeRedis(c);
  await redis.stop();
});

describe('reaper holds', () => {
  it('after Redis was frozen for longer than a lease, expires nothing for a lease: the holder renews first', async () => {
    const leaseMs = 1500;
    const s = await store(testPrefix(), leaseMs);
    const { logger, messages } = capturingLogger();
    const reaper = startReaper({ store: s, logger, intervalMs: 100 });
    try {
      const renewed = await s.register({ service: 'pay', path: '/pay' });
      const abandoned = await s.register({ service: 'pay', path: '/pay' });
      const a = await s.claim({ service: 'pay', machine: 'm1', port: 4001, instanceId: renewed.id });
      await s.claim({ service: 'pay', machine: 'm2', port: 4002, instanceId: abandoned.id });
      const inspect = redis.client();
      await waitFor(async () => Number(await inspect.hget(s.keys.reaperState, 'lastTick')) > 0, { what: 'a reaper tick' });

      redis.freeze();
      await new Promise((r) => setTimeout(r, leaseMs + 1000));
      redis.thaw();
      // Both leases ended during the freeze; the reaper's first tick after it sees the gap.
      await waitFor(() => messages.some((m) => /^holding lease expiries for \d+ ms: the reaper did not run for \d+ ms/.test(m)), { deadlineMs: 5000, what: 'the hold' });
      expect(await s.renew({ service: 'pay', id: renewed.id, machine: 'm1', epoch: a.epoch })).toMatchObject({ state: 'claimed' });
      expect((await s.getInstance(abandoned.id)).state).toBe('claimed');
      // One lease later the one nobody renewed expires; the renewed one does not.
      await waitFor(async () => (await s.getInstance(abandoned.id)).state === 'unclaimed', { deadlineMs: leaseMs + 5000, what: 'the abandoned lease to expire after the hold' });
      expect((await s.getInstance(abandoned.id)).reason).toBe('lease_expired');
      expect((await s.getInstance(renewed.id)).epoch).toBe(a.epoch);
      expect(messages).toContain('lease expiries resume: the hold on them ended');
    } finally {
      await reaper.close();
    }
  });

  it('holds while more than half of the machines holding claims are silent; a held lease goes once its holder’s grace ran out', async () => {
    // Holds last a lease (2 s) past the last round that saw the silence; the claims' own leases
    // end after the silence shows (SILENT_AFTER_MS), as a hoster's do.
    const s = await store(testPrefix(), 2000);
    const claimLeaseMs = SILENT_AFTER_MS + 1000;
    const held: Record<string, { id: string; epoch: number }> = {};
    for (const m of ['m1', 'm2', 'm3']) {
      const { id } = await s.register({ service: 'web', path: '/web' });
      held[m] = { id, epoch: (await s.claim({ service: 'web', machine: m, port: 4001, instanceId: id, leaseMs: claimLeaseMs })).epoch };
    }
    // m1 and m2 tell a grace (m2 a short one); all three are present, then only m3 keeps on.
    await s.markPresent('m1', 60_000, true, claimLeaseMs);
    await s.markPresent('m2', 700, true, claimLeaseMs);
    await s.markPresent('m3', 60_000, true, claimLeaseMs);
    expect((await s.reapRound()).hold).toMatchObject({ msLeft: 0, reason: '' });
    const m3 = setInterval(() => {
      void s.markPresent('m3', 60_000, true, claimLeaseMs).catch(() => undefined);
      void s.renew({ service: 'web', id: held.m3!.id, machine: 'm3', epoch: held.m3!.epoch, leaseMs: claimLeaseMs }).catch(() => undefined);
    }, 100);
    const states = async () => Object.fromEntries(await Promise.all(Object.entries(held).map(async ([m, { id }]) => [m, (await s.getInstance(id)).state])));
    try {
      const round = await waitFor(async () => {
        const r = await s.reapRound();
        return r.hold.reason === 'silence' ? r : undefined;
      }, { deadlineMs: SILENT_AFTER_MS + 5000, what: 'a silence hold' });
      expect(round.hold).toMatchObject({ silent: 2, machines: 3 });
      expect(round.hold.msLeft).toBeGreaterThan(0);
      // m1's and m2's leases end while the silence lasts: held. m2's holder said its apps stop
      // 700 ms after its lease at the latest: then it goes, hold or not.
      await waitFor(async () => {
        await s.reapRound();
        return (await states()).m2 === 'unclaimed';
      }, { deadlineMs: claimLeaseMs + 5000, what: 'the lease past its holder’s grace to expire' });
      const during = await s.reapRound();
      expect(during.hold).toMatchObject({ reason: 'silence' });
      expect(during.hold.held).toBeGreaterThanOrEqual(1);
      expect(await states()).toEqual({ m1: 'claimed', m2: 'unclaimed', m3: 'claimed' });
      expect(((await s.getInstance(held.m1!.id)).leaseUntil ?? Infinity) < (await s.now())).toBe(true);
    } finally {
      clearInterval(m3);
    }
  });

  it('expires a lone silent machine’s lease as before (no hold) and no longer counts it', async () => {
    const leaseMs = 1000;
    const s = await store(testPrefix(), leaseMs);
    const ids: Record<string, string> = {};
    for (const m of ['m1', 'm2', 'm3']) {
      const { id } = await s.register({ service: 'api', path: '/api' });
      await s.claim({ service: 'api', machine: m, port: 4001, instanceId: id });
      ids[m] = id;
      await s.markPresent(m, 60_000, true);
    }
    const others = setInterval(() => {
      for (const m of ['m2', 'm3']) {
        void s.markPresent(m, 60_000, true).catch(() => undefined);
        void s.getInstance(ids[m]!).then((i) => s.renew({ service: 'api', id: i.id, machine: m, epoch: i.epoch })).catch(() => undefined);
      }
    }, 100);
    try {
      const expired = await waitFor(async () => {
        const r = await s.reapRound();
        expect(r.hold.msLeft).toBe(0);
        return r.reaped.length > 0 ? r.reaped : undefined;
      }, { deadlineMs: leaseMs + SILENT_AFTER_MS + 5000, what: 'm1’s lease to expire' });
      expect(expired).toEqual([expect.objectContaining({ id: ids.m1, machine: 'm1', outcome: 'unclaimed' })]);
      expect(await redis.client().zrange(s.keys.presence, 0, -1)).toEqual(['m2', 'm3']);
    } finally {
      clearInterval(others);
    }
  });
});
