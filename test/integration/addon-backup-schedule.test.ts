// Scheduled add-on backups (berth addons:backup NAME --every PERIOD) with two registries and a
// real Redis add-on: a backup at each period, taken by one registry only (never two for one
// period), shown by addons:info; a failed one (the add-on stopped) is recorded and shown, not
// retried in a loop; bad periods are refused and change nothing.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthApiError } from '../../sdk/api-error.js';
import { BerthClient } from '../../sdk/berth-client.js';
import { runCli } from '../helpers/cli-process.js';
import { startTestHoster, uploadApp, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let rc: Redis;
let a: RegistryFixture;
let b: RegistryFixture;
let hoster: HosterFixture;
let prefix: string;
let backupDir: string;
let cliEnv: NodeJS.ProcessEnv;

const first = 6000 + Math.floor(Math.random() * 390) * 10;
/** The period: short, as the registries' BERTH_ADDON_BACKUP_MIN_EVERY_MS allows here. */
const EVERY_MS = 2000;

function backupFiles(name: string): string[] {
  try {
    return readdirSync(join(backupDir, name)).filter((f) => !f.endsWith('.partial')).sort();
  } catch {
    return [];
  }
}

/** Now on Redis's clock, whose slots the periods are. */
async function redisNow(): Promise<number> {
  const [seconds, micros] = await rc.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

async function refused(call: Promise<unknown>): Promise<BerthApiError> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(BerthApiError);
  return err as BerthApiError;
}

/** Two registries of one cluster, one backup folder (as the docs ask); b takes a's token (its fixture's own client is not used). */
function registryOptions(): Record<string, unknown> {
  return { keyPrefix: prefix, reconcileIntervalMs: 50, drainMs: 200, addonPortRange: `${first}-${first + 9}`, addonBackupDir: backupDir, addonBackupsKept: 50, addonBackupMinEveryMs: 1000 };
}

let token: string;

function clientOf(r: RegistryFixture): BerthClient {
  return new BerthClient({ url: r.daemon.url, token, retries: 0 });
}

beforeAll(async () => {
  backupDir = mkdtempSync(join(tmpdir(), 'berth-addon-schedule-'));
  redis = await startRedis();
  rc = redis.client();
  prefix = testPrefix();
  a = await startTestRegistry(redis, registryOptions());
  token = a.token;
  b = await startTestRegistry(redis, { ...registryOptions(), token });
  hoster = await startTestHoster(redis, prefix, 'm1', { proxyUrl: 'http://127.0.0.1:1', capacity: 50 });
  cliEnv = { BERTH_URL: a.daemon.url, BERTH_TOKEN: a.token, NO_COLOR: '1', HOME: backupDir, BERTH_HOME: join(backupDir, 'cli') };
  const bundle = await uploadApp(a.client, { 'server.js': "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), process.env.HOST);\n" });
  await a.client.publishApp({ name: 'shop', path: '/shop', instances: 1, bundle });
}, 120_000);

afterAll(async () => {
  const c = a === undefined ? undefined : clientOf(a);
  for (const x of (await c?.listAddons().catch(() => [])) ?? []) await c!.destroyAddon(x.name, x.name).catch(() => undefined);
  await waitFor(() => (hoster?.daemon.addons.servers.size ?? 0) === 0, { deadlineMs: 30_000, what: 'add-on servers stopped' }).catch(() => undefined);
  await c?.deleteApp('shop').catch(() => undefined);
  await hoster?.close({ evacuate: false });
  rc?.disconnect();
  await b?.close();
  await a?.close();
  await redis?.stop();
  if (backupDir) rmSync(backupDir, { recursive: true, force: true });
}, 120_000);

describe('scheduled add-on backups', () => {
  it('takes one backup per period with two registries running, never two, and shows the schedule in addons:info', async () => {
    const c = a.client;
    const addon = await c.createAddon({ app: 'shop', kind: 'redis', machine: 'm1', memoryMb: 32 });
    await waitFor(async () => (await c.getAddon(addon.name)).state === 'running', { deadlineMs: 60_000, what: `${addon.name} running` });
    expect((await c.getAddon(addon.name)).backupSchedule).toBeNull();

    // Refused, nothing changed: a period that does not parse, one shorter than the registry allows, an unknown add-on.
    const record = async () => Object.entries(await rc.hgetall(`{${prefix}}:addon:${addon.name}`)).filter(([k]) => !['leaseUntil', 'state', 'pid', 'detail', 'restarts'].includes(k) && !k.startsWith('usage')).sort();
    const before = await record();
    expect(await refused(c.scheduleAddonBackups(addon.name, 'daily'))).toMatchObject({ status: 400, code: 'invalid_request' });
    const short = await refused(c.scheduleAddonBackups(addon.name, '500ms'));
    expect(short).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(await refused(c.scheduleAddonBackups(addon.name, '0s'))).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(await refused(c.scheduleAddonBackups('nothing-here', '24h'))).toMatchObject({ status: 404, code: 'addon_not_found' });
    expect(await rc.exists(`{${prefix}}:addon:nothing-here`)).toBe(0);
    expect(await record()).toEqual(before);

    const setAt = await redisNow();
    const set = await runCli(['addons:backup', addon.name, '--every', '2s'], cliEnv);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout + set.stderr).toMatch(new RegExp(`${addon.name} is backed up every 2s, next at \\d{4}-`));
    const scheduled = await c.getAddon(addon.name);
    expect(scheduled.backupSchedule).toMatchObject({ every: '2s', everyMs: EVERY_MS });
    // The next period's start; or, once a period has begun whose backup no pass has taken yet, now
    // (a loaded machine may read it then).
    const firstAt = scheduled.backupSchedule!.nextAt;
    expect(firstAt % EVERY_MS === 0 || firstAt <= (await redisNow()), `next at ${firstAt}`).toBe(true);
    // Either registry answers the same.
    expect((await clientOf(b).getAddon(addon.name)).backupSchedule).toMatchObject({ every: '2s' });

    await waitFor(() => backupFiles(addon.name).length >= 2, { deadlineMs: 30_000, what: 'two scheduled backups' });
    // Half a period more, so that a second backup of one period (both registries taking it) would have been taken by now.
    const seen = await redisNow();
    await waitFor(async () => (await redisNow()) > seen + EVERY_MS / 2, { deadlineMs: 10_000, what: 'half a period' });
    // Both registries stop (a pass under way finishes first): no backup is claimed after this.
    await b.daemon.close();
    await a.daemon.close();
    const stoppedAt = await redisNow();
    const files = backupFiles(addon.name);
    // One per period at most: no more backups than periods begun since the schedule was set.
    const periods = Math.floor(stoppedAt / EVERY_MS) - Math.floor(setAt / EVERY_MS);
    expect(files.length).toBeGreaterThanOrEqual(2);
    expect(files.length, `${files.join(', ')} in ${periods} periods`).toBeLessThanOrEqual(periods);

    // Both back, the schedule as it was.
    a = await startTestRegistry(redis, { ...registryOptions(), token });
    b = await startTestRegistry(redis, { ...registryOptions(), token });
    cliEnv = { ...cliEnv, BERTH_URL: a.daemon.url };
    const info = await runCli(['addons:info', addon.name], cliEnv);
    expect(info.stdout).toMatch(/backups\s+every 2s, next at \d{4}-/);
    expect(info.stdout).toMatch(/last scheduled backup\s+\d{8}T\d{9}Z \(/);

    // The add-on stops: the next period's backup fails, is recorded and shown, and waits for the period after.
    await hoster.daemon.close({ evacuate: false });
    await waitFor(async () => (await clientOf(a).getAddon(addon.name)).lastScheduledBackup?.error !== null, { deadlineMs: 30_000, what: 'a failed scheduled backup recorded' });
    const failed = (await clientOf(a).getAddon(addon.name)).lastScheduledBackup!;
    expect(failed.error).toMatch(new RegExp(`${addon.name} is (stopped|unavailable)`));
    const shown = await runCli(['addons:info', addon.name], cliEnv);
    expect(shown.stdout).toMatch(/last scheduled backup\s+failed .*: .* is (stopped|unavailable)/);
    // Not tried again in a loop: the next try is in the next period, not at the next pass (a try is recorded at its claim).
    const failedAt = failed.at;
    await waitFor(async () => (await clientOf(a).getAddon(addon.name)).lastScheduledBackup!.at !== failedAt, { deadlineMs: 30_000, what: 'the next period tried' });
    const nextAt = (await clientOf(a).getAddon(addon.name)).lastScheduledBackup!.at;
    expect(Math.floor(nextAt / EVERY_MS), `tried at ${failedAt} and again at ${nextAt}`).toBeGreaterThan(Math.floor(failedAt / EVERY_MS));

    // Off: no more are taken; the ones taken stay.
    const off = await clientOf(a).scheduleAddonBackups(addon.name, 'off');
    expect(off.backupSchedule).toBeNull();
    expect(backupFiles(addon.name).length).toBeGreaterThanOrEqual(2);
  }, 180_000);
});
