// The five-minute tour, as a new user takes it: berth up, publish over the CLI, HTTPS through the balancer answered by every instance, scale up and down, an update under load with no failed request, rollback, config, logs, delete, a deploy by git push, one-off runs and a cron job, a PostgreSQL and a Redis add-on, and a clean stop with nothing left running.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appProcesses } from '../helpers/app-processes.js';
import { runCli } from '../helpers/cli-process.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { instancePortRange } from '../helpers/port-range.js';
import { platformProcesses } from '../helpers/platform-processes.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let dir: string;
let up: DaemonProcess;
let httpsPort: number;
let ca: string;
let env: NodeJS.ProcessEnv;

function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: httpsPort, path, ca, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** A random block of ten ports for add-ons, below the test hosters' instance ports. */
function addonPorts(): string {
  const first = 6000 + Math.floor(Math.random() * 390) * 10;
  return `${first}-${first + 9}`;
}

async function berth(...args: string[]): Promise<string> {
  const run = await runCli(args, env, { deadlineMs: 120_000 });
  if (run.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return run.stdout;
}

beforeAll(async () => {
  dir = traversableTempDir('berth-tour-');
  httpsPort = await getPort();
  env = {
    BERTH_HOME: join(dir, 'home'),
    // The tour's own load must not close the hoster's load gate on a busy test machine.
    BERTH_MAX_LOAD_PER_CPU: '1000', BERTH_PORT_RANGE: instancePortRange(),
    // Below every test hoster's instance ports (10000 and up), whose firewall rules, left by
    // hosters of other test runs on this host, refuse apps' connections to those ports.
    BERTH_ADDON_PORT_RANGE: addonPorts(),
    BERTH_DRAIN_MS: '500',
  };
  up = startDaemon(
    ['up', '--data-dir', join(dir, 'data'), '--api-port', String(await getPort()), '--proxy-port', String(await getPort()), '--https-port', String(httpsPort), '--redis-port', String(await getPort())],
    env,
  );
  await waitFor(() => up.output().includes('running: press Ctrl-C to stop'), { deadlineMs: 60_000, what: 'berth up' });
  ca = readFileSync(join(dir, 'data', 'tls', 'ca.pem'), 'utf8');
}, 90_000);

afterAll(async () => {
  up.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A process's environment, '' once it is gone. */
function environOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return '';
  }
}

describe('the five-minute tour', () => {
  it("berth up never prints the whole token: its first 6 characters and where the credentials file is", () => {
    const token = JSON.parse(readFileSync(join(dir, 'data', 'secrets.json'), 'utf8')).token as string;
    expect(up.output()).not.toContain(token);
    expect(up.output()).toContain(`token: ${token.slice(0, 6)}… (the whole token is in the CLI's credentials: ${join(dir, 'home', 'credentials.json')})`);
  });

  it('publishes, serves over HTTPS, scales, updates without a failed request, rolls back, configures, logs, deletes, stops cleanly', async () => {
    const secrets = JSON.parse(readFileSync(join(dir, 'data', 'secrets.json'), 'utf8')) as { token: string; redisPassword: string };
    let addonPasswords: string[] = [];
    const app = mkdtempSync(join(tmpdir(), 'berth-tour-app-'));
    cpSync(new URL('../../examples/hello', import.meta.url), app, { recursive: true });
    try {
      const published = await berth('publish', app, '--name', 'hello', '--path', '/hello', '--instances', '2');
      expect(published).toContain('/hello');

      const instances = new Set<string>();
      await waitFor(async () => {
        const r = await get('/hello');
        if (r.status === 200) instances.add(JSON.parse(r.body).instance);
        return instances.size === 2;
      }, { deadlineMs: 20_000, what: 'both instances answering over HTTPS' });

      // Secrets reach only who needs them, and not through the environment: no daemon, shim
      // or app of this platform has the token or the Redis password in its environment.
      const daemons = platformProcesses(dir);
      expect(daemons.filter((p) => / (registry|proxy|balancer|scaler|hoster)\b/.test(p)).length, daemons.join('\n')).toBeGreaterThanOrEqual(5);
      const apps = [...appProcesses().values()].flat().filter((pid) => environOf(pid).includes('BERTH_APP=hello'));
      expect(apps.length).toBeGreaterThanOrEqual(2);
      for (const pid of [...daemons.map((p) => Number(p.split(' ')[0])), ...apps]) {
        const environ = environOf(pid);
        expect(environ.includes(secrets.token), `the token in the environment of ${pid}`).toBe(false);
        expect(environ.includes(secrets.redisPassword), `the Redis password in the environment of ${pid}`).toBe(false);
      }

      await berth('scale', 'hello', '3');
      expect(JSON.parse(await berth('info', 'hello', '--json')).running).toBe(3);
      await berth('scale', 'hello', '1');
      await waitFor(async () => JSON.parse(await berth('instances', 'hello', '--json')).length === 1, { deadlineMs: 30_000, what: 'scaled to 1' });

      // An update under load: not one request may fail.
      let failures = 0;
      let total = 0;
      let loading = true;
      const releases = new Set<string>();
      const workers = Array.from({ length: 3 }, async () => {
        while (loading) {
          const r = await get('/hello').catch(() => ({ status: 0, body: '' }));
          if (r.status === 200) releases.add(JSON.parse(r.body).release);
          else failures++;
          total++;
        }
      });
      writeFileSync(join(app, 'server.js'), readFileSync(join(app, 'server.js'), 'utf8').replace("'Hello from berth'", "'Hello again'"));
      await berth('publish', app, '--name', 'hello', '--path', '/hello');
      const after = total;
      await waitFor(() => total > after + 100, { what: 'load after the update' });
      loading = false;
      await Promise.all(workers);
      expect(failures).toBe(0);
      expect(releases.has('v2')).toBe(true);
      expect(JSON.parse((await get('/hello')).body).greeting).toBe('Hello again');

      await berth('rollback', 'hello');
      expect(JSON.parse((await get('/hello')).body).greeting).toBe('Hello from berth');
      await berth('config:set', 'hello', 'GREETING=configured');
      expect(JSON.parse((await get('/hello')).body).greeting).toBe('configured');
      expect(await berth('logs', 'hello')).toContain('hello listening');

      await berth('delete', 'hello', '--yes');
      await waitFor(async () => (await get('/hello')).status === 404, { deadlineMs: 20_000, what: 'no_route after delete' });
      expect(JSON.parse((await get('/hello')).body).error.code).toBe('no_route');

      // Deploy with git push (the README's step): hello in a repository of its own, pushed to this platform.
      const repo = join(app, 'repo');
      cpSync(new URL('../../examples/hello', import.meta.url), repo, { recursive: true });
      const gitEnv = { ...env, PATH: process.env.PATH, HOME: join(dir, 'home'), GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'Dev', GIT_AUTHOR_EMAIL: 'dev@example.com', GIT_COMMITTER_NAME: 'Dev', GIT_COMMITTER_EMAIL: 'dev@example.com' };
      const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, env: gitEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
      git('init', '-q', '-b', 'main');
      git('add', '-A');
      git('commit', '-q', '-m', 'First version');
      const added = await runCli(['git:remote', 'hello-git', '--add'], env, { cwd: repo });
      expect(added.code, added.stderr).toBe(0);
      const pushed = spawnSync('git', ['push', 'berth', 'main'], { cwd: repo, env: gitEnv, encoding: 'utf8', timeout: 120_000 });
      expect(pushed.status, pushed.stderr).toBe(0);
      expect(pushed.stderr).toMatch(/remote: -----> hello-git v1 active: 1\/1 running/);
      expect(JSON.parse((await get('/hello-git')).body).greeting).toBe('Hello from berth');
      expect(JSON.parse(await berth('releases', 'hello-git', '--json'))[0].commit).toBe(git('rev-parse', 'HEAD'));
      await berth('delete', 'hello-git', '--yes');

      // Workers and a release command (the README's step): the same files, in a real berth up.
      const jobs = join(app, 'jobs');
      mkdirSync(jobs);
      writeFileSync(join(jobs, 'package.json'), '{"name":"jobs"}\n');
      writeFileSync(join(jobs, 'Procfile'), 'web: node server.js\nworker: node worker.js\nrelease: node migrate.js\n');
      writeFileSync(join(jobs, 'server.js'), "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT)\n");
      writeFileSync(join(jobs, 'worker.js'), "setInterval(() => console.log('working'), 1000)\n");
      writeFileSync(join(jobs, 'migrate.js'), "console.log('migrated')\n");
      const jobsPublished = await runCli(['publish', jobs], env, { deadlineMs: 120_000 });
      expect(jobsPublished.code, jobsPublished.stderr).toBe(0);
      expect(jobsPublished.stderr).toMatch(/-----> Running release command: node migrate\.js[^]*migrated/);
      expect((await get('/jobs')).body).toBe('ok');
      await berth('scale', 'jobs', 'web=2', 'worker=3');
      const jobInstances = JSON.parse(await berth('instances', 'jobs', '--json')) as Array<{ process: string; state: string }>;
      expect(jobInstances.filter((i) => i.state === 'running').map((i) => i.process).sort()).toEqual(['web', 'web', 'worker', 'worker', 'worker']);
      await waitFor(async () => (await berth('logs', 'jobs', '--type', 'worker')).includes('working'), { deadlineMs: 20_000, what: 'the workers\' lines' });
      // One-off runs and scheduled jobs (the README's step), on this berth up: a run's output and exit code, detached, listed, and a cron job every 10 s.
      await berth('publish', join(app, 'repo'), '--name', 'tasks', '--path', '/tasks');
      expect(await berth('run', 'tasks', '--', 'node', '-e', 'console.log(process.env.BERTH_RELEASE)')).toBe('v1\n');
      expect((await runCli(['run', 'tasks', '--', 'node', '-e', 'process.exit(3)'], env, { deadlineMs: 60_000 })).code).toBe(3);
      const detached = (await berth('run', 'tasks', '--detach', '--', 'node', '-e', "console.log('later')")).trim();
      await waitFor(async () => JSON.parse(await berth('runs', 'tasks', '--json')).find((r: { id: string }) => r.id === detached)?.state === 'exited', { deadlineMs: 30_000, what: 'the detached run done' });
      expect(await berth('runs:logs', 'tasks', detached)).toBe('later\n');
      await berth('cron:add', 'tasks', '*/10 * * * * *', '--', 'node', '-e', "console.log('tick')");
      await waitFor(async () => JSON.parse(await berth('cron:list', 'tasks', '--json'))[0]?.lastRun?.state === 'exited', { deadlineMs: 40_000, what: 'a cron tick run' });
      // A database for your app (the README's step): a PostgreSQL and a Redis on this berth up, reached through the app's variables.
      await berth('addons:create', 'tasks', 'postgres');
      await berth('addons:create', 'tasks', 'redis');
      await waitFor(async () => (JSON.parse(await berth('addons:list', '--json')) as { state: string }[]).every((a) => a.state === 'running'), { deadlineMs: 60_000, what: 'the add-ons running' });
      expect(await berth('addons:psql', 'tasks-postgres', '--', '-X', '-t', '-A', '-c', 'SELECT 40 + 2')).toBe('42\n');
      expect(await berth('addons:redis-cli', 'tasks-redis', '--', 'PING')).toBe('PONG\n');
      addonPasswords = (await berth('config', 'tasks')).split('\n').map((l) => /:([0-9a-f]{48})@/.exec(l)?.[1]).filter((p): p is string => p !== undefined);
      expect(addonPasswords).toHaveLength(2);
      await berth('addons:destroy', 'tasks-redis', '--confirm', 'tasks-redis');
      await berth('addons:destroy', 'tasks-postgres', '--confirm', 'tasks-postgres');
      await berth('delete', 'tasks', '--yes');
      await berth('delete', 'jobs', '--yes');
    } finally {
      rmSync(app, { recursive: true, force: true });
    }

    up.kill('SIGTERM');
    expect(await up.exited).toBe(0);
    await waitFor(() => platformProcesses(dir).length === 0, { deadlineMs: 15_000, what: 'nothing of the platform left running' }).catch((err: Error) => {
      throw new Error(`${err.message}; still running: ${platformProcesses(dir).join(' | ')}`);
    });
    // Every daemon's log went to berth up's output: after the whole tour, no secret in it.
    expect(up.output().length).toBeGreaterThan(1000);
    expect(up.output().includes(secrets.token), 'the token in the logs').toBe(false);
    expect(up.output().includes(secrets.redisPassword), 'the Redis password in the logs').toBe(false);
    for (const p of addonPasswords) expect(up.output().includes(p), "an add-on's password in the logs").toBe(false);
  }, 240_000);
});
