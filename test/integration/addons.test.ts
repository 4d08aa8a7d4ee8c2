// Add-ons with real servers (in-process hoster; addon-hoster-killed.test.ts kills a hoster process): a PostgreSQL and a Redis pinned to their machine, attached to apps through new releases, reached by an app and by psql, kept across a SIGKILL of the server and a restart of the hoster, shared by two apps, refused on bad input with nothing changed, never showing their password, destroyed with their data only when confirmed, their data size and connections measured by their hoster and shown by addons:info.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Addon } from '../../sdk/types.js';
import { AddonStore, registryKeys } from '../../registry/store/index.js';
import { BerthApiError } from '../../sdk/api-error.js';
import { runCli } from '../helpers/cli-process.js';
import { startTestHoster, uploadApp, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let registry: RegistryFixture;
let hoster: HosterFixture;
let prefix: string;
let cliEnv: NodeJS.ProcessEnv;
let rc: Redis;
let backupDir: string;

// Add-on ports: a random block of ten below the test hosters' instance ports (10000 and up), so
// that test runs side by side on one host (several checkouts) rarely meet on one.
const first = 6000 + Math.floor(Math.random() * 390) * 10;
const ADDON_PORTS = `${first}-${first + 19}`;

/** The app: GET /set?k=v and /get?k through REDIS_URL, with a RESP client of its own (no dependency to install). */
const SHOP = {
  'server.js': `
const http = require('node:http');
const net = require('node:net');
function redis(args) {
  const u = new URL(process.env.REDIS_URL);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname);
    const cmd = (a) => '*' + a.length + '\\r\\n' + a.map((x) => '$' + Buffer.byteLength(x) + '\\r\\n' + x + '\\r\\n').join('');
    s.write(cmd(['AUTH', decodeURIComponent(u.password)]) + cmd(args));
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      const lines = buf.split('\\r\\n');
      if (lines.length < 3 || !lines[0].startsWith('+OK')) { if (lines[0].startsWith('-')) { s.destroy(); reject(new Error(lines[0])); } return; }
      const r = lines[1];
      if (r.startsWith('+') || r.startsWith('-')) { s.destroy(); resolve(r.slice(1)); }
      else if (r === '$-1') { s.destroy(); resolve(null); }
      else if (r.startsWith('$') && lines.length >= 4) { s.destroy(); resolve(lines[2]); }
    });
    s.on('error', reject);
  });
}
http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://x');
  try {
    const out = u.pathname === '/set' ? await redis(['SET', u.searchParams.get('k'), u.searchParams.get('v')]) : await redis(['GET', u.searchParams.get('k')]);
    res.end(JSON.stringify({ out, hasDatabase: typeof process.env.DATABASE_URL === 'string' }));
  } catch (err) { res.statusCode = 500; res.end(String(err.message)); }
}).listen(Number(process.env.PORT), process.env.HOST);
`,
};

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

function psql(url: string, sql: string): { code: number | null; out: string } {
  const r = spawnSync('psql', [url, '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

async function running(name: string, restartsAtLeast = 0): Promise<Addon> {
  let last: Addon | undefined;
  await waitFor(async () => {
    last = await registry.client.getAddon(name);
    if (last.state === 'running' && last.restarts >= restartsAtLeast) return true;
    throw new Error(`${last.state}: ${last.detail}`);
  }, { deadlineMs: 60_000, what: `${name} running` });
  return last!;
}

async function webPort(app: string, release: number): Promise<number> {
  let port = 0;
  await waitFor(async () => {
    const i = (await registry.client.listAppInstances(app)).find((x) => x.state === 'running' && x.release === release && x.process === 'web');
    port = i?.port ?? 0;
    return port !== 0;
  }, { deadlineMs: 60_000, what: `${app} v${release} running` });
  return port;
}

async function refused(call: Promise<unknown>): Promise<BerthApiError> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(BerthApiError);
  return err as BerthApiError;
}

beforeAll(async () => {
  backupDir = mkdtempSync(join(tmpdir(), 'berth-addon-backups-'));
  redis = await startRedis();
  rc = redis.client();
  prefix = testPrefix();
  registry = await startTestRegistry(redis, { keyPrefix: prefix, reconcileIntervalMs: 50, drainMs: 200, addonPortRange: ADDON_PORTS, addonBackupDir: backupDir, addonBackupsKept: 2 });
  hoster = await startTestHoster(redis, prefix, 'm1', { proxyUrl: 'http://127.0.0.1:1', capacity: 50, addonUsageMs: 500 });
  cliEnv = { BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token, NO_COLOR: '1', HOME: hoster.dataDir, BERTH_HOME: join(hoster.dataDir, 'cli') };
  const bundle = await uploadApp(registry.client, SHOP);
  await registry.client.publishApp({ name: 'shop', path: '/shop', instances: 1, bundle });
  await registry.client.publishApp({ name: 'reports', path: '/reports', instances: 1, bundle });
  await waitFor(async () => (await registry.client.getApp('shop')).running === 1, { deadlineMs: 60_000, what: 'shop v1 running' });
}, 120_000);

afterAll(async () => {
  for (const a of await registry?.client.listAddons().catch(() => []) ?? []) await registry.client.destroyAddon(a.name, a.name).catch(() => undefined);
  // The destroyed add-ons' servers stop at the hoster's next look.
  await waitFor(() => (hoster?.daemon.addons.servers.size ?? 0) === 0, { deadlineMs: 30_000, what: 'add-on servers stopped' }).catch(() => undefined);
  for (const app of await registry?.client.listApps().catch(() => []) ?? []) await registry.client.deleteApp(app.name).catch(() => undefined);
  await hoster?.close({ evacuate: false });
  rc?.disconnect();
  await registry?.close();
  await redis?.stop();
  if (backupDir) rmSync(backupDir, { recursive: true, force: true });
}, 120_000);

describe('add-ons', () => {
  it('refuses bad input with a clear 4xx and changes nothing', async () => {
    const c = registry.client;
    // The apps' instances renew their leases meanwhile: what must not change is every add-on key and the apps' releases.
    const state = async () => ({ keys: await rc.keys(`{${prefix}}:*addon*`), releases: (await c.listReleases('shop')).length, config: await c.getConfig('shop') });
    const before = await state();
    expect(before.keys).toEqual([]);
    expect(await refused(c.createAddon({ app: 'shop', kind: 'mysql' }))).toMatchObject({ status: 400, code: 'addon_kind_unknown' });
    expect(await refused(c.createAddon({ app: 'nope', kind: 'redis' }))).toMatchObject({ status: 404, code: 'app_not_found' });
    expect(await refused(c.createAddon({ app: 'shop', kind: 'redis', machine: 'm9' }))).toMatchObject({ status: 404, code: 'machine_not_found' });
    expect(await refused(c.createAddon({ app: 'shop', kind: 'redis', name: 'Bad_Name' }))).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(await refused(c.getAddon('nothing-here'))).toMatchObject({ status: 404, code: 'addon_not_found' });
    expect(await refused(c.destroyAddon('nothing-here', 'nothing-here'))).toMatchObject({ status: 404, code: 'addon_not_found' });
    expect(await state()).toEqual(before);
    // A variable set by hand is the user's: an add-on is never attached over it.
    await c.setConfig('shop', { set: { CACHE_URL: 'redis://elsewhere:6379' } });
    const withVar = await state();
    const taken = await refused(c.createAddon({ app: 'shop', kind: 'redis', as: 'CACHE_URL' }));
    expect(taken).toMatchObject({ status: 409, code: 'addon_var_taken' });
    expect(taken.message).toContain('berth config:unset shop CACHE_URL');
    expect(await state()).toEqual(withVar);
    await c.setConfig('shop', { unset: ['CACHE_URL'] });
  });

  it('creates a PostgreSQL and a Redis on the machine, attached as new releases; the app reaches Redis, psql reaches PostgreSQL', async () => {
    const c = registry.client;
    const pg = await c.createAddon({ app: 'shop', kind: 'postgres' });
    expect(pg).toMatchObject({ name: 'shop-postgres', kind: 'postgres', machine: 'm1', host: '127.0.0.1', attachments: [{ app: 'shop', variable: 'DATABASE_URL' }] });
    expect(pg.port).toBeGreaterThanOrEqual(first);
    // The name is taken now: refused, nothing changed (but the lease its hoster renews meanwhile).
    const unleased = async () => ({ keys: (await rc.keys(`{${prefix}}:*addon*`)).sort(), releases: (await c.listReleases('shop')).length, config: await c.getConfig('shop'), ports: await rc.hgetall(`{${prefix}}:machine:m1:addon-ports`) });
    const record = async () => Object.entries(await rc.hgetall(`{${prefix}}:addon:shop-postgres`)).filter(([k]) => !['leaseUntil', 'state', 'pid', 'detail', 'restarts', 'epoch'].includes(k) && !k.startsWith('usage'));
    const before = await unleased();
    const recordBefore = await record();
    expect(await refused(c.createAddon({ app: 'shop', kind: 'postgres', name: 'shop-postgres', as: 'OTHER_URL' }))).toMatchObject({ status: 409, code: 'addon_exists' });
    expect(await refused(c.createAddon({ app: 'shop', kind: 'postgres' }))).toMatchObject({ status: 409, code: 'addon_var_taken' });
    expect(await refused(c.destroyAddon('shop-postgres', 'shop'))).toMatchObject({ status: 400, code: 'confirmation_required' });
    expect(await unleased()).toEqual(before);
    expect(await record()).toEqual(recordBefore);

    const rd = await c.createAddon({ app: 'shop', kind: 'redis', memoryMb: 32 });
    expect(rd).toMatchObject({ name: 'shop-redis', kind: 'redis', attachments: [{ app: 'shop', variable: 'REDIS_URL' }] });
    expect(rd.port).not.toBe(pg.port);
    const config = await c.getConfig('shop');
    expect(config.DATABASE_URL).toMatch(new RegExp(`^postgres://shop_postgres:[0-9a-f]{48}@127\\.0\\.0\\.1:${pg.port}/shop_postgres$`));
    expect(config.REDIS_URL).toMatch(new RegExp(`^redis://:[0-9a-f]{48}@127\\.0\\.0\\.1:${rd.port}$`));
    const releases = await c.listReleases('shop');
    expect(releases.map((r) => r.description).slice(0, 2)).toEqual(['Attach shop-redis as REDIS_URL', 'Attach shop-postgres as DATABASE_URL']);

    await running('shop-postgres');
    await running('shop-redis');
    expect(psql(config.DATABASE_URL!, 'CREATE TABLE orders (id int primary key, item text); INSERT INTO orders VALUES (1, \'tea\'), (2, \'cake\');').code).toBe(0);
    expect(psql(config.DATABASE_URL!, 'SELECT item FROM orders ORDER BY id').out).toBe('tea\ncake');
    // Its password is the only way in.
    expect(psql(config.DATABASE_URL!.replace(/:[0-9a-f]{48}@/, ':wrong@'), 'SELECT 1').code).not.toBe(0);

    const port = await webPort('shop', releases[0]!.version);
    expect(await get(port, '/set?k=greeting&v=hello')).toEqual({ status: 200, body: JSON.stringify({ out: 'OK', hasDatabase: true }) });
    expect(await get(port, '/get?k=greeting')).toEqual({ status: 200, body: JSON.stringify({ out: 'hello', hasDatabase: true }) });
    const direct = new Redis(config.REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await direct.connect();
    expect(await direct.get('greeting')).toBe('hello');
    expect(await direct.config('GET', 'maxmemory')).toEqual(['maxmemory', String(32 * 1024 * 1024)]);
    expect(await direct.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    direct.disconnect();
    const stranger = new Redis({ host: '127.0.0.1', port: rd.port, maxRetriesPerRequest: 0, retryStrategy: () => null });
    stranger.on('error', () => undefined);
    await expect(stranger.get('greeting')).rejects.toThrow(/NOAUTH/);
    stranger.disconnect();
  }, 180_000);

  it('shows how big its data is and how many clients it has, measured by its hoster, in addons:info and the API', async () => {
    const c = registry.client;
    const config = await c.getConfig('shop');
    const before = { pg: await measuredAfter('shop-postgres', Date.now()), rd: await measuredAfter('shop-redis', Date.now()) };
    expect(before.pg).toMatchObject({ memoryBytes: null });
    // A psql session kept open (its password in its environment) and a Redis client, each writing.
    const pgUrl = new URL(config.DATABASE_URL!);
    const password = decodeURIComponent(pgUrl.password);
    pgUrl.password = '';
    const session = spawn('psql', [pgUrl.href, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { env: { ...process.env, PGPASSWORD: password }, stdio: ['pipe', 'ignore', 'inherit'] });
    const sessionEnded = new Promise((resolve) => session.once('exit', resolve));
    session.stdin.write("CREATE TABLE notes AS SELECT g AS id, repeat('x', 200) AS body FROM generate_series(1, 2000) g;\n");
    const client = new Redis(config.REDIS_URL!, { maxRetriesPerRequest: 1 });
    try {
      await client.set('big', 'x'.repeat(200_000));
      await waitFor(() => psql(config.DATABASE_URL!, 'SELECT count(*) FROM notes').out === '2000', { deadlineMs: 20_000, what: 'the rows written' });
      const since = Date.now();
      // The rows on disk and the value in the append-only file (written each second), with the clients counted.
      const pg = await measuredAfter('shop-postgres', since, (u) => u.bytes > before.pg.bytes && u.connections >= 1);
      const rd = await measuredAfter('shop-redis', since, (u) => u.bytes > before.rd.bytes + 200_000 && u.connections >= 1 && (u.memoryBytes ?? 0) > before.rd.memoryBytes! + 200_000);
      expect(pg.measuredAt).toBeLessThanOrEqual(Date.now());
      expect(rd.measuredAt).toBeLessThanOrEqual(Date.now());
      const info = await runCli(['addons:info', 'shop-postgres'], cliEnv);
      expect(info.code, info.stderr).toBe(0);
      expect(info.stdout).toMatch(/^ {2}data size +\d+(\.\d)? (B|kB|MB) \(measured \d+s ago\)$/m);
      expect(Number(/^ {2}connections +(\d+)$/m.exec(info.stdout)?.[1])).toBeGreaterThanOrEqual(1);
      const redisInfo = (await runCli(['addons:info', 'shop-redis'], cliEnv)).stdout;
      expect(redisInfo).toMatch(/^ {2}memory used +\d+(\.\d)? (B|kB|MB)$/m);
      const json = JSON.parse((await runCli(['addons:info', 'shop-redis', '--json'], cliEnv)).stdout) as Addon;
      expect(Object.keys(json.usage ?? {}).sort()).toEqual(['bytes', 'connections', 'measuredAt', 'memoryBytes']);
      expect(json.usage!.connections).toBeGreaterThanOrEqual(1);
    } finally {
      client.disconnect();
      session.stdin.end();
      await sessionEnded;
    }
    // Counted as they are: the session gone, the database has no client left.
    await measuredAfter('shop-postgres', Date.now(), (u) => u.connections === 0);
    // A hoster whose claim is not the current one (an older epoch, another machine) writes nothing.
    const store = new AddonStore(rc, registryKeys(prefix));
    const epoch = Number(await rc.hget(`{${prefix}}:addon:shop-postgres`, 'epoch'));
    const bogus = { bytes: 1, connections: 99, memoryBytes: null };
    await expect(store.reportUsage('shop-postgres', { machine: 'm1', epoch: epoch - 1 }, bogus)).rejects.toMatchObject({ code: 'stale_epoch' });
    await expect(store.reportUsage('shop-postgres', { machine: 'm2', epoch }, bogus)).rejects.toMatchObject({ code: 'stale_epoch' });
    await expect(store.reportUsage('nothing-here', { machine: 'm1', epoch }, bogus)).rejects.toMatchObject({ code: 'addon_not_found' });
    expect((await c.getAddon('shop-postgres')).usage).not.toMatchObject({ connections: 99 });
  }, 120_000);

  it('keeps each server under a user of its own, its data 0700, never in another machine', async () => {
    for (const name of ['shop-postgres', 'shop-redis']) {
      const stored = (await rc.hget(`{${prefix}}:addon:${name}`, 'id'))!;
      const dir = join(hoster.daemon.addons.dir, stored);
      const s = statSync(dir);
      expect(s.mode & 0o777).toBe(0o700);
      if (process.getuid?.() === 0) {
        expect(s.uid).not.toBe(0);
        expect(readUid(await serverPid(name))).toBe(s.uid);
      }
    }
    // A second machine's hoster never takes them.
    const other = await startTestHoster(redis, prefix, 'm2', { proxyUrl: 'http://127.0.0.1:2', capacity: 50 });
    try {
      await other.daemon.addons.tick();
      expect(other.daemon.addons.servers.size).toBe(0);
    } finally {
      await other.close({ evacuate: false });
    }
  });

  it('restarts a server killed with SIGKILL, data kept', async () => {
    const url = (await registry.client.getConfig('shop')).DATABASE_URL!;
    for (const name of ['shop-postgres', 'shop-redis']) {
      const before = await registry.client.getAddon(name);
      process.kill(await serverPid(name), 'SIGKILL');
      await running(name, before.restarts + 1);
    }
    expect(psql(url, 'SELECT item FROM orders ORDER BY id').out).toBe('tea\ncake');
    const r = new Redis((await registry.client.getConfig('shop')).REDIS_URL!, { maxRetriesPerRequest: 1 });
    expect(await r.get('greeting')).toBe('hello');
    r.disconnect();
  }, 180_000);

  it('is shared by two apps; detach takes the variable away in a new release', async () => {
    const c = registry.client;
    await c.attachAddon('shop-postgres', 'reports', { as: 'SHOP_DATABASE_URL' });
    const shared = (await c.getConfig('reports')).SHOP_DATABASE_URL!;
    expect(shared).toBe((await c.getConfig('shop')).DATABASE_URL);
    expect(psql(shared, 'SELECT count(*) FROM orders').out).toBe('2');
    expect((await c.getAddon('shop-postgres')).attachments).toEqual([{ app: 'reports', variable: 'SHOP_DATABASE_URL' }, { app: 'shop', variable: 'DATABASE_URL' }]);
    expect((await c.getApp('reports')).addons).toEqual([{ name: 'shop-postgres', kind: 'postgres', variable: 'SHOP_DATABASE_URL', state: 'running' }]);
    // The variable is the add-on's: config:set and config:unset of it are refused, nothing changed.
    const releases = (await c.listReleases('reports')).length;
    expect(await refused(c.setConfig('reports', { set: { SHOP_DATABASE_URL: 'postgres://elsewhere/db' } }))).toMatchObject({ status: 409, code: 'addon_var_taken' });
    expect(await refused(c.setConfig('reports', { unset: ['SHOP_DATABASE_URL'] }))).toMatchObject({ status: 409, code: 'addon_var_taken' });
    expect((await c.listReleases('reports')).length).toBe(releases);
    expect((await c.getConfig('reports')).SHOP_DATABASE_URL).toBe(shared);
    await c.detachAddon('shop-postgres', 'reports');
    expect((await c.getConfig('reports')).SHOP_DATABASE_URL).toBeUndefined();
    expect((await c.listReleases('reports'))[0]!.description).toBe('Detach shop-postgres (SHOP_DATABASE_URL)');
    expect(await refused(c.detachAddon('shop-postgres', 'reports'))).toMatchObject({ status: 404, code: 'addon_not_attached' });
  });

  it('forgets a deleted app: the add-on stays with its data, and an app made again under that name has none attached', async () => {
    const c = registry.client;
    const bundle = await uploadApp(c, SHOP);
    await c.publishApp({ name: 'brief', path: '/brief', instances: 1, bundle });
    await c.attachAddon('shop-postgres', 'brief', { as: 'SHOP_DATABASE_URL' });
    expect((await c.getAddon('shop-postgres')).attachments.map((a) => a.app)).toEqual(['brief', 'shop']);
    await c.deleteApp('brief');
    await waitFor(async () => !(await c.listApps()).some((a) => a.name === 'brief'), { deadlineMs: 30_000, what: 'brief removed' });
    expect((await c.getAddon('shop-postgres')).attachments).toEqual([{ app: 'shop', variable: 'DATABASE_URL' }]);
    expect(await rc.exists(new AddonStore(rc, registryKeys(prefix)).keys.appAddons('brief'))).toBe(0);
    await c.publishApp({ name: 'brief', path: '/brief', instances: 0, bundle });
    expect((await c.getApp('brief')).addons).toEqual([]);
    // Nothing holds the variable: the new app may take an add-on as it.
    await c.attachAddon('shop-postgres', 'brief', { as: 'SHOP_DATABASE_URL' });
    expect(psql((await c.getConfig('brief')).SHOP_DATABASE_URL!, 'SELECT count(*) FROM orders').out).toBe('2');
    await c.deleteApp('brief');
  }, 120_000);

  it('keeps the data across a restart of the hoster', async () => {
    const dataDir = hoster.dataDir;
    await hoster.daemon.close({ evacuate: false });
    expect((await registry.client.getAddon('shop-postgres')).state).toBe('stopped');
    hoster = await startTestHoster(redis, prefix, 'm1', { proxyUrl: 'http://127.0.0.1:1', capacity: 50, addonUsageMs: 500, dataDir });
    await running('shop-postgres');
    await running('shop-redis');
    expect(psql((await registry.client.getConfig('shop')).DATABASE_URL!, 'SELECT item FROM orders ORDER BY id').out).toBe('tea\ncake');
    const r = new Redis((await registry.client.getConfig('shop')).REDIS_URL!, { maxRetriesPerRequest: 1 });
    expect(await r.get('greeting')).toBe('hello');
    r.disconnect();
  }, 180_000);

  it('never shows the password: not in addons:info, releases (human or --json), the app logs or the event stream', async () => {
    const passwords = Object.values(await registry.client.getConfig('shop')).map((u) => /:([0-9a-f]{48})@/.exec(u)?.[1]).filter((p): p is string => p !== undefined);
    expect(passwords).toHaveLength(2);
    const seen = [
      JSON.stringify(await registry.client.listAddons()),
      (await runCli(['addons:info', 'shop-postgres'], cliEnv)).stdout,
      (await runCli(['addons:list', '--json'], cliEnv)).stdout,
      (await runCli(['releases', 'shop'], cliEnv)).stdout,
      (await runCli(['releases', 'shop', '--json'], cliEnv)).stdout,
      (await runCli(['info', 'shop'], cliEnv)).stdout,
      JSON.stringify(await registry.client.logs('shop', 1000)),
      JSON.stringify(await rc.xrange(`{${prefix}}:events`, '-', '+')),
    ].join('\n');
    expect(seen).toContain('shop-postgres');
    for (const p of passwords) expect(seen).not.toContain(p);
  }, 60_000);

  it('opens psql and redis-cli through berth run, as the attached app, the password never on a command line', async () => {
    const pg = await runCli(['addons:psql', 'shop-postgres', '--', '-X', '-t', '-A', '-c', 'SELECT item FROM orders ORDER BY id'], cliEnv, { deadlineMs: 60_000 });
    expect(pg.code, pg.stderr).toBe(0);
    expect(pg.stdout.trim()).toBe('tea\ncake');
    const rd = await runCli(['addons:redis-cli', 'shop-redis', '--', 'GET', 'greeting'], cliEnv, { deadlineMs: 60_000 });
    expect(rd.code, rd.stderr).toBe(0);
    expect(rd.stdout.trim()).toBe('hello');
    const wrongKind = await runCli(['addons:psql', 'shop-redis'], cliEnv);
    expect(wrongKind.code).not.toBe(0);
    expect(wrongKind.stderr).toContain('berth addons:redis-cli shop-redis');
    const passwords = Object.values(await registry.client.getConfig('shop')).map((u) => /:([0-9a-f]{48})@/.exec(u)?.[1]).filter((p): p is string => p !== undefined);
    const runs = JSON.stringify(await registry.client.listRuns('shop'));
    expect(runs).toContain('psql');
    for (const p of passwords) expect(runs).not.toContain(p);
  }, 120_000);

  it('destroys an add-on with its data only when confirmed (addon-hoster-killed.test.ts shows unavailable)', async () => {
    const id = (await rc.hget(`{${prefix}}:addon:shop-redis`, 'id'))!;
    const dir = join(hoster.daemon.addons.dir, id);
    expect(existsSync(dir)).toBe(true);
    const wrong = await runCli(['addons:destroy', 'shop-redis', '--confirm', 'shop-postgres'], cliEnv);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/repeat its name/);
    const done = await runCli(['addons:destroy', 'shop-redis', '--confirm', 'shop-redis', '--json'], cliEnv);
    expect(done.code, done.stderr).toBe(0);
    expect((await registry.client.getConfig('shop')).REDIS_URL).toBeUndefined();
    await waitFor(() => !existsSync(dir), { deadlineMs: 30_000, what: 'its data removed' });
    expect(await refused(registry.client.getAddon('shop-redis'))).toMatchObject({ code: 'addon_not_found' });
  }, 60_000);

  it('backs up, and after destroy and create again, restores the rows; a backup of the other kind is refused', async () => {
    const c = registry.client;
    const url = (await c.getConfig('shop')).DATABASE_URL!;
    expect(psql(url, 'SELECT count(*) FROM orders').out).toBe('2');
    const first = await c.backupAddon('shop-postgres');
    expect(first).toMatchObject({ addon: 'shop-postgres', kind: 'postgres' });
    expect(first.sizeBytes).toBeGreaterThan(0);
    // Kept by count (2 here): a third backup removes the first.
    await c.backupAddon('shop-postgres');
    const latest = await c.backupAddon('shop-postgres');
    expect((await c.listAddonBackups('shop-postgres')).map((b) => b.id)).not.toContain(first.id);
    expect((await c.listAddonBackups('shop-postgres'))[0]!.id).toBe(latest.id);
    expect(await refused(c.restoreAddon('shop-postgres', latest.id, 'nope'))).toMatchObject({ status: 400, code: 'confirmation_required' });

    await c.destroyAddon('shop-postgres', 'shop-postgres');
    // m1: the machine whose data is kept (m2, heard from a moment ago, has more free memory).
    await c.createAddon({ app: 'shop', kind: 'postgres', machine: 'm1' });
    await running('shop-postgres');
    const fresh = (await c.getConfig('shop')).DATABASE_URL!;
    expect(fresh).not.toBe(url);
    expect(psql(fresh, 'SELECT count(*) FROM orders').code).not.toBe(0);
    expect((await runCli(['addons:restore', 'shop-postgres', latest.id, '--confirm', 'shop-postgres'], cliEnv)).code).toBe(0);
    expect(psql(fresh, 'SELECT item FROM orders ORDER BY id').out).toBe('tea\ncake');

    // A redis backup under a name now held by a postgres add-on.
    await c.createAddon({ app: 'reports', kind: 'redis', name: 'spare', machine: 'm1' });
    await running('spare');
    const r = new Redis((await c.getConfig('reports')).REDIS_URL!, { maxRetriesPerRequest: 1 });
    await r.set('k', 'v', 'PX', 600_000);
    const redisBackup = await c.backupAddon('spare');
    await r.flushall();
    await c.restoreAddon('spare', redisBackup.id, 'spare');
    expect(await r.get('k')).toBe('v');
    expect(await r.pttl('k')).toBeGreaterThan(500_000);
    r.disconnect();
    await c.destroyAddon('spare', 'spare');
    await c.createAddon({ app: 'reports', kind: 'postgres', name: 'spare', machine: 'm1' });
    expect(await refused(c.restoreAddon('spare', redisBackup.id, 'spare'))).toMatchObject({ status: 409, code: 'addon_backup_kind' });
  }, 180_000);
});

/** The add-on's usage once its hoster measured it after `since` (and it meets `ok`). */
async function measuredAfter(name: string, since: number, ok: (u: NonNullable<Addon['usage']>) => boolean = () => true): Promise<NonNullable<Addon['usage']>> {
  let last: Addon['usage'] = null;
  await waitFor(async () => {
    last = (await registry.client.getAddon(name)).usage;
    if (last !== null && last.measuredAt > since && ok(last)) return true;
    throw new Error(`last measured: ${JSON.stringify(last)}`);
  }, { deadlineMs: 30_000, what: `${name} measured` });
  return last!;
}

async function serverPid(name: string): Promise<number> {
  let pid = 0;
  await waitFor(async () => {
    pid = Number((await rc.hget(`{${prefix}}:addon:${name}`, 'pid')) ?? 0);
    return pid > 0;
  }, { deadlineMs: 20_000, what: `${name}'s pid` });
  return pid;
}

function readUid(pid: number): number {
  const status = spawnSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).stdout;
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}
