// Scheduled jobs through the real CLI, with two registries on one Redis and a real hoster: a job every second fires exactly once per tick (no tick twice, none skipped while they run), each tick a detached run whose output is in the app's logs and whose result cron:list shows; bad schedules get 400 with croner's words; remove stops it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BerthClient } from '../../sdk/berth-client.js';
import type { CronJob, Run } from '../../sdk/types.js';
import { runCli } from '../helpers/cli-process.js';
import { startTestHoster, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let registries: RegistryFixture[];
let hoster: HosterFixture;
let client: BerthClient;
let work: string;
let env: NodeJS.ProcessEnv;

const APP = 'ticker';

beforeAll(async () => {
  redis = await startRedis();
  const prefix = testPrefix();
  registries = [
    await startTestRegistry(redis, { keyPrefix: prefix, reconcileIntervalMs: 50, drainMs: 200 }),
  ];
  // The second registry shares the first's token, as registries of one platform do.
  registries.push(await startTestRegistry({ url: redis.url, env: { BERTH_TOKEN: registries[0]!.token } }, { keyPrefix: prefix, reconcileIntervalMs: 50, drainMs: 200 }));
  client = registries[0]!.client;
  hoster = await startTestHoster(redis, prefix, 'm1', { proxyUrl: 'http://127.0.0.1:1', capacity: 50 });
  work = mkdtempSync(join(tmpdir(), 'berth-cron-'));
  const home = join(work, 'home');
  mkdirSync(home);
  env = { HOME: home, BERTH_HOME: join(home, 'berth'), BERTH_URL: registries[1]!.daemon.url, BERTH_TOKEN: registries[0]!.token, NO_COLOR: '1' };
  const app = join(work, APP);
  mkdirSync(app);
  writeFileSync(join(app, 'server.js'), "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');\n");
  const r = await runCli(['publish', app, '--path', '/ticker', '--timeout', '60'], env, { deadlineMs: 90_000 });
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  for (const app of await client.listApps().catch(() => [])) await client.deleteApp(app.name).catch(() => undefined);
  await hoster?.close({ evacuate: true });
  for (const r of registries ?? []) await r.close();
  await redis?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('berth cron', () => {
  it('a job every second fires once per tick across two registries', async () => {
    const added = await runCli(['cron:add', APP, '* * * * * *', '--json', '--', 'node', '-e', "console.log('tick from ' + process.env.BERTH_RUN)"], env);
    expect(added.code, added.stderr).toBe(0);
    const job = JSON.parse(added.stdout) as CronJob;
    expect(job).toMatchObject({ app: APP, schedule: '* * * * * *', command: ['node', '-e', "console.log('tick from ' + process.env.BERTH_RUN)"], lastRun: null });
    const cronRuns = async () => (await client.listRuns(APP)).filter((r) => r.cron === job.id);
    await waitFor(async () => (await cronRuns()).filter((r) => r.state === 'exited').length >= 5, { deadlineMs: 30_000, what: 'five ticks run' });
    const removed = await runCli(['cron:remove', APP, job.id], env);
    expect(removed.code, removed.stderr).toBe(0);
    // Whatever was fired before the removal finishes; nothing is fired after.
    await waitFor(async () => (await cronRuns()).every((r) => r.finishedAt !== null), { deadlineMs: 30_000, what: 'the last ticks finish' });
    const runs: Run[] = await cronRuns();
    const ticks = runs.map((r) => r.cronTick!).sort((a, b) => a - b);
    // Once per tick: no tick has two runs, and no tick between the first and the last is missing.
    expect(new Set(ticks).size).toBe(ticks.length);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!).toBe(1000);
    expect(ticks.every((t) => t % 1000 === 0)).toBe(true);
    for (const run of runs) expect(run).toMatchObject({ state: 'exited', exitCode: 0, detached: true, release: 1 });
    // Their output is in the app's logs, under each run's id.
    const logs = await client.logs(APP, 1000);
    for (const run of runs) expect(logs.some((l) => l.instance === run.id && l.line === `tick from ${run.id}`)).toBe(true);
    const later = (await cronRuns()).length;
    // A second job on the same schedule shows the schedulers ticking on: two of its ticks fired
    // after the removal, and none of the removed job's.
    const witness = await client.addCron(APP, { schedule: '* * * * * *', command: ['node', '-e', '0'] });
    await waitFor(async () => (await client.listRuns(APP)).filter((r) => r.cron === witness.id).length >= 2, { deadlineMs: 30_000, what: 'two ticks of another job' });
    expect((await cronRuns()).length).toBe(later);
    await client.removeCron(APP, witness.id);
  });

  it('cron:list shows the next tick and the last result', async () => {
    // Once a minute, at a second 3 s from now: one tick in this test, and a stable last result after it.
    const second = Math.floor((Date.now() + 3000) / 1000) % 60;
    const schedule = `${second} * * * * *`;
    const added = await runCli(['cron:add', APP, schedule, '--json', '--', 'node', '-e', 'process.exit(4)'], env);
    expect(added.code, added.stderr).toBe(0);
    const job = JSON.parse(added.stdout) as CronJob;
    expect(job.nextAt! % 60_000).toBe(second * 1000);
    await waitFor(async () => (await client.listCron(APP)).find((j) => j.id === job.id)?.lastRun?.state === 'exited', { deadlineMs: 30_000, what: 'a tick finished' });
    const listed = await runCli(['cron:list', APP, '--json'], env);
    const [shown] = (JSON.parse(listed.stdout) as CronJob[]).filter((j) => j.id === job.id);
    expect(shown!.lastRun).toMatchObject({ state: 'exited', exitCode: 4 });
    expect(shown!.nextAt! - shown!.lastRun!.createdAt).toBeGreaterThan(50_000);
    const table = await runCli(['cron:list', APP], env);
    expect(table.stdout).toMatch(new RegExp(`^${job.id}\\s+${second} \\* \\* \\* \\* \\*\\s+node -e process.exit\\(4\\)\\s+\\S+\\s+${shown!.lastRun!.id}\\s+exited 4`, 'm'));
    await client.removeCron(APP, job.id);
  });

  it('refuses bad schedules with the parser words, unknown apps and unknown jobs', async () => {
    const bad = await runCli(['cron:add', APP, '61 * * * *', '--', 'node', '-e', '0'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Invalid value for minute: 61');
    await expect(client.addCron(APP, { schedule: 'every tuesday', command: ['node'] })).rejects.toMatchObject({ code: 'bad_cron', status: 400 });
    await expect(client.addCron(APP, { schedule: '* * * * *', command: [] })).rejects.toMatchObject({ code: 'invalid_request', status: 400 });
    await expect(client.addCron('nope', { schedule: '* * * * *', command: ['node'] })).rejects.toMatchObject({ code: 'app_not_found' });
    const gone = await runCli(['cron:remove', APP, '0123456789ab'], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('no cron job 0123456789ab');
    expect(await client.listCron(APP)).toEqual([]);
  });
});
