// A hoster process killed with SIGKILL: its add-ons (a Redis and a PostgreSQL) are reported unavailable (in addons:info and the app's berth info) once their leases end, are never taken by another machine, and the next hoster of their machine stops the servers left running and runs them again on the same data; an add-on destroyed while its hoster was dead has its orphaned server stopped and its folder removed; the hoster's log never holds a password.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli-process.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { helloApp, traversableTempDir, uploadApp } from '../helpers/hoster-fixture.js';
import { instancePortRange } from '../helpers/port-range.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let registry: RegistryFixture;
let rc: Redis;
const procs: DaemonProcess[] = [];
const dirs: string[] = [];
// Add-on ports: a random block of ten below the test hosters' instance ports (10000 and up), so
// that test runs side by side on one host (several checkouts) rarely meet on one.
const first = 6000 + Math.floor(Math.random() * 390) * 10;

function hoster(machine: string, dataDir: string): DaemonProcess {
  const proc = startDaemon(['hoster', '--machine', machine, '--data-dir', dataDir], {
    REDIS_URL: redis.url,
    BERTH_KEY_PREFIX: registry.prefix,
    BERTH_LEASE_MS: '3000',
    BERTH_MAX_LOAD_PER_CPU: '1000',
    BERTH_HEARTBEAT_MS: '1000',
    BERTH_STOP_GRACE_MS: '1000',
    BERTH_EVACUATE_TIMEOUT_MS: '3000',
    BERTH_PROXY_URL: 'http://127.0.0.1:1',
    BERTH_PORT_RANGE: instancePortRange(),
  });
  procs.push(proc);
  return proc;
}

