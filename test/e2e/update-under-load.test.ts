// A real rolling update under load: hoster, proxy and registry running for real, a client hammering the app through the proxy while v1 is replaced by v2 — zero failed requests, and only v2 at the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import { helloApp, startTestHoster, uploadApp, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let registry: RegistryFixture;
let hoster: HosterFixture;
let proxy: ProxyDaemon;
let client: BerthClient;

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis, { reconcileIntervalMs: 50, drainMs: 500 });
  client = registry.client;
  hoster = await startTestHoster(redis, registry.prefix, 'm1');
  proxy = await startTestProxy(redis, registry.prefix, 'm1');
});

afterAll(async () => {
  await hoster.close({ evacuate: false });
  await proxy.close();
  await registry.close();
  await redis.stop();
});

describe('rolling update under load', () => {
  it('serves every request while v1 is replaced by v2', async () => {
    await client.publishApp({ name: 'roll', path: '/roll', instances: 2, bundle: await uploadApp(client, helloApp()) });
    await waitFor(async () => (await client.getApp('roll')).status === 'running', { deadlineMs: 20_000, what: 'v1 running' });

    const seen = new Map<string, number>();
    let failures = 0;
    let total = 0;
    let loading = true;
    const worker = async () => {
      while (loading) {
        try {
          const res = await fetch(`${proxy.url}/roll/`, { signal: AbortSignal.timeout(10_000) });
          const body = (await res.json()) as { release?: string };
          if (res.status !== 200) failures++;
          else seen.set(body.release ?? '?', (seen.get(body.release ?? '?') ?? 0) + 1);
        } catch {
          failures++;
        }
        total++;
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    await waitFor(() => total > 100, { what: 'load under way' });

    await client.updateApp('roll', { bundle: await uploadApp(client, helloApp('// v2')) });
    await waitFor(async () => {
      const instances = await client.listAppInstances('roll');
      return instances.length === 2 && instances.every((i) => i.release === 2 && i.state === 'running');
    }, { deadlineMs: 30_000, what: 'only v2 running' });
    // Keep the load on past the old instances' drain and stop.
    const after = total;
    await waitFor(() => total > after + 200, { what: 'load after the update' });
    loading = false;
    await Promise.all(workers);

    expect(failures).toBe(0);
    expect(seen.get('v1')).toBeGreaterThan(0);
    expect(seen.get('v2')).toBeGreaterThan(0);
    expect((await client.listReleases('roll')).map((r) => [r.version, r.status])).toEqual([[2, 'active'], [1, 'superseded']]);
  });
});
