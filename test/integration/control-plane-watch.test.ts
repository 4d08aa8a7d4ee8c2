// A hoster's control-plane watch against a real Redis frozen with SIGSTOP: alone, it judges Redis away for the whole platform; with other machines holding claims that it has no address for (they joined after it read the machines), it does not, and says why; another machine reaching Redis makes it judge itself cut off, but not one that reached Redis later only because this machine's event loop stalled before the freeze.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { closeRedis, connectRedis, type RedisClient } from '../../common/redis-connection.js';
import { ControlPlaneWatch } from '../../hoster/control-plane-grace.js';
import type { ControlPlaneReport } from '../../proxy/redis-contact.js';
import { RegistryStore } from '../../registry/store/registry-store.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const LEASE_MS = 15_000;
let redis: TestRedis;
const connections: RedisClient[] = [];

async function store(prefix: string): Promise<RegistryStore> {
  const c = connectRedis({ url: redis.url, sentinels: [], sentinelName: 'mymaster', clusterNodes: [], commandTimeoutMs: 1000 }, { name: 'test' });
  connections.push(c);
  await waitFor(() => c.status === 'ready', { what: 'redis connection' });
  return new RegistryStore(c, { keyPrefix: prefix, leaseMs: LEASE_MS });
}

/** A watch for m1, holding one claim, asking the given (fake) proxies. */
function watch(s: RegistryStore, ask?: (origin: string) => ControlPlaneReport): ControlPlaneWatch {
  return new ControlPlaneWatch({
    machine: 'm1',
    store: s,
    logger: silentLogger(),
    graceMs: 60_000,
    leaseMs: LEASE_MS,
    stopGraceMs: 1000,
    holding: () => 1,
    onChange: () => undefined,
    onBack: () => undefined,
    ask: async (origin) => {
      if (!ask) throw new Error('no such proxy');
      return ask(origin);
    },
  });
}

/** Freezes Redis until `fn` is done, then lets it answer again. */
async function frozen<T>(fn: () => Promise<T>): Promise<T> {
  redis.freeze();
  try {
    return await fn();
  } finally {
    redis.thaw();
  }
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const c of connections) await closeRedis(c);
  await redis.stop();
});

