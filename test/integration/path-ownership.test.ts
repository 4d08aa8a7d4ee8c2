// A path prefix belongs to one app: instances registered by hand and other apps cannot take it, nest in it or wrap it; "/" is reserved; two racing creates on one path leave one winner.
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { snapshot, startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let inspect: Redis;
let fx: RegistryFixture;
let digest: string;

async function failure(p: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as { status: number; code: string; message: string } | undefined;
  expect(err, 'the call should have been refused').toBeDefined();
  return err!;
}

/** Fails unless `p` is refused with `code` (and a message containing `names`), leaving Redis as it was. */
async function refusedUnchanged(p: () => Promise<unknown>, status: number, code: string, names?: string): Promise<void> {
  const before = await snapshot(inspect, fx.prefix);
  const err = await failure(p());
  expect(err.status).toBe(status);
  expect(err.code).toBe(code);
  if (names !== undefined) expect(err.message).toContain(`"${names}"`);
  expect(await snapshot(inspect, fx.prefix)).toEqual(before);
}

const app = (name: string, path: string) => fx.client.publishApp({ name, path, instances: 0, bundle: digest });

beforeAll(async () => {
  redis = await startRedis();
  inspect = redis.client();
  fx = await startTestRegistry(redis, { reconcileIntervalMs: 50 });
  const bytes = randomBytes(2048);
  digest = createHash('sha256').update(bytes).digest('hex');
  await fx.client.uploadBundle(digest, bytes);
  await app('victim', '/victim');
  await app('deep', '/outer/deep');
  await waitFor(async () => (await fx.client.getApp('victim')).current?.status === 'active' && (await fx.client.getApp('deep')).current?.status === 'active', {
    what: 'v1 active',
  });
});

afterAll(async () => {
  inspect?.disconnect();
  await fx?.close();
  await redis?.stop();
});

describe('instances registered by hand', () => {
  it('cannot take over an app’s path, so nothing can be claimed or routed there', async () => {
    await refusedUnchanged(() => fx.client.registerInstance('rogue', { path: '/victim' }), 409, 'path_taken', 'victim');
    const claim = await failure(fx.client.claimService('rogue', { machine: 'm1', port: 40000, path: '/victim' }));
    expect(claim.code).toBe('service_not_found');
  });

  it('cannot nest under an app’s path nor wrap one', async () => {
    await refusedUnchanged(() => fx.client.registerInstance('rogue', { path: '/victim/admin' }), 409, 'path_taken', 'victim');
    await refusedUnchanged(() => fx.client.registerInstance('rogue', { path: '/outer' }), 409, 'path_taken', 'deep');
  });

  it('may use a path no app owns, and their own app’s path and below', async () => {
    const free = await fx.client.registerInstance('rogue', { path: '/victimless' });
    expect(free.path).toBe('/victimless');
    expect((await fx.client.registerInstance('victim', { path: '/victim' })).path).toBe('/victim');
    expect((await fx.client.registerInstance('victim', { path: '/victim/admin' })).path).toBe('/victim/admin');
  });

  it('cannot use "/"', async () => {
    await refusedUnchanged(() => fx.client.registerInstance('rogue', { path: '/' }), 400, 'reserved_path');
  });
});

describe('apps', () => {
  it('cannot publish "/"', async () => {
    await refusedUnchanged(() => app('root', '/'), 400, 'reserved_path');
  });

  it('cannot publish another app’s path, inside it, or around it', async () => {
    await refusedUnchanged(() => app('other', '/victim'), 409, 'path_taken', 'victim');
    await refusedUnchanged(() => app('other', '/victim/admin'), 409, 'path_taken', 'victim');
    await refusedUnchanged(() => app('other', '/outer'), 409, 'path_taken', 'deep');
  });

  it('may update itself (its path stays its own)', async () => {
    const updated = await fx.client.updateApp('victim', { env: { A: '1' } });
    expect(updated.path).toBe('/victim');
  });

  it('frees its path once deleted', async () => {
    await app('gone', '/gone');
    await fx.client.deleteApp('gone');
    await waitFor(async () => (await fx.client.getApp('gone').catch((e: { code: string }) => e.code)) === 'app_not_found', { what: 'gone removed' });
    expect((await app('next', '/gone/sub')).path).toBe('/gone/sub');
    expect((await fx.client.registerInstance('rogue', { path: '/gone' }).catch((e: { code: string }) => e.code))).toBe('path_taken');
  });

  it('apps made before the list of prefixes existed (only in the path hash) still own what is under them', async () => {
    await inspect.del(`{${fx.prefix}}:app-path-list`);
    const err = await failure(app('other', '/outer'));
    expect([err.code, err.message]).toEqual(['path_taken', expect.stringContaining('"deep"')]);
    expect(await inspect.zcard(`{${fx.prefix}}:app-path-list`)).toBe(await inspect.hlen(`{${fx.prefix}}:app-paths`));
  });

  it('two racing creates on one path: exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const path = `/race${round}`;
      const outcomes = await Promise.allSettled([app(`race-a${round}`, path), app(`race-b${round}`, `${path}${round % 2 === 0 ? '' : '/inner'}`)]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0]!.reason as { code: string }).code).toBe('path_taken');
    }
  });
});
