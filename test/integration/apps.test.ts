// Apps on the registry: publish, scale, update with no moment below the wanted running count, automatic rollback of a failing release, rollback, config, delete — with stand-in hosters claiming through the real scripts.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Instance } from '../../registry/store/instance.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { snapshot, startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { StandInHoster } from '../helpers/stand-in-hoster.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let fixture: RegistryFixture;
let client: BerthClient;
let hosters: StandInHoster[] = [];

async function bundle(): Promise<string> {
  const bytes = randomBytes(2048);
  const digest = createHash('sha256').update(bytes).digest('hex');
  await client.uploadBundle(digest, bytes);
  return digest;
}

function hoster(machine: string, crashes?: (i: Instance) => boolean): StandInHoster {
  const h = new StandInHoster(fixture.daemon.store, machine, { crashes }).start();
  hosters.push(h);
  return h;
}

async function runningOf(app: string, release?: number): Promise<Instance[]> {
  return (await client.listAppInstances(app)).filter((i) => i.state === 'running' && (release === undefined || i.release === release));
}

beforeAll(async () => {
  redis = await startRedis();
  fixture = await startTestRegistry(redis, { reconcileIntervalMs: 50, drainMs: 150, leaseMs: 3000, rolloutTimeoutMs: 60_000 });
  client = fixture.client;
});

afterEach(async () => {
  await Promise.all(hosters.map((h) => h.stop()));
  hosters = [];
});

afterAll(async () => {
  await fixture.close();
  await redis.stop();
});

