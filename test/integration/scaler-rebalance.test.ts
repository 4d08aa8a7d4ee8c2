// Rebalance: an app at its max whose instance is the culprit of an overloaded machine is moved, make before break, to a cool machine; the copy runs before the original stops and no request through the proxies fails meanwhile.
//
// As in scaler.test.ts, the two machines' load averages are numbers the test sets (the real
// one moves over minutes and is shared); the culprit is the proxy's real CPU sampling of the
// burner.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import type { MachineLoad } from '../../common/load-source.js';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { SCALER_OPTIONS, startScaler, type ScalerDaemon } from '../../scaler/scaler-daemon.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import type { Instance } from '../../sdk/types.js';
import { burnerApp } from '../helpers/burner-app.js';
import { startTestHoster, traversableTempDir, uploadApp, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const MOVE_DEADLINE_MS = 60_000;
const TEST_TIMEOUT_MS = 120_000;
const REQUEST_TIMEOUT_MS = 5000;

let redis: TestRedis;
let registry: RegistryFixture;
let client: BerthClient;
const proxies: ProxyDaemon[] = [];
const hosters: HosterFixture[] = [];
let scaler: ScalerDaemon | undefined;
let flagDir: string;
const perCpu: Record<string, number> = { m1: 0.1, m2: 0.1 };
const loadOf = (machine: string) => (): MachineLoad => {
  const l = perCpu[machine]!;
  return { load1: l * 2, load5: l * 2, load15: l * 2, cpus: 2, perCpu: l };
};

async function machine(name: string): Promise<ProxyDaemon> {
  const proxy = await startTestProxy(redis, registry.prefix, name, {}, loadOf(name));
  proxies.push(proxy);
  // The hosters' real claim gate (1.0): an overloaded machine does not claim the copy itself.
  hosters.push(await startTestHoster(redis, registry.prefix, name, { proxyUrl: proxy.url, maxLoadPerCpu: 1.0 }, loadOf(name)));
  return proxy;
}

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis, { reconcileIntervalMs: 100, drainMs: 500, leaseMs: 3000 });
  client = registry.client;
  flagDir = traversableTempDir('berth-burn-');
});

afterAll(async () => {
  await scaler?.close();
  for (const h of hosters) await h.close({ evacuate: false });
  for (const p of proxies) await p.close();
  await registry?.close();
  await redis?.stop();
  if (flagDir) rmSync(flagDir, { recursive: true, force: true });
});

const runningOf = async (): Promise<Instance[]> => (await client.listAppInstances('burner')).filter((i) => i.state === 'running');

describe('rebalance', () => {
  it('moves the culprit of an overloaded machine to a cool one, make before break', async () => {
    const m1 = await machine('m1');
    const flag = join(flagDir, 'burn');
    writeFileSync(flag, '1');
    await client.publishApp({ name: 'burner', path: '/burner', instances: 1, bundle: await uploadApp(client, burnerApp()), env: { BURN_FLAG: flag } });
    const [original] = await waitFor(async () => {
      const r = await runningOf();
      return r.length === 1 ? r : null;
    }, { deadlineMs: 30_000, what: 'the burner running on m1' });
    expect(original!.machine).toBe('m1');
    await machine('m2');
    await client.setAutoscale('burner', { min: 1, max: 1, targetCpu: 5, cooldownUpSeconds: 0, cooldownDownSeconds: 0 });

    let failures = 0;
    let served = 0;
    let stop = false;
    const traffic = (async () => {
      while (!stop) {
        // Through m1's proxy: it forwards to m2's once the copy runs there.
        const res = await fetch(`${m1.url}/burner/`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).catch(() => null);
        if (res?.status === 200) served++;
        else failures++;
        await res?.body?.cancel();
      }
    })();

    const decisions: string[] = [];
    perCpu.m1 = 1.4;
    scaler = await startScaler(
      resolveOptions(SCALER_OPTIONS, { keyPrefix: registry.prefix, intervalMs: 300, leaseMs: 4000, reportTimeoutMs: 1500 }, { REDIS_URL: redis.url }),
      silentLogger(),
      { onDecision: (d) => decisions.push(d.cause) },
    );
    const moved = await waitFor(async () => {
      const all = await client.listAppInstances('burner');
      const running = all.filter((i) => i.state === 'running');
      return all.length === 1 && running.length === 1 && running[0]!.machine === 'm2' ? running[0] : null;
    }, { deadlineMs: MOVE_DEADLINE_MS, what: 'the burner to run on m2 only' });
    stop = true;
    await traffic;

    expect(moved.id).not.toBe(original!.id);
    // Make before break, from the event stream: the copy ran before the original was told to stop.
    const events = (await redis.client().xrange(registry.daemon.store.keys.events, '-', '+')).map(([, f]: [string, string[]]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i]!, f[2 * i + 1]!])));
    const copyRan = events.findIndex((e) => e.kind === 'running' && e.instance === moved.id);
    const originalStops = events.findIndex((e) => e.kind === 'stopping' && e.instance === original!.id);
    const originalEvacuating = events.findIndex((e) => e.kind === 'evacuating' && e.instance === original!.id);
    expect(originalEvacuating).toBeGreaterThanOrEqual(0);
    expect(copyRan).toBeGreaterThan(originalEvacuating);
    expect(originalStops).toBeGreaterThan(copyRan);
    expect(served).toBeGreaterThan(0);
    expect(failures).toBe(0);
    expect(decisions).toEqual(['rebalance']);
    const [logged] = await client.scalerLog({ app: 'burner' });
    expect(logged).toMatchObject({ cause: 'rebalance', from: 1, to: 1, move: { instance: original!.id, from: 'm1', to: ['m2'] } });
    expect(logged!.reason).toContain('off m1');
    // Nothing left to move: m1 still reads hot but runs no instance of it.
    expect((await client.getApp('burner')).instances).toBe(1);
  }, TEST_TIMEOUT_MS);
});