describe('control-plane watch', () => {
  it('alone: Redis is away for the whole platform', async () => {
    const s = await store(testPrefix());
    await s.reapRound({ intervalMs: 200 });
    const w = watch(s);
    w.start();
    try {
      await waitFor(async () => (await w.refresh(), w.reachedAt !== undefined && (await s.presentMachines()).includes('m1')), { what: 'its presence' });
      const verdict = await frozen(() => waitFor(() => (w.verdict?.kind === 'away' ? w.verdict : undefined), { deadlineMs: 10_000, what: 'a verdict of away' }));
      expect(verdict.why).toMatch(/^no other machine: Redis is away for the whole platform/);
      expect(w.extendedUntil(performance.now())).toBeGreaterThan(performance.now());
    } finally {
      await w.close();
    }
  });

  it('other machines hold claims that it has no address for: no verdict of away', async () => {
    const s = await store(testPrefix());
    await s.reapRound({ intervalMs: 200 });
    const w = watch(s);
    w.start();
    try {
      await waitFor(async () => (await w.refresh(), w.reachedAt !== undefined), { what: 'its presence' });
      // They join after it read the machines: only Redis's count tells of them.
      await s.markPresent('m2', 60_000, true);
      await s.markPresent('m3', 60_000, true);
      const at = performance.now();
      await waitFor(() => (w.reachedAt ?? 0) > at, { what: 'a presence written after they joined' });
      // The first verdict past the early ones comes when a verdict of away would.
      const verdict = await frozen(() =>
        waitFor(() => (w.verdict !== undefined && !(w.verdict.kind === 'unsure' && w.verdict.early) ? w.verdict : undefined), { deadlineMs: 10_000, what: 'a verdict past the early ones' }),
      );
      expect(verdict).toMatchObject({ kind: 'unsure' });
      expect(verdict.why).toContain('1 of 3 machines holding claims are silent');
      expect(w.extendedUntil(performance.now())).toBeUndefined();
    } finally {
      await w.close();
    }
  });

  it("machines that took their first claims after it read the machines: their proxies' tables tell it, and Redis is away for all", async () => {
    const s = await store(testPrefix());
    await s.reapRound({ intervalMs: 200 });
    for (const m of ['m2', 'm3']) await s.heartbeat(m, { proxy: `http://10.255.255.${m === 'm2' ? 2 : 3}:9`, instances: 0 });
    let frozenAt = Infinity;
    let tablesTell = false;
    // Their proxies (faked) fail since the freeze; with tablesTell, their tables list instances.
    const w = watch(s, (origin) => ({
      machine: origin.includes('.2:') ? 'm2' : 'm3',
      redis: { reachedAgoMs: Math.round(performance.now() - frozenAt), failedAgoMs: 100, probeEveryMs: 250 },
      ...(tablesTell ? { localInstances: 1 } : {}),
    }));
    w.start();
    try {
      await waitFor(async () => (await w.refresh(), w.reachedAt !== undefined), { what: 'its presence' });
      const machines = await s.listMachines();
      await s.markPresent('m2', 60_000, true);
      await s.markPresent('m3', 60_000, true);
      const at = performance.now();
      await waitFor(() => (w.reachedAt ?? 0) > at, { what: 'a presence written after they took claims' });
      redis.freeze();
      frozenAt = performance.now();
      try {
        // What it knew of them is from before their claims (Redis cannot be read again now).
        w.setPeers(machines, Date.now(), ['m1']);
        // Once their silence tells, they are silent but not known to hold claims: Redis's count of 3 is against.
        await waitFor(() => w.verdict?.kind === 'unsure' && w.verdict.why.includes('1 of 3 machines holding claims are silent'), {
          deadlineMs: 10_000,
          what: 'the verdict that counts them against',
        });
        // It stays so (no verdict of away in the next rounds).
        const until = performance.now() + 1500;
        await waitFor(() => {
          expect(w.verdict?.kind).toBe('unsure');
          return performance.now() > until;
        }, { deadlineMs: 10_000, what: 'rounds to pass' });
        tablesTell = true;
        const away = await waitFor(() => (w.verdict?.kind === 'away' ? w.verdict : undefined), { deadlineMs: 10_000, what: 'a verdict of away' });
        expect(away.why).toContain('3 of 3 machines holding claims are silent');
      } finally {
        redis.thaw();
      }
    } finally {
      await w.close();
    }
  });

  it('another machine reached Redis after this one lost it: cut off', async () => {
    const s = await store(testPrefix());
    await s.reapRound({ intervalMs: 200 });
    await s.heartbeat('m2', { proxy: 'http://10.255.255.1:9', instances: 1 });
    await s.markPresent('m2', 60_000, true);
    // m2's proxy (faked) reached Redis 100 ms ago, whatever this machine sees.
    const w = watch(s, () => ({ machine: 'm2', redis: { reachedAgoMs: 100, failedAgoMs: null, probeEveryMs: 250 } }));
    w.start();
    try {
      await waitFor(async () => (await w.refresh(), w.reachedAt !== undefined), { what: 'its presence' });
      const verdict = await frozen(() => waitFor(() => (w.verdict?.kind === 'cut_off' ? w.verdict : undefined), { deadlineMs: 10_000, what: 'a verdict of cut off' }));
      expect(verdict.why).toMatch(/^m2 reached Redis 1\d\d ms ago/);
      expect(w.extendedUntil(performance.now())).toBeUndefined();
    } finally {
      await w.close();
    }
  });
  it('its event loop stalled across the moment Redis froze: the proxies PINGed Redis later than it last wrote, and that is no cut', async () => {
    const s = await store(testPrefix());
    await s.reapRound({ intervalMs: 200 });
    await s.heartbeat('m2', { proxy: 'http://10.255.255.1:9', instances: 1 });
    await s.markPresent('m2', 60_000, true);
    let frozenAt = Infinity;
    // m2's proxy (faked) reached Redis until it froze, and fails since.
    const w = watch(s, () => ({ machine: 'm2', redis: { reachedAgoMs: Math.round(performance.now() - frozenAt), failedAgoMs: 100, probeEveryMs: 250 } }));
    w.start();
    try {
      await waitFor(async () => (await w.refresh(), w.reachedAt !== undefined), { what: 'its presence' });
      // A busy event loop: no presence write for 1.2 s, then Redis freezes before the next one goes out.
      const until = performance.now() + 1200;
      while (performance.now() < until);
      frozenAt = performance.now();
      // m2's silence tells 1.2 s after this machine's: the verdict is away once it does.
      const verdict = await frozen(() =>
        waitFor(() => (w.verdict?.kind === 'away' ? w.verdict : undefined), { deadlineMs: 10_000, what: 'a verdict of away' }).catch((err: Error) => {
          throw new Error(`${err.message}; the last verdict: ${w.verdict?.kind}: ${w.verdict?.why}`);
        }),
      );
      expect(verdict.why).toMatch(/^Redis is away for every machine that answers/);
      expect(w.reachedAt!).toBeLessThan(frozenAt - 1000);
    } finally {
      await w.close();
    }
  });
});
