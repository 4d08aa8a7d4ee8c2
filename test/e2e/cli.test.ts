// The berth command, run as a separate process against a real registry, hoster and proxy: publish (without ignored files), republish, list, scale, config, rollback, logs, machines, load, delete, and clear errors.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { list } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { BerthApiError } from '../../sdk/api-error.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import type { AppDetails, Instance, Release } from '../../sdk/types.js';
import { runCli } from '../helpers/cli-process.js';
import { CLI_MAIN, startDaemon } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { startTestHoster, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const HELLO = fileURLToPath(new URL('../../examples/hello', import.meta.url));

let redis: TestRedis;
let proxy: ProxyDaemon;
let registry: RegistryFixture;
let hoster: HosterFixture;
let client: BerthClient;
let work: string;
/** The environment of a user with BERTH_URL and BERTH_TOKEN set. */
let env: NodeJS.ProcessEnv;
/** The environment of a user with neither, and an empty credentials folder. */
let bareEnv: NodeJS.ProcessEnv;
let appDir: string;

beforeAll(async () => {
  redis = await startRedis();
  const prefix = testPrefix();
  proxy = await startTestProxy(redis, prefix, 'm1');
  registry = await startTestRegistry(redis, { keyPrefix: prefix, publicUrl: proxy.url, reconcileIntervalMs: 50, drainMs: 200 });
  client = registry.client;
  hoster = await startTestHoster(redis, prefix, 'm1', { proxyUrl: proxy.url });
  work = mkdtempSync(join(tmpdir(), 'berth-cli-'));
  const home = join(work, 'home');
  mkdirSync(home);
  env = { HOME: home, BERTH_HOME: join(home, 'berth'), BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token };
  const bareHome = join(work, 'bare-home');
  mkdirSync(bareHome);
  bareEnv = { HOME: bareHome, BERTH_HOME: join(bareHome, 'berth') };

  // examples/hello, plus files its ignore files leave out, and folders never packed.
  appDir = join(work, 'hello');
  cpSync(HELLO, appDir, { recursive: true });
  writeFileSync(join(appDir, '.berthignore'), '# not for the servers\nsecret.txt\n');
  writeFileSync(join(appDir, 'secret.txt'), 'hunter2\n');
  writeFileSync(join(appDir, '.gitignore'), '*.log\n');
  writeFileSync(join(appDir, 'debug.log'), 'noise\n');
  mkdirSync(join(appDir, 'node_modules', 'left-out'), { recursive: true });
  writeFileSync(join(appDir, 'node_modules', 'left-out', 'index.js'), '');
});

afterAll(async () => {
  // Whatever a failed test left running is stopped, so that no app process outlives the suite.
  for (const app of await client.listApps().catch(() => [])) await client.deleteApp(app.name).catch(() => undefined);
  await waitFor(async () => (await client.listApps()).length === 0, { deadlineMs: 20_000, what: 'apps deleted' }).catch(() => undefined);
  await hoster?.close({ evacuate: true });
  await proxy?.close();
  await registry?.close();
  await redis?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function bundleFiles(digest: string): Promise<string[]> {
  const bytes = await client.downloadBundle(digest);
  const files: string[] = [];
  const parser = list({ onReadEntry: (e) => void (e.type === 'File' && files.push(e.path)) });
  const ended = new Promise((resolve) => parser.on('end', resolve));
  parser.end(Buffer.from(bytes));
  await ended;
  return files.sort();
}

async function greeting(): Promise<unknown> {
  const res = await fetch(`${proxy.url}/hello`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { greeting?: unknown }).greeting;
}

async function running(app: string): Promise<Instance[]> {
  return (await client.listAppInstances(app)).filter((i) => i.state === 'running');
}

describe('berth app commands', () => {
  it('publish packs the folder without ignored files, waits until it runs and prints its URL', async () => {
    const r = await runCli(['publish', appDir, '--timeout', '60'], env, { deadlineMs: 90_000 });
    expect(r.stderr).toContain('uploaded bundle');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^hello v1 active: 1\/1 running/m);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`${proxy.url}/hello`);

    const app = await client.getApp('hello');
    expect(app).toMatchObject({ path: '/hello', instances: 1, running: 1, release: 1 });
    expect(app.current?.status).toBe('active');
    expect(await bundleFiles(app.current!.bundle)).toEqual(['.berthignore', '.gitignore', 'package.json', 'server.js']);
    expect(await greeting()).toBe('Hello from berth');
  });

  it('publish again, unchanged, uploads nothing and deploys a new release', async () => {
    const r = await runCli(['publish', appDir, '--timeout', '60'], env, { deadlineMs: 90_000 });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('bundle already uploaded');
    expect(r.stdout).toMatch(/^hello v2 active: 1\/1 running/m);
    const releases = await client.listReleases('hello');
    expect(releases.map((x) => [x.version, x.status])).toEqual([
      [2, 'active'],
      [1, 'superseded'],
    ]);
  });

  it('apps, info, instances and releases print JSON with --json, tables without', async () => {
    const apps = await runCli(['apps', '--json'], env);
    expect(apps).toMatchObject({ code: 0, stderr: '' });
    expect((JSON.parse(apps.stdout) as AppDetails[]).map((a) => a.name)).toEqual(['hello']);

    const info = await runCli(['info', 'hello', '--json'], env);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout) as AppDetails).toMatchObject({ name: 'hello', release: 2, running: 1 });

    const instances = await runCli(['instances', 'hello', '--json'], env);
    expect(instances.code).toBe(0);
    const list = JSON.parse(instances.stdout) as Instance[];
    expect(list.filter((i) => i.state === 'running').map((i) => [i.machine, i.release, i.restarts])).toEqual([['m1', 2, 0]]);

    // A crash restarted in place under the same claim: RESTARTS (and --json) count it.
    const [live] = list.filter((i) => i.state === 'running');
    process.kill(live!.pid!, 'SIGKILL');
    await waitFor(async () => {
      const i = (await client.listAppInstances('hello')).find((x) => x.id === live!.id);
      return i?.state === 'running' && i.pid !== live!.pid && i.restarts === 1;
    }, { deadlineMs: 20_000, what: 'the killed app running again, counted' });
    const restarted = JSON.parse((await runCli(['instances', 'hello', '--json'], env)).stdout) as Instance[];
    expect(restarted.find((i) => i.id === live!.id)).toMatchObject({ epoch: live!.epoch, restarts: 1 });
    const instanceTable = await runCli(['instances', 'hello'], env);
    expect(instanceTable.stdout).toMatch(/^ID\s+TYPE\s+STATE\s+MACHINE\s+PORT\s+EPOCH\s+RESTARTS\s+RELEASE$/m);
    expect(instanceTable.stdout).toMatch(new RegExp(`^${live!.id}\\s+web\\s+running\\s+m1\\s+${live!.port}\\s+${live!.epoch}\\s+1\\s+v2$`, 'm'));

    const releases = await runCli(['releases', 'hello', '--json'], env);
    expect(releases.code).toBe(0);
    expect((JSON.parse(releases.stdout) as Release[]).map((x) => x.version)).toEqual([2, 1]);

    const table = await runCli(['apps'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+PATH\s+STATUS\s+RUNNING\/WANTED\s+RELEASE\s+URL$/m);
    expect(table.stdout).toMatch(new RegExp(`^hello\\s+/hello\\s+running\\s+1/1\\s+v2\\s+${proxy.url}/hello$`, 'm'));
    // No colour codes when stdout is not a terminal.
    expect(table.stdout).not.toContain('\x1b[');

    const releaseTable = await runCli(['releases', 'hello'], env);
    expect(releaseTable.stdout).toMatch(/^VERSION\s+STATUS\s+COMMIT\s+DESCRIPTION\s+BY\s+WHEN$/m);
    expect(releaseTable.stdout).toMatch(/^v2\s+active\s+-\s+Redeploy\s+\S+\s+\d+s ago$/m);
    expect(releaseTable.stdout).toMatch(/^v1\s+superseded\s+-\s+Deploy [0-9a-f]{7}\s+\S+\s+\d+s ago$/m);
  });

  it('scale waits until as many instances run as asked', async () => {
    const r = await runCli(['scale', 'hello', '2'], env, { deadlineMs: 90_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello: 2/2 running\n');
    expect(await running('hello')).toHaveLength(2);
  });

  it('config:set makes a new release that the app runs with', async () => {
    const r = await runCli(['config:set', 'hello', 'GREETING=hi there'], env, { deadlineMs: 90_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello v3 active: set GREETING\n');
    expect(await client.getConfig('hello')).toEqual({ GREETING: 'hi there' });
    const now = await running('hello');
    expect(now.map((i) => i.release)).toEqual([3, 3]);
    await waitFor(async () => (await greeting()) === 'hi there', { what: 'the new greeting through the proxy' });

    const config = await runCli(['config', 'hello'], env);
    expect(config).toMatchObject({ code: 0, stdout: 'GREETING=hi there\n' });
  });

  it('rollback deploys the release before again', async () => {
    const r = await runCli(['rollback', 'hello'], env, { deadlineMs: 90_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello v4 active (Rollback to v2)\n');
    expect(await client.getConfig('hello')).toEqual({});
    await waitFor(async () => (await greeting()) === 'Hello from berth', { what: 'the old greeting through the proxy' });
  });

  it('restart replaces every instance, one release later, without a failed request', async () => {
    const before = (await running('hello')).map((i) => i.id);
    expect(before).toHaveLength(2);
    let failures = 0;
    let total = 0;
    let loading = true;
    const load = (async () => {
      while (loading) {
        const res = await fetch(`${proxy.url}/hello`).catch(() => undefined);
        if (res?.status !== 200) failures++;
        await res?.arrayBuffer();
        total++;
      }
    })();
    const r = await runCli(['restart', 'hello'], env, { deadlineMs: 90_000 });
    loading = false;
    await load;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('hello restarted: v5 active\n');
    expect(failures, `${failures} of ${total} requests failed`).toBe(0);
    expect(total).toBeGreaterThan(10);
    const after = await running('hello');
    expect(after.map((i) => i.release)).toEqual([5, 5]);
    for (const i of after) expect(before).not.toContain(i.id);
    expect((await client.listReleases('hello'))[0]).toMatchObject({ version: 5, description: 'Restart (v4)' });
  });

  it('restart --instance replaces that instance alone, make before break, without a release or a failed request', async () => {
    const before = await running('hello');
    expect(before).toHaveLength(2);
    const [victim, other] = before;
    let failures = 0;
    let total = 0;
    let loading = true;
    const load = (async () => {
      while (loading) {
        const res = await fetch(`${proxy.url}/hello`).catch(() => undefined);
        if (res?.status !== 200) failures++;
        await res?.arrayBuffer();
        total++;
      }
    })();
    const r = await runCli(['restart', 'hello', '--instance', victim!.id], env, { deadlineMs: 90_000 });
    loading = false;
    await load;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`hello: instance ${victim!.id} replaced\n`);
    expect(failures, `${failures} of ${total} requests failed`).toBe(0);
    const after = await running('hello');
    expect(after).toHaveLength(2);
    expect(after.map((i) => i.id)).not.toContain(victim!.id);
    expect(after.map((i) => i.id)).toContain(other!.id);
    expect(after.map((i) => i.release)).toEqual([5, 5]);
    expect((await client.listReleases('hello'))[0]!.version).toBe(5);

    const unknown = await runCli(['restart', 'hello', '--instance', 'ffffffffffffffff'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('hello has no instance ffffffffffffffff');
  });

  it('a reader that closes stdout early (berth releases hello | head -1) ends it with exit 0 and nothing on stderr', async () => {
    const child = spawn(process.execPath, [CLI_MAIN, 'releases', 'hello'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before the first line is written: every write then meets EPIPE, as after head's first line.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | string>((resolve) => child.once('close', (c, signal) => resolve(c ?? signal ?? -1)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it("logs prints the app's output, each line prefixed with its instance and stream; -f follows until Ctrl-C", async () => {
    const r = await runCli(['logs', 'hello', '-n', '50'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{8} out \| hello listening on 127\.0\.0\.1:\d+$/m);

    const follow = startDaemon(['logs', 'hello', '-f', '-n', '5'], env);
    try {
      await waitFor(() => follow.output().includes('hello listening on'), { what: 'followed log lines' });
      follow.kill('SIGINT');
      expect(await follow.exited).toBe(0);
    } finally {
      follow.kill('SIGKILL');
    }
  });

  it("machines, load and culprit report every machine; one whose proxy does not answer shows an error, not a crash", async () => {
    const deadPort = await getPort();
    await registry.daemon.store.heartbeat('m2', { proxy: `http://127.0.0.1:${deadPort}`, cpus: 1, load: 0, instances: 0 });

    const machines = await runCli(['machines', '--json'], env);
    expect(machines.code).toBe(0);
    expect((JSON.parse(machines.stdout) as Array<{ name: string }>).map((m) => m.name).sort()).toEqual(['m1', 'm2']);
    const machineTable = await runCli(['machines'], env);
    expect(machineTable.stdout).toMatch(/^NAME\s+PROXY\s+CPUS\s+LOAD\s+INSTANCES\s+LAST-HEARTBEAT$/m);
    expect(machineTable.stdout).toMatch(new RegExp(`^m1\\s+${proxy.url}\\s+\\d+\\s+[\\d.]+\\s+\\d+/\\d+\\s+\\d+s ago$`, 'm'));

    const load = await runCli(['load', '--json'], env);
    expect(load.code).toBe(0);
    const reports = JSON.parse(load.stdout) as Array<{ machine: string; report: { cpus: number } | null; error: string | null }>;
    const m1 = reports.find((x) => x.machine === 'm1')!;
    const m2 = reports.find((x) => x.machine === 'm2')!;
    expect(m1.error).toBeNull();
    expect(m1.report!.cpus).toBeGreaterThan(0);
    expect(m2.report).toBeNull();
    expect(m2.error).toBe('ECONNREFUSED');

    const loadTable = await runCli(['load'], env);
    expect(loadTable.code).toBe(0);
    expect(loadTable.stdout).toMatch(/^m2\s+error: ECONNREFUSED$/m);

    const culprit = await runCli(['culprit', '--json'], env);
    expect(culprit.code).toBe(0);
    const culprits = JSON.parse(culprit.stdout) as Array<{ machine: string; report: { machine: string } | null; error: string | null }>;
    expect(culprits.find((x) => x.machine === 'm1')!.report!.machine).toBe('m1');
    expect(culprits.find((x) => x.machine === 'm2')!.error).toBe('ECONNREFUSED');
  });

  it("tokens: an app's token is printed once and publishes that app; releases and audit name it; revoked, it is refused", async () => {
    const made = await runCli(['tokens:create', 'ci-hello', '--app', 'hello'], env);
    expect(made.code, made.stderr).toBe(0);
    const token = made.stdout.trim();
    expect(token).toMatch(/^berth_[0-9a-f]{40}$/);
    expect(made.stderr).toContain('reads and changes the app hello only');
    const ciEnv = { ...env, BERTH_TOKEN: token };
    const changed = await runCli(['config:set', 'hello', 'FROM=ci', '--no-wait'], ciEnv);
    expect(changed.code, changed.stderr).toBe(0);
    expect((await runCli(['releases', 'hello'], env)).stdout.split('\n')[1]).toContain('ci-hello');
    const elsewhere = await runCli(['tokens:list'], ciEnv);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toContain('managing tokens needs a token for every app');
    const list = await runCli(['tokens:list'], env);
    expect(list.stdout).toMatch(/^ci-hello\s+hello\s+read-write\s+admin /m);
    expect(list.stdout).not.toContain(token);
    expect((await runCli(['audit', '-n', '5'], env)).stdout).toMatch(/ci-hello\s+PATCH \/v1\/apps\/hello\/config\s+hello\s+201/);
    expect((await runCli(['tokens:revoke', 'ci-hello'], env)).code).toBe(0);
    const refused = await runCli(['apps'], ciEnv);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('token');
  });

  it('update --health-* sets the health check a new release runs with, keeping what is not given', async () => {
    const before = (await client.getApp('hello')).current!.healthCheck;
    const r = await runCli(['update', '--name', 'hello', '--health-attempts', '5', '--health-interval', '2', '--health-failures', '4', '--no-wait'], env);
    expect(r.code, r.stderr).toBe(0);
    const after = (await client.getApp('hello')).current!.healthCheck;
    expect(after).toEqual({ ...before, attempts: 5, intervalMs: 2000, failures: 4 });
    const bad = await runCli(['update', '--name', 'hello', '--health-attempts', '0'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Expected a whole number, 1 or more');
  });

  it('--health-timeout on publish and update reaches the release\'s health check in ms; a value out of 0.1 to 60 s is refused', async () => {
    const published = await runCli(['publish', appDir, '--name', 'timed', '--instances', '0', '--health-timeout', '0.5', '--no-wait'], env);
    expect(published.code, published.stderr).toBe(0);
    expect((await client.getApp('timed')).current!.healthCheck.timeoutMs).toBe(500);
    await client.deleteApp('timed');

    const before = (await client.getApp('hello')).current!.healthCheck;
    const updated = await runCli(['update', '--name', 'hello', '--health-timeout', '7', '--no-wait'], env);
    expect(updated.code, updated.stderr).toBe(0);
    expect((await client.getApp('hello')).current!.healthCheck).toEqual({ ...before, timeoutMs: 7000 });
    for (const value of ['0.05', '61', 'soon']) {
      const bad = await runCli(['update', '--name', 'hello', '--health-timeout', value], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("option '--health-timeout <seconds>' argument '" + value + "' is invalid. Expected a number of seconds from 0.1 to 60");
    }
  });

  it('delete asks for --yes off a terminal, then waits until the app is gone', async () => {
    const refused = await runCli(['delete', 'hello'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('berth delete hello --yes');
    expect((await client.getApp('hello')).state).toBe('active');

    const r = await runCli(['delete', 'hello', '--yes'], env, { deadlineMs: 60_000 });
    expect(r).toMatchObject({ code: 0, stdout: 'hello deleted\n' });
    await expect(client.getApp('hello')).rejects.toMatchObject({ code: 'app_not_found' });
    expect(await client.listAppInstances('hello').catch((err: BerthApiError) => err.code)).toBe('app_not_found');
  });
});

describe('berth errors', () => {
  it("an unknown app exits 1 with the API's message on stderr and nothing on stdout", async () => {
    const apiMessage = await client.getApp('nope').then(
      () => 'found',
      (err: BerthApiError) => err.message,
    );
    for (const args of [['info', 'nope'], ['info', 'nope', '--json'], ['scale', 'nope', '2'], ['logs', 'nope']]) {
      const r = await runCli(args, env);
      expect(r, args.join(' ')).toEqual({ code: 1, stdout: '', stderr: `berth: ${apiMessage}\n` });
    }
  });

  it('bad flags and arguments exit 1 with a usage message', async () => {
    const count = await runCli(['scale', 'hello', 'lots'], env);
    expect(count.code).toBe(1);
    expect(count.stdout).toBe('');
    expect(count.stderr).toContain('Expected a whole number of instances');

    const pair = await runCli(['publish', appDir, '--env', 'NOEQUALS'], env);
    expect(pair.code).toBe(1);
    expect(pair.stderr).toContain('Expected KEY=VALUE');
  });

  it('a folder with a symbolic link is refused, naming the link, and nothing is published', async () => {
    const dir = join(work, 'linked');
    mkdirSync(dir);
    writeFileSync(join(dir, 'server.js'), '');
    symlinkSync('server.js', join(dir, 'link.js'));
    const r = await runCli(['publish', dir], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`berth: ${join(dir, 'link.js')} is a symbolic link: bundles hold plain files only (the hoster refuses links). Replace it with a copy of what it points to, or leave it out with a line in .berthignore.\n`);
    await expect(client.getApp('linked')).rejects.toMatchObject({ code: 'app_not_found' });
  });

  it('without credentials, a command says to run berth up or berth login', async () => {
    const r = await runCli(['apps'], bareEnv);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^berth: No berth API is configured/);
    expect(r.stderr).toContain('`berth up`');
    expect(r.stderr).toContain('`berth login --url URL --token TOKEN`');
  });

  it('login checks the URL and token before saving them, then the other commands use them', async () => {
    const path = join(bareEnv.BERTH_HOME!, 'credentials.json');
    const wrong = await runCli(['login', '--url', registry.daemon.url, '--token', 'not-the-token'], bareEnv);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^berth: /);
    expect(existsSync(path)).toBe(false);

    const right = await runCli(['login', '--url', registry.daemon.url, '--token', registry.token], bareEnv);
    expect(right).toMatchObject({ code: 0, stdout: `logged in to ${registry.daemon.url} (saved in ${path})\n` });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const apps = await runCli(['apps', '--json'], bareEnv);
    expect(apps.code).toBe(0);
    expect(Array.isArray(JSON.parse(apps.stdout))).toBe(true);
    rmSync(path);
  });

  it('status says which API and token the CLI uses and what the token may do; --verbose says it for any command', async () => {
    const status = await runCli(['status'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`API:   ${registry.daemon.url}   (from BERTH_URL)`);
    expect(status.stdout).toContain(`token: ${registry.token.slice(0, 6)}…   (from BERTH_TOKEN)`);
    expect(status.stdout).toContain('as:    admin: reads and changes every app');
    expect(status.stdout).not.toContain(registry.token);
    const verbose = await runCli(['apps', '--verbose'], env);
    expect(verbose.code, verbose.stderr).toBe(0);
    expect(verbose.stderr).toContain(`berth: API ${registry.daemon.url} (from BERTH_URL), token ${registry.token.slice(0, 6)}… (from BERTH_TOKEN)`);
    expect(verbose.stderr).not.toContain(registry.token);
  });

  it('--help lists every command with examples, and each command has its own', async () => {
    const r = await runCli(['--help'], bareEnv);
    expect(r.code).toBe(0);
    for (const name of ['publish', 'update', 'apps', 'info', 'instances', 'scale', 'delete', 'releases', 'rollback', 'config', 'config:set', 'config:unset', 'logs', 'machines', 'load', 'culprit', 'restart', 'tokens:create', 'tokens:list', 'tokens:revoke', 'audit', 'git:remote', 'git:branch', 'git:credential', 'login', 'status', 'up']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
    expect(r.stdout).toContain('Examples:');
    const publish = await runCli(['publish', '--help'], bareEnv);
    expect(publish.code).toBe(0);
    expect(publish.stdout).toContain('.berthignore');
    expect(publish.stdout).toContain('$ berth publish');
  });
});
