// An add-on moved to another machine by a restore (berth addons:restore NAME BACKUP --to-machine M),
// with real servers and two in-process hosters: the PostgreSQL of m1 is restored to m2 while m1's
// hoster is stopped; its rows come back on m2, the app's DATABASE_URL points at m2 in a new
// release that rolls out, and m1's hoster started again neither runs it nor keeps its old data.
// Bad input (an unknown machine, a silent one, no confirmation) is refused and changes nothing.
// A running Redis moved the same way is stopped by m1's hoster (still up), its data removed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthApiError } from '../../sdk/api-error.js';
import type { Addon } from '../../sdk/types.js';
import { runCli } from '../helpers/cli-process.js';
import { startTestHoster, uploadApp, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let rc: Redis;
let registry: RegistryFixture;
let m1: HosterFixture;
let m2: HosterFixture;
let prefix: string;
let backupDir: string;
let cliEnv: NodeJS.ProcessEnv;

// A random block of add-on ports (as addons.test.ts): m1 and m2 may both take its first port, on their own addresses.
const first = 6000 + Math.floor(Math.random() * 390) * 10;
const ADDON_PORTS = `${first}-${first + 9}`;
// m2's address (a loopback one of its own), so that a URL says which machine it points at.
const M2_HOST = '127.0.0.2';

const WEB = { 'server.js': "require('node:http').createServer((req, res) => res.end('ok')).listen(Number(process.env.PORT), process.env.HOST);\n" };

function psql(url: string, sql: string): { code: number | null; out: string } {
  const r = spawnSync('psql', [url, '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

async function running(name: string, machine: string): Promise<Addon> {
  let last: Addon | undefined;
  await waitFor(async () => {
    last = await registry.client.getAddon(name);
    if (last.state === 'running' && last.machine === machine) return true;
    throw new Error(`${last.state} on ${last.machine}: ${last.detail}`);
  }, { deadlineMs: 60_000, what: `${name} running on ${machine}` });
  return last!;
}

async function refused(call: Promise<unknown>): Promise<BerthApiError> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(BerthApiError);
  return err as BerthApiError;
}

const hosterOptions = { m1: { proxyUrl: 'http://127.0.0.1:1', capacity: 50 }, m2: { proxyUrl: `http://${M2_HOST}:2`, capacity: 50 } };

beforeAll(async () => {
  backupDir = mkdtempSync(join(tmpdir(), 'berth-addon-move-'));
  redis = await startRedis();
  rc = redis.client();
  prefix = testPrefix();
  registry = await startTestRegistry(redis, { keyPrefix: prefix, reconcileIntervalMs: 50, drainMs: 200, addonPortRange: ADDON_PORTS, addonBackupDir: backupDir });
  m1 = await startTestHoster(redis, prefix, 'm1', hosterOptions.m1);
  m2 = await startTestHoster(redis, prefix, 'm2', hosterOptions.m2);
  cliEnv = { BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token, NO_COLOR: '1', HOME: backupDir, BERTH_HOME: join(backupDir, 'cli') };
  const bundle = await uploadApp(registry.client, WEB);
  await registry.client.publishApp({ name: 'shop', path: '/shop', instances: 1, bundle });
  await waitFor(async () => (await registry.client.getApp('shop')).running === 1, { deadlineMs: 60_000, what: 'shop v1 running' });
}, 120_000);

afterAll(async () => {
  for (const a of (await registry?.client.listAddons().catch(() => [])) ?? []) await registry.client.destroyAddon(a.name, a.name).catch(() => undefined);
  await waitFor(() => (m1?.daemon.addons.servers.size ?? 0) + (m2?.daemon.addons.servers.size ?? 0) === 0, { deadlineMs: 30_000, what: 'add-on servers stopped' }).catch(() => undefined);
  await registry?.client.deleteApp('shop').catch(() => undefined);
  await m1?.close({ evacuate: false });
  await m2?.close({ evacuate: false });
  rc?.disconnect();
  await registry?.close();
  await redis?.stop();
  if (backupDir) rmSync(backupDir, { recursive: true, force: true });
}, 120_000);

describe('an add-on restored to another machine', () => {
  it('moves there with the backup, its app follows in a new release, and its old machine never runs it again; bad input changes nothing', async () => {
    const c = registry.client;
    const pg = await c.createAddon({ app: 'shop', kind: 'postgres', machine: 'm1' });
    await running(pg.name, 'm1');
    const oldUrl = (await c.getConfig('shop')).DATABASE_URL!;
    expect(new URL(oldUrl).hostname).toBe('127.0.0.1');
    expect(psql(oldUrl, "CREATE TABLE orders (id int primary key, item text); INSERT INTO orders VALUES (1, 'tea'), (2, 'cake');").code).toBe(0);
    const backup = await c.backupAddon(pg.name);
    const oldId = (await rc.hget(`{${prefix}}:addon:${pg.name}`, 'id'))!;
    const oldDir = join(m1.daemon.addons.dir, oldId);
    expect(existsSync(oldDir)).toBe(true);

    // m1's hoster stops (its data stays on its disk): the add-on runs nowhere.
    const m1Data = m1.dataDir;
    await m1.daemon.close({ evacuate: false });
    expect((await c.getAddon(pg.name)).state).not.toBe('running');

    // Refused, nothing changed: an unknown machine, a machine whose hoster is silent, no confirmation, an empty name.
    await rc.hset(`{${prefix}}:machine:m3`, { name: 'm3', facts: '{}', heartbeatAt: '1', joinedAt: '1' });
    await rc.zadd(`{${prefix}}:machines`, 1, 'm3');
    const state = async () => ({
      record: Object.entries(await rc.hgetall(`{${prefix}}:addon:${pg.name}`)).filter(([k]) => !['leaseUntil', 'state', 'pid', 'detail', 'restarts'].includes(k) && !k.startsWith('usage')).sort(),
      sets: await Promise.all(['m1', 'm2', 'm3'].map(async (m) => [await rc.smembers(`{${prefix}}:machine:${m}:addons`), await rc.hgetall(`{${prefix}}:machine:${m}:addon-ports`), await rc.hgetall(`{${prefix}}:machine:${m}:addon-trash`)])),
      releases: (await c.listReleases('shop')).length,
      config: await c.getConfig('shop'),
    });
    const before = await state();
    expect(await refused(c.restoreAddon(pg.name, backup.id, pg.name, { toMachine: 'm9' }))).toMatchObject({ status: 404, code: 'machine_not_found' });
    const silent = await refused(c.restoreAddon(pg.name, backup.id, pg.name, { toMachine: 'm3' }));
    expect(silent).toMatchObject({ status: 409, code: 'machine_unavailable' });
    expect(silent.message).toMatch(/hoster of m3 has not been heard from/);
    const unconfirmed = await refused(c.restoreAddon(pg.name, backup.id, 'shop', { toMachine: 'm2' }));
    expect(unconfirmed).toMatchObject({ status: 400, code: 'confirmation_required' });
    expect(unconfirmed.message).toContain(`--to-machine m2 --confirm ${pg.name}`);
    expect(await refused(c.restoreAddon(pg.name, backup.id, pg.name, { toMachine: '' }))).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(await state()).toEqual(before);

    const releasesBefore = (await c.listReleases('shop')).length;
    const done = await runCli(['addons:restore', pg.name, backup.id, '--to-machine', 'm2', '--confirm', pg.name], cliEnv, { deadlineMs: 180_000 });
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout + done.stderr).toContain(`Restored ${pg.name} from ${backup.id}`);

    const moved = await running(pg.name, 'm2');
    expect(moved).toMatchObject({ machine: 'm2', host: M2_HOST, attachments: [{ app: 'shop', variable: 'DATABASE_URL' }] });
    const newUrl = (await c.getConfig('shop')).DATABASE_URL!;
    expect(new URL(newUrl).hostname).toBe(M2_HOST);
    expect(Number(new URL(newUrl).port)).toBe(moved.port);
    expect(psql(newUrl, 'SELECT item FROM orders ORDER BY id').out).toBe('tea\ncake');
    expect(m2.daemon.addons.servers.has(pg.name)).toBe(true);
    // One new release, rolled out as usual.
    const releases = await c.listReleases('shop');
    expect(releases.length).toBe(releasesBefore + 1);
    expect(releases[0]!.description).toBe(`Move ${pg.name} to m2 (restored from ${backup.id})`);
    await waitFor(async () => (await c.listAppInstances('shop')).some((i) => i.state === 'running' && i.release === releases[0]!.version), { deadlineMs: 60_000, what: `shop v${releases[0]!.version} running` });

    // m1 comes back: its hoster removes the old copy (the add-on is no longer its own) and never runs it.
    m1 = await startTestHoster(redis, prefix, 'm1', { ...hosterOptions.m1, dataDir: m1Data });
    await waitFor(() => !existsSync(oldDir), { deadlineMs: 30_000, what: "m1's old copy removed" });
    expect(m1.daemon.addons.servers.size).toBe(0);
    expect(await running(pg.name, 'm2')).toMatchObject({ restarts: 0 });
    expect(psql(newUrl, 'SELECT count(*) FROM orders').out).toBe('2');

    // The machine it is on already: a plain restore, in place.
    expect(psql(newUrl, 'DELETE FROM orders WHERE id = 2').code).toBe(0);
    await c.restoreAddon(pg.name, backup.id, pg.name, { toMachine: 'm2' });
    expect(psql(newUrl, 'SELECT item FROM orders ORDER BY id').out).toBe('tea\ncake');
    expect((await c.listReleases('shop')).length).toBe(releasesBefore + 1);
  }, 300_000);

  it('moves a running one too: the old machine\'s hoster, still up, stops its server and removes its data', async () => {
    const c = registry.client;
    const rd = await c.createAddon({ app: 'shop', kind: 'redis', machine: 'm1', memoryMb: 32 });
    await running(rd.name, 'm1');
    const oldUrl = (await c.getConfig('shop')).REDIS_URL!;
    const r = new Redis(oldUrl, { maxRetriesPerRequest: 1 });
    await r.set('kept', 'yes');
    const backup = await c.backupAddon(rd.name);
    await r.set('after', 'the backup');
    r.disconnect();
    const oldId = (await rc.hget(`{${prefix}}:addon:${rd.name}`, 'id'))!;
    const oldDir = join(m1.daemon.addons.dir, oldId);
    expect(m1.daemon.addons.servers.has(rd.name)).toBe(true);

    expect(await c.restoreAddon(rd.name, backup.id, rd.name, { toMachine: 'm2' })).toMatchObject({ id: backup.id, kind: 'redis' });
    expect(await running(rd.name, 'm2')).toMatchObject({ host: M2_HOST });
    await waitFor(() => !m1.daemon.addons.servers.has(rd.name) && !existsSync(oldDir), { deadlineMs: 30_000, what: "m1's server stopped and its data removed" });
    const newUrl = (await c.getConfig('shop')).REDIS_URL!;
    expect(new URL(newUrl).hostname).toBe(M2_HOST);
    const moved = new Redis(newUrl, { maxRetriesPerRequest: 1 });
    expect(await moved.get('kept')).toBe('yes');
    // The backup's data, not what the old server had after it.
    expect(await moved.get('after')).toBeNull();
    moved.disconnect();
  }, 120_000);
});
