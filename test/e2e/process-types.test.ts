// Process types and the release phase with real processes, two registries and two hosters
// racing for the work: a Procfile with web, worker and release lines; the release command runs
// exactly once, before web starts, its output in the deploy; the worker's output is in the logs with its type, and a worker SIGKILLed comes back;
// `scale web=2 worker=2` is honoured and bad counts or types are refused; types given with the CLI's
// `--process NAME=COMMAND` run without a Procfile; a worker is evacuated
// with its machine and comes back on the other; a failing release
// command (exit 1, or past its timeout) fails the release (release_command_failed) while the old
// one serves every request.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import type { Instance } from '../../sdk/types.js';
import { runCli } from '../helpers/cli-process.js';
import { startTestHoster, traversableTempDir, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let proxy: ProxyDaemon;
let proxy2: ProxyDaemon;
let registry: RegistryFixture;
let hoster: HosterFixture;
let registry2: RegistryFixture;
let hoster2: HosterFixture;
let client: BerthClient;
let work: string;
let marks: string;
let env: NodeJS.ProcessEnv;

const SERVER = `const http = require('node:http');
const fs = require('node:fs');
fs.appendFileSync(process.env.MARKS + '/web.log', Date.now() + ' ' + process.env.BERTH_RELEASE + '\\n');
http.createServer((req, res) => res.end('web ' + process.env.BERTH_RELEASE)).listen(process.env.PORT, '127.0.0.1');
`;
const WORKER = `console.log('worker up, PORT=' + (process.env.PORT ?? 'none') + ', type ' + process.env.BERTH_PROCESS);
setInterval(() => console.log('worker tick ' + process.pid), 300);
`;
const MIGRATE = (ok: boolean) => `const fs = require('node:fs');
console.log('migrating ' + process.env.BERTH_RELEASE);
fs.appendFileSync(process.env.MARKS + '/release.log', Date.now() + ' ' + process.env.BERTH_RELEASE + '\\n');
${ok ? '' : "console.error('migration 7 broke: column exists'); process.exit(1);"}
`;

function appFolder(name: string, files: Record<string, string>): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

const jobsApp = (migrateOk: boolean, name: string) =>
  appFolder(name, {
    'package.json': JSON.stringify({ name: 'jobs', version: '1.0.0' }),
    Procfile: 'web: node server.js\nworker: node worker.js\nrelease: node migrate.js\n',
    'server.js': SERVER,
    'worker.js': WORKER,
    'migrate.js': MIGRATE(migrateOk),
  });

const lines = (file: string): string[] => {
  try {
    return readFileSync(join(marks, file), 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

const running = (all: Instance[], type: string, release?: number) => all.filter((i) => i.process === type && i.state === 'running' && (release === undefined || i.release === release));

beforeAll(async () => {
  redis = await startRedis();
  const prefix = testPrefix();
  proxy = await startTestProxy(redis, prefix, 'm1');
  registry = await startTestRegistry(redis, { keyPrefix: prefix, publicUrl: proxy.url, reconcileIntervalMs: 50, drainMs: 200 });
  client = registry.client;
  // A second registry reconciles too (one leads at a time) and a second hoster races for claims.
  registry2 = await startTestRegistry(redis, { keyPrefix: prefix, publicUrl: proxy.url, reconcileIntervalMs: 50, drainMs: 200 });
  hoster = await startTestHoster(redis, prefix, 'm1', { proxyUrl: proxy.url });
  proxy2 = await startTestProxy(redis, prefix, 'm2');
  hoster2 = await startTestHoster(redis, prefix, 'm2', { proxyUrl: proxy2.url });
  work = traversableTempDir('berth-procs-');
  marks = join(work, 'marks');
  mkdirSync(marks);
  // The apps run as their own users: they may write here, and nowhere else of the test's.
  chmodSync(marks, 0o777);
  // Each machine's hoster makes the app a user of its own: both may append to these.
  for (const file of ['release.log', 'web.log']) {
    writeFileSync(join(marks, file), '');
    chmodSync(join(marks, file), 0o666);
  }
  const home = join(work, 'home');
  mkdirSync(home);
  env = { HOME: home, BERTH_HOME: join(home, 'berth'), BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token };
}, 60_000);

afterAll(async () => {
  for (const app of (await client?.listApps().catch(() => [])) ?? []) await client.deleteApp(app.name).catch(() => undefined);
  await hoster2?.close();
  await hoster?.close();
  await proxy?.close();
  await proxy2?.close();
  await registry2?.close();
  await registry?.close();
  await redis?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('web + worker + release', () => {
  it('runs the release command once, before web starts, and shows it in the deploy', async () => {
    const dir = jobsApp(true, 'jobs-v1');
    const r = await runCli(['publish', dir, '--name', 'jobs', '--path', '/jobs', '--env', `MARKS=${marks}`, '--timeout', '90'], env, { deadlineMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toContain('-----> Running release command: node migrate.js');
    const released = lines('release.log');
    expect(released).toHaveLength(1);
    expect(released[0]).toMatch(/ v1$/);
    const web = lines('web.log');
    expect(web.length).toBeGreaterThan(0);
    // The migration had finished before any web process of the release started.
    expect(Number(web[0]!.split(' ')[0])).toBeGreaterThanOrEqual(Number(released[0]!.split(' ')[0]));
    const release = (await client.listReleases('jobs')).find((x) => x.version === 1)!;
    expect(release.processes).toEqual({ worker: 'node worker.js' });
    expect(release.releaseCommand).toBe('node migrate.js');
    expect(release.releaseTask).toMatchObject({ status: 'succeeded', detail: 'exit 0', machine: expect.stringMatching(/^m[12]$/) });
    expect(await (await fetch(`${proxy.url}/jobs`)).text()).toBe('web v1');
  });

  it('runs the worker without a port or route, its output in the logs with its type', async () => {
    // The worker starts after the release command, beside web: on a loaded machine, a moment later.
    const all = await waitFor(async () => {
      const now = await client.listAppInstances('jobs');
      return running(now, 'worker', 1).length === 1 && running(now, 'web', 1).length === 1 ? now : undefined;
    }, { deadlineMs: 30_000, what: 'the worker and web of v1 running' });
    const [worker] = running(all, 'worker', 1);
    expect(worker).toBeDefined();
    expect(worker!.port).toBeNull();
    // The release task is gone once done: it ran once.
    expect(all.filter((i) => i.process === 'release')).toEqual([]);
    await waitFor(async () => (await client.logs('jobs', 500)).some((l) => l.process === 'worker' && l.line.startsWith('worker tick')), { deadlineMs: 10_000 });
    const logs = await client.logs('jobs', 500);
    expect(logs.find((l) => l.process === 'worker' && l.line.startsWith('worker up'))?.line).toBe('worker up, PORT=none, type worker');
    expect(logs.filter((l) => l.process === 'release').map((l) => l.stream)).not.toContain('out');
    const byType = await runCli(['logs', 'jobs', '--type', 'worker', '-n', '200'], env);
    expect(byType.code, byType.stderr).toBe(0);
    expect(byType.stdout).toContain('worker tick');
    expect(byType.stdout).not.toContain('migrating');
    // The proxies route web instances only: the worker is in neither table.
    for (const p of [proxy, proxy2]) {
      const report = (await (await fetch(`${p.url}/_berth/routes`)).json()) as { routes: Array<{ app: string; local: Array<{ instance: string }>; remote: Record<string, Array<{ instance: string }>> }> };
      const jobs = report.routes.find((r) => r.app === 'jobs')!;
      const routed = [...jobs.local, ...Object.values(jobs.remote).flat()].map((u) => u.instance);
      expect(routed).toContain(running(all, 'web', 1)[0]!.id);
      expect(routed).not.toContain(worker!.id);
    }
    const listed = await runCli(['instances', 'jobs'], env);
    expect(listed.stdout).toMatch(/TYPE/);
    expect(listed.stdout).toMatch(/\bworker\b/);
  });

  it('restarts a worker that is SIGKILLed', async () => {
    const [worker] = running(await client.listAppInstances('jobs'), 'worker');
    const pid = worker!.pid!;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => {
      const again = (await client.listAppInstances('jobs')).find((i) => i.id === worker!.id);
      return again !== undefined && again.state === 'running' && again.pid !== null && again.pid !== pid;
    }, { deadlineMs: 20_000 });
  });

  it('honours per-type counts and refuses bad ones with nothing changed', async () => {
    const r = await runCli(['scale', 'jobs', 'web=2', 'worker=2', '--timeout', '60'], env, { deadlineMs: 90_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await waitFor(async () => {
      const all = await client.listAppInstances('jobs');
      return running(all, 'web').length === 2 && running(all, 'worker').length === 2;
    }, { deadlineMs: 30_000 });
    const before = await client.getApp('jobs');
    expect(before.instances).toBe(2);
    expect(before.formation).toEqual({ worker: 2 });

    const unknown = await runCli(['scale', 'jobs', 'web=1', 'clock=1'], env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no process type "clock"/);
    const tooMany = await runCli(['scale', 'jobs', 'worker=100000'], env);
    expect(tooMany.code).not.toBe(0);
    const word = await runCli(['scale', 'jobs', 'worker=two'], env);
    expect(word.code).not.toBe(0);
    expect(word.stderr).toMatch(/Expected a whole number of instances \(0 or more\) for web, or TYPE=N/);
    await expect(client.scaleApp('jobs', { formation: { release: 2 } })).rejects.toMatchObject({ code: 'invalid_request' });
    const after = await client.getApp('jobs');
    expect({ instances: after.instances, formation: after.formation }).toEqual({ instances: 2, formation: { worker: 2 } });

    const back = await runCli(['scale', 'jobs', 'web=1', 'worker=1', '--timeout', '60'], env, { deadlineMs: 90_000 });
    expect(back.code, back.stderr).toBe(0);
    await waitFor(async () => {
      const all = await client.listAppInstances('jobs');
      return running(all, 'web').length === 1 && running(all, 'worker').length === 1 && all.every((i) => i.state === 'running');
    }, { deadlineMs: 30_000 });
  });

  it('refuses a Procfile line without a command at publish, with nothing changed', async () => {
    const before = (await client.listReleases('jobs')).length;
    const dir = appFolder('jobs-bad-procfile', { 'package.json': '{"name":"jobs"}', Procfile: 'web: node server.js\nworker:\n', 'server.js': SERVER });
    const r = await runCli(['publish', dir, '--name', 'jobs', '--path', '/jobs', '--no-wait'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Procfile line 2.*no command after "worker:"/);
    expect((await client.listReleases('jobs')).length).toBe(before);
  });

  it('takes process types from --process NAME=COMMAND without a Procfile, and refuses a malformed one with nothing published', async () => {
    const dir = appFolder('pipes', {
      'package.json': '{"name":"pipes"}',
      'server.js': "require('node:http').createServer((req, res) => res.end('pipes')).listen(process.env.PORT, '127.0.0.1');\n",
      'worker.js': WORKER,
    });
    const bad = await runCli(['publish', dir, '--name', 'pipes', '--path', '/pipes', '--process', 'worker', '--no-wait'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('Expected NAME=COMMAND');
    expect((await client.listApps()).some((a) => a.name === 'pipes')).toBe(false);

    const r = await runCli(['publish', dir, '--name', 'pipes', '--path', '/pipes', '--process', 'worker=node worker.js', '--timeout', '60'], env, { deadlineMs: 90_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await client.listReleases('pipes'))[0]!.processes).toEqual({ worker: 'node worker.js' });
    await waitFor(async () => running(await client.listAppInstances('pipes'), 'worker').length === 1, { deadlineMs: 30_000, what: 'the worker of pipes to run' });
    await waitFor(async () => (await client.logs('pipes', 200)).some((l) => l.process === 'worker' && l.line === 'worker up, PORT=none, type worker'), {
      deadlineMs: 10_000,
      what: "the worker's first line in the logs",
    });
    // Gone again, so that the tests after this one see jobs alone on the machines.
    await client.deleteApp('pipes');
    await waitFor(async () => !(await client.listApps()).some((a) => a.name === 'pipes'), { deadlineMs: 30_000, what: 'pipes to be removed' });
  });

  it('fails a release whose release command exits 1: the old release serves every request, nothing new starts', async () => {
    const dir = jobsApp(false, 'jobs-v2');
    let serving = true;
    let ok = 0;
    const failed: string[] = [];
    const loop = (async () => {
      while (serving) {
        try {
          const res = await fetch(`${proxy.url}/jobs`, { signal: AbortSignal.timeout(5000) });
          const text = await res.text();
          if (res.status === 200 && text === 'web v1') ok++;
          else failed.push(`${res.status} ${text}`);
        } catch (err) {
          failed.push(String(err));
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const r = await runCli(['publish', dir, '--name', 'jobs', '--path', '/jobs', '--env', `MARKS=${marks}`, '--timeout', '90'], env, { deadlineMs: 120_000 });
    serving = false;
    await loop;
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain('-----> Running release command: node migrate.js');
    expect(r.stderr).toMatch(/failed: release_command_failed on m[12]: exit 1/);
    expect(r.stderr).toContain('migration 7 broke: column exists');
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    const failedRelease = (await client.listReleases('jobs')).find((x) => x.status === 'failed')!;
    expect(failedRelease.releaseTask).toMatchObject({ status: 'failed', machine: expect.stringMatching(/^m[12]$/) });
    // It ran once, and no web or worker of it ever started.
    expect(lines('release.log').filter((l) => l.endsWith(` v${failedRelease.version}`))).toHaveLength(1);
    expect(lines('web.log').filter((l) => l.endsWith(` v${failedRelease.version}`))).toEqual([]);
    expect((await client.listAppInstances('jobs')).filter((i) => i.release === failedRelease.version)).toEqual([]);
    expect((await client.getApp('jobs')).release).toBe(1);
  });

  it('fails a release whose release command runs past its timeout, with nothing of it started', async () => {
    const dir = jobsApp(true, 'jobs-v3');
    const r = await runCli(
      ['publish', dir, '--name', 'jobs', '--path', '/jobs', '--env', `MARKS=${marks}`, '--release-command', 'node -e "console.log(\'stuck\'); setInterval(() => {}, 1000)"', '--release-timeout', '1', '--timeout', '90'],
      env,
      { deadlineMs: 120_000 },
    );
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/failed: release_command_failed on m[12]: timed out after 1 s/);
    expect(r.stderr).toContain('stuck');
    const failedRelease = (await client.listReleases('jobs'))[0]!;
    expect(failedRelease).toMatchObject({ status: 'failed', releaseTimeoutMs: 1000 });
    expect(lines('web.log').filter((l) => l.endsWith(` v${failedRelease.version}`))).toEqual([]);
    expect(await (await fetch(`${proxy.url}/jobs`)).text()).toBe('web v1');
  });

  it('evacuates a worker with its machine: it comes back on the other one', async () => {
    const [worker] = running(await client.listAppInstances('jobs'), 'worker');
    const leaving = worker!.machine === 'm1' ? 'm1' : 'm2';
    const staying = leaving === 'm1' ? 'm2' : 'm1';
    const fixture = leaving === 'm1' ? hoster : hoster2;
    await fixture.close({ evacuate: true });
    if (leaving === 'm1') hoster = undefined!;
    else hoster2 = undefined!;
    await waitFor(async () => {
      const all = await client.listAppInstances('jobs');
      return all.length > 0 && all.every((i) => i.machine === staying && i.state === 'running') && running(all, 'worker').length === 1 && running(all, 'web').length === 1;
    }, { deadlineMs: 30_000 });
    await waitFor(async () => (await client.logs('jobs', 200)).some((l) => l.process === 'worker' && l.line.startsWith('worker tick') && !l.line.endsWith(` ${worker!.pid}`)), { deadlineMs: 10_000 });
  });
});