function psql(url: string, sql: string): { code: number | null; out: string } {
  const r = spawnSync('psql', [url, '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

function serverAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('redis-server');
  } catch {
    return false;
  }
}

beforeAll(async () => {
  redis = await startRedis();
  rc = redis.client();
  registry = await startTestRegistry(redis, { reconcileIntervalMs: 50, addonPortRange: `${first}-${first + 9}` });
  await registry.client.publishApp({ name: 'shop', path: '/shop', instances: 1, bundle: await uploadApp(registry.client, helloApp()) });
}, 60_000);

afterAll(async () => {
  await registry?.client.destroyAddon('shop-redis', 'shop-redis').catch(() => undefined);
  await registry?.client.destroyAddon('shop-postgres', 'shop-postgres').catch(() => undefined);
  // Its hoster removes its data and its user at its next look.
  await waitFor(async () => (await rc.hlen(`{${registry.prefix}}:machine:m1:addon-trash`)) === 0, { deadlineMs: 15_000, what: 'the trash emptied' }).catch(() => undefined);
  await registry?.client.deleteApp('shop').catch(() => undefined);
  for (const p of procs) {
    p.kill('SIGTERM');
    await p.exited;
  }
  rc?.disconnect();
  await registry?.close();
  await redis?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 90_000);

describe('an add-on whose hoster is killed', () => {
  it('is unavailable, never moves, and runs again on its data with the next hoster of its machine', async () => {
    const c = registry.client;
    const dataDir = traversableTempDir('berth-addon-m1-');
    dirs.push(dataDir);
    let m1 = hoster('m1', dataDir);
    await waitFor(async () => (await c.listMachines()).some((m) => m.name === 'm1'), { deadlineMs: 20_000, what: 'm1 heard from' });
    const created = await c.createAddon({ app: 'shop', kind: 'redis', machine: 'm1' });
    await waitFor(async () => (await c.getAddon(created.name)).state === 'running', { deadlineMs: 30_000, what: 'running' });
    const url = (await c.getConfig('shop')).REDIS_URL!;
    const password = /:([0-9a-f]{48})@/.exec(url)![1]!;
    const r = new Redis(url, { maxRetriesPerRequest: 1 });
    await r.set('kept', 'yes');
    // Written to the append-only file at once, not within the second of appendfsync everysec.
    await r.call('BGREWRITEAOF');
    await waitFor(async () => (await r.info('persistence')).includes('aof_rewrite_in_progress:0'), { deadlineMs: 10_000, what: 'the AOF rewritten' });
    r.disconnect();
    const pid = Number(await rc.hget(`{${registry.prefix}}:addon:shop-redis`, 'pid'));
    expect(serverAlive(pid)).toBe(true);
    await c.createAddon({ app: 'shop', kind: 'postgres', machine: 'm1' });
    await waitFor(async () => (await c.getAddon('shop-postgres')).state === 'running', { deadlineMs: 30_000, what: 'postgres running' });
    const dbUrl = (await c.getConfig('shop')).DATABASE_URL!;
    expect(psql(dbUrl, 'CREATE TABLE t (v text); INSERT INTO t VALUES (\'kept\')').code).toBe(0);
    const pgPid = Number(await rc.hget(`{${registry.prefix}}:addon:shop-postgres`, 'pid'));

    // A second machine's hoster runs meanwhile: it never takes the add-on.
    const otherDir = traversableTempDir('berth-addon-m2-');
    dirs.push(otherDir);
    const m2 = hoster('m2', otherDir);

    m1.kill('SIGKILL');
    await m1.exited;
    await waitFor(async () => (await c.listAddons()).every((a) => a.state === 'unavailable'), { deadlineMs: 20_000, what: 'both unavailable' });
    const info = await c.getAddon('shop-redis');
    expect(info).toMatchObject({ machine: 'm1', state: 'unavailable' });
    expect((await c.getApp('shop')).addons).toEqual([
      { name: 'shop-postgres', kind: 'postgres', variable: 'DATABASE_URL', state: 'unavailable' },
      { name: 'shop-redis', kind: 'redis', variable: 'REDIS_URL', state: 'unavailable' },
    ]);
    const cli = await runCli(['info', 'shop'], { BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token, NO_COLOR: '1', BERTH_HOME: join(dataDir, 'cli') });
    expect(cli.stdout).toMatch(/add-ons\s+shop-postgres \(postgres, DATABASE_URL\): unavailable; shop-redis \(redis, REDIS_URL\): unavailable/);
    // Still only on m1 (its server outlived its hoster: nothing started it elsewhere).
    expect((await c.getAddon('shop-redis')).machine).toBe('m1');

    m1 = hoster('m1', dataDir);
    await waitFor(async () => {
      const a = await c.getAddon('shop-redis');
      return a.state === 'running' && Number(await rc.hget(`{${registry.prefix}}:addon:shop-redis`, 'pid')) !== pid;
    }, { deadlineMs: 40_000, what: 'running again under the new hoster' });
    // The server the killed hoster left was stopped first, not left beside the new one.
    expect(serverAlive(pid)).toBe(false);
    await waitFor(async () => (await c.getAddon('shop-postgres')).state === 'running' && Number(await rc.hget(`{${registry.prefix}}:addon:shop-postgres`, 'pid')) !== pgPid, { deadlineMs: 40_000, what: 'postgres running again' });
    expect(existsSync(`/proc/${pgPid}`)).toBe(false);
    expect(psql(dbUrl, 'SELECT v FROM t').out).toBe('kept');
    const again = new Redis(url, { maxRetriesPerRequest: 1 });
    expect(await again.get('kept')).toBe('yes');
    again.disconnect();
    const dbPassword = /:([0-9a-f]{48})@/.exec(dbUrl)![1]!;
    for (const p of procs) {
      expect(p.output()).not.toContain(password);
      expect(p.output()).not.toContain(dbPassword);
    }
    expect(m1.output()).toContain('took the add-on shop-redis');

    // Killed again, and the add-on destroyed meanwhile: the next hoster stops the server left on its folder, then removes the folder.
    const orphan = Number(await rc.hget(`{${registry.prefix}}:addon:shop-redis`, 'pid'));
    const id = (await rc.hget(`{${registry.prefix}}:addon:shop-redis`, 'id'))!;
    m1.kill('SIGKILL');
    await m1.exited;
    expect(serverAlive(orphan)).toBe(true);
    expect(existsSync(join(dataDir, 'hoster', 'addons', id, 'data'))).toBe(true);
    await c.destroyAddon('shop-redis', 'shop-redis');
    m1 = hoster('m1', dataDir);
    await waitFor(() => !serverAlive(orphan) && !existsSync(join(dataDir, 'hoster', 'addons', id)), { deadlineMs: 40_000, what: 'the orphaned server stopped and its folder removed' });
    expect(existsSync(join(dataDir, 'hoster', 'addons'))).toBe(true);
    expect(m2.output()).not.toContain('took the add-on');
  }, 120_000);
});