describe('apps', () => {
  it('publishing records the app, release v1 and N unclaimed instances', async () => {
    const digest = await bundle();
    const app = await client.publishApp({ name: 'idle', path: '/idle', instances: 3, bundle: digest, env: { GREETING: 'hi' }, attributes: { minMemoryMb: 128 } });
    expect(app).toMatchObject({ name: 'idle', path: '/idle', instances: 3, release: 1, state: 'active', status: 'starting' });
    expect(app.current).toMatchObject({ version: 1, bundle: digest, env: { GREETING: 'hi' }, requirements: { minMemoryMb: 128 }, status: 'deploying' });
    const instances = await waitFor(async () => {
      const all = await client.listAppInstances('idle');
      return all.length === 3 ? all : undefined;
    }, { what: '3 instances registered' });
    for (const i of instances) expect(i).toMatchObject({ service: 'idle', path: '/idle', state: 'unclaimed', release: 1, files: digest, attributes: { minMemoryMb: 128 } });
    expect((await client.listUnclaimedServices()).filter((s) => s === 'idle')).toHaveLength(3);
    // Steady: the reconciler registers no more.
    await new Promise((r) => setTimeout(r, 300));
    expect(await client.listAppInstances('idle')).toHaveLength(3);
  });

  it('scales up and down; scaling down retires the newest instances through draining', async () => {
    hoster('m1');
    const digest = await bundle();
    await client.publishApp({ name: 'web', path: '/web', instances: 2, bundle: digest });
    await waitFor(async () => (await client.getApp('web')).status === 'running', { what: 'web running' });
    expect(await runningOf('web')).toHaveLength(2);
    expect((await client.listReleases('web'))[0]!.status).toBe('active');

    await client.scaleApp('web', { instances: 4 });
    await waitFor(async () => (await runningOf('web')).length === 4, { what: '4 running' });

    const before = (await runningOf('web')).sort((a, b) => a.seq - b.seq);
    await client.scaleApp('web', { instances: 1 });
    await waitFor(async () => (await client.listAppInstances('web')).length === 1, { what: 'scaled down to 1' });
    const [left] = await client.listAppInstances('web');
    expect(left!.id).toBe(before[0]!.id);
    expect(left!.state).toBe('running');
  });

  it('an update keeps at least the wanted number running at every moment and ends with only the new release', async () => {
    hoster('m1');
    hoster('m2');
    await client.publishApp({ name: 'roll', path: '/roll', instances: 3, bundle: await bundle(), env: { V: '1' } });
    await waitFor(async () => (await runningOf('roll', 1)).length === 3, { what: 'v1 running' });

    let samples = 0;
    let lowest = Infinity;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        // Routable means running; count from one consistent read of the records.
        lowest = Math.min(lowest, (await fixture.daemon.store.instancesOf('roll')).filter((i) => i.state === 'running').length);
        samples++;
      }
    })();
    await client.updateApp('roll', { bundle: await bundle(), env: { V: '2' } });
    await waitFor(async () => {
      const all = await client.listAppInstances('roll');
      return all.length === 3 && all.every((i) => i.release === 2 && i.state === 'running');
    }, { deadlineMs: 20_000, what: 'only v2 running' });
    sampling = false;
    await sampler;
    expect(samples).toBeGreaterThan(20);
    expect(lowest).toBeGreaterThanOrEqual(3);
    const releases = await client.listReleases('roll');
    expect(releases.map((r) => [r.version, r.status])).toEqual([[2, 'active'], [1, 'superseded']]);
    expect(await client.getConfig('roll')).toEqual({ V: '2' });
  });

  it('a new release that crashes on two machines is failed and the old one keeps serving', async () => {
    hoster('m1', (i) => i.release === 2);
    hoster('m2', (i) => i.release === 2);
    await client.publishApp({ name: 'bad', path: '/bad', instances: 2, bundle: await bundle() });
    await waitFor(async () => (await runningOf('bad', 1)).length === 2, { what: 'v1 running' });
    const v1 = (await runningOf('bad', 1)).map((i) => i.id).sort();

    await client.updateApp('bad', { bundle: await bundle() });
    const failed = await waitFor(async () => (await client.listReleases('bad')).find((r) => r.version === 2 && r.status === 'failed'), {
      deadlineMs: 20_000,
      what: 'v2 marked failed',
    });
    expect(failed.reason).toMatch(/crashed .* on 2 machines/);
    await waitFor(async () => (await client.listAppInstances('bad')).every((i) => i.release === 1), { what: 'v2 instances retired' });
    const app = await client.getApp('bad');
    expect(app.release).toBe(1);
    expect(app.status).toBe('running');
    // The very same v1 instances served throughout.
    expect((await runningOf('bad', 1)).map((i) => i.id).sort()).toEqual(v1);
  });

  it('rollback restores both code and configuration, as a new release', async () => {
    hoster('m1');
    const first = await bundle();
    await client.publishApp({ name: 'back', path: '/back', instances: 1, bundle: first, env: { MODE: 'one' } });
    await client.setConfig('back', { set: { MODE: 'two', EXTRA: 'x' } });
    const second = await bundle();
    await client.updateApp('back', { bundle: second });
    expect((await client.getApp('back')).current).toMatchObject({ version: 3, bundle: second, env: { MODE: 'two', EXTRA: 'x' } });

    const rolled = await client.rollback('back', 1);
    expect(rolled).toMatchObject({ version: 4, bundle: first, env: { MODE: 'one' }, description: 'Rollback to v1' });
    await waitFor(async () => {
      const all = await client.listAppInstances('back');
      return all.length === 1 && all[0]!.release === 4 && all[0]!.state === 'running' && all[0]!.files === first;
    }, { what: 'v4 running' });
    // Without a version: back to the release before the current one.
    expect(await client.rollback('back')).toMatchObject({ version: 5, bundle: second, env: { MODE: 'two', EXTRA: 'x' } });
  });

  it('config set and unset each make a release; the history says what changed', async () => {
    await client.publishApp({ name: 'conf', path: '/conf', instances: 0, bundle: await bundle(), env: { A: '1' } });
    await client.setConfig('conf', { set: { B: '2' } });
    await client.setConfig('conf', { unset: ['A'] });
    expect(await client.getConfig('conf')).toEqual({ B: '2' });
    expect((await client.listReleases('conf')).map((r) => r.description)).toEqual(['Unset A', 'Set B', expect.stringMatching(/^Deploy /)]);
    await expect(client.setConfig('conf', {})).rejects.toMatchObject({ code: 'nothing_to_change', status: 400 });
  });

  it('delete retires every instance, then removes the app and frees its path', async () => {
    hoster('m1');
    await client.publishApp({ name: 'gone', path: '/gone', instances: 2, bundle: await bundle() });
    await waitFor(async () => (await runningOf('gone')).length === 2, { what: '2 running' });
    const deleting = await client.deleteApp('gone');
    expect(deleting.status).toBe('deleting');
    await waitFor(async () => {
      try {
        await client.getApp('gone');
        return false;
      } catch (err) {
        return (err as { code?: string }).code === 'app_not_found';
      }
    }, { what: 'app removed' });
    await expect(client.getServiceInfo('gone')).rejects.toMatchObject({ code: 'service_not_found' });
    const again = await client.publishApp({ name: 'gone2', path: '/gone', instances: 0, bundle: await bundle() });
    expect(again.path).toBe('/gone');
  });

  it('refuses a duplicate name or path, and an unknown bundle, changing nothing', async () => {
    const digest = await bundle();
    await client.publishApp({ name: 'dup', path: '/dup', instances: 0, bundle: digest });
    // Let the reconciler settle it (v1 becomes active) so that only the refusals could change anything.
    await waitFor(async () => (await client.getApp('dup')).current?.status === 'active', { what: 'dup v1 active' });
    const before = await snapshot(redis.client(), fixture.prefix);
    await expect(client.publishApp({ name: 'dup', path: '/other', instances: 0, bundle: digest })).rejects.toMatchObject({ code: 'app_exists', status: 409 });
    await expect(client.publishApp({ name: 'dup2', path: '/dup', instances: 0, bundle: digest })).rejects.toMatchObject({ code: 'path_taken', status: 409 });
    await expect(client.publishApp({ name: 'nob', path: '/nob', instances: 0, bundle: 'f'.repeat(64) })).rejects.toMatchObject({ code: 'bundle_not_found', status: 404 });
    await expect(client.updateApp('dup', { bundle: 'f'.repeat(64) })).rejects.toMatchObject({ code: 'bundle_not_found' });
    await expect(client.updateApp('nope', { instances: 1 })).rejects.toMatchObject({ code: 'app_not_found', status: 404 });
    expect(await snapshot(redis.client(), fixture.prefix)).toEqual(before);
  });

  it('serves recent log lines and follows new ones', async () => {
    await client.publishApp({ name: 'talk', path: '/talk', instances: 0, bundle: await bundle() });
    const { appendLogs } = await import('../../registry/store/app-logs.js');
    const redisClient = redis.client();
    await appendLogs(redisClient, fixture.daemon.store.keys, 'talk', [
      { instance: 'i1', stream: 'out', line: 'hello' },
      { instance: 'i1', stream: 'err', line: 'oops' },
    ]);
    expect((await client.logs('talk')).map((l) => [l.stream, l.line])).toEqual([['out', 'hello'], ['err', 'oops']]);

    const abort = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const l of client.followLogs('talk', { lines: 1, signal: abort.signal })) seen.push(l.line);
    })().catch(() => undefined);
    await waitFor(() => seen.includes('oops'), { what: 'backlog line' });
    await appendLogs(redisClient, fixture.daemon.store.keys, 'talk', [{ instance: 'i1', stream: 'out', line: 'later' }]);
    await waitFor(() => seen.includes('later'), { what: 'followed line' });
    abort.abort();
    await following;
    expect(seen).toEqual(['oops', 'later']);
  });
});
