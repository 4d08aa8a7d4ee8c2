// The examples, published through a real `berth up` whose data dir lies in a 0700 folder (as
// a clone in /root does): express-app with the SDK's ten-line deploy script (its dependencies
// installed by the hoster's build, as the app's build user), ws-echo with the CLI and a
// WebSocket echo through TLS, balancer and proxy, notes with a PostgreSQL add-on it reaches
// through DATABASE_URL with the pg package (its table made by its release command); then `berth up` killed with SIGKILL leaves
// nothing running: no daemon, no Redis, no app.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appProcesses } from '../helpers/app-processes.js';
import { runCli } from '../helpers/cli-process.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { instancePortRange } from '../helpers/port-range.js';
import { chooseHosterDir } from '../../hoster/hoster-dir.js';
import { platformProcesses } from '../helpers/platform-processes.js';
import { waitFor } from '../helpers/wait-for.js';
import { openWebSocket } from '../helpers/websocket-client.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** An npm install of express from the registry is part of this deploy: give it room. */
const BUILD_DEADLINE_MS = 180_000;
const MESSAGE_DEADLINE_MS = 10_000;
const TAG = `examples-${process.pid}`;

let dir: string;
let up: DaemonProcess;
let httpsPort: number;
let apiPort: number;
let redisPort: number;
let ca: string;
let env: NodeJS.ProcessEnv;

function get(path: string, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: httpsPort, path, method, ca, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** A random block of ten ports for add-ons, below the test hosters' instance ports. */
function addonPorts(): string {
  const first = 6000 + Math.floor(Math.random() * 390) * 10;
  return `${first}-${first + 9}`;
}

function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** A copy of an example, so that nothing the test does lands in the repository. */
function example(name: string): string {
  const copy = join(dir, 'apps', name);
  cpSync(join(ROOT, 'examples', name), copy, { recursive: true, filter: (source) => !source.includes('node_modules') });
  return copy;
}

beforeAll(async () => {
  // 0700, like /root: apps, running as their own users, cannot traverse it.
  dir = mkdtempSync(join(tmpdir(), 'berth-examples-'));
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  httpsPort = await getPort();
  apiPort = await getPort();
  redisPort = await getPort();
  env = { BERTH_HOME: join(dir, 'home'), BERTH_MAX_LOAD_PER_CPU: '1000', BERTH_PORT_RANGE: instancePortRange(), BERTH_ADDON_PORT_RANGE: addonPorts(), BERTH_DRAIN_MS: '500' };
  up = startDaemon(
    ['up', '--data-dir', join(dir, 'data'), '--api-port', String(apiPort), '--proxy-port', String(await getPort()), '--https-port', String(httpsPort), '--redis-port', String(redisPort)],
    env,
  );
  await waitFor(() => up.output().includes('running: press Ctrl-C to stop'), { deadlineMs: 60_000, what: 'berth up' });
  ca = readFileSync(join(dir, 'data', 'tls', 'ca.pem'), 'utf8');
}, 90_000);

afterAll(async () => {
  up.kill('SIGKILL');
  await waitFor(() => platformProcesses(dir).length === 0 && appProcesses(TAG).size === 0, { deadlineMs: 30_000, what: 'platform stopped' }).catch(() => undefined);
  // As root the apps' files moved out of the 0700 folder, to where berth up said.
  const hosterDir = chooseHosterDir(join(dir, 'data'), { explicit: '', appsRunAsOthers: process.getuid?.() === 0 }).dir;
  rmSync(hosterDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('the examples through berth up', () => {
  it('express-app: the SDK deploy script ships it, the hoster installs its dependencies, it serves over HTTPS', async () => {
    const token = JSON.parse(readFileSync(join(dir, 'data', 'secrets.json'), 'utf8')).token as string;
    const app = example('express-app');
    const script = await new Promise<{ error: Error | null; output: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(ROOT, 'examples', 'sdk-deploy.mjs'), app, 'express'],
        { env: { PATH: process.env.PATH, BERTH_URL: `http://127.0.0.1:${apiPort}`, BERTH_TOKEN: token }, timeout: BUILD_DEADLINE_MS },
        (error, stdout, stderr) => resolve({ error, output: stdout + stderr }),
      );
    });
    expect(script.output).toContain('express runs on');
    expect(script.error).toBeNull();
    if (process.getuid?.() === 0) expect(up.output()).toMatch(/cannot traverse .*berth-examples-.* \(mode 0700\).*their files live in \/var\/lib\/berth\/hosters\//);

    const answer = await get('/express/some/where?x=1');
    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.body);
    expect(body).toMatchObject({ app: 'express', release: 'v1', path: '/express/some/where?x=1' });
    // Both instances answer through the balancer.
    const instances = new Set<string>();
    await waitFor(async () => {
      const r = await get('/express');
      if (r.status === 200) instances.add(JSON.parse(r.body).instance);
      return instances.size === 2;
    }, { deadlineMs: 20_000, what: 'both express instances answering' });
  }, BUILD_DEADLINE_MS + 60_000);

  it('ws-echo: published with the CLI, echoes WebSocket messages through TLS', async () => {
    const run = await runCli(['publish', example('ws-echo'), '--name', 'ws-echo', '--env', `TEST_TAG=${TAG}`], env, { deadlineMs: BUILD_DEADLINE_MS });
    expect(run.code, run.stderr).toBe(0);
    expect((await get('/ws-echo')).body).toBe('ws-echo\n');

    const socket = await openWebSocket({ host: '127.0.0.1', port: httpsPort, path: '/ws-echo/chat', ca, servername: 'localhost' });
    try {
      for (const text of ['hello', 'through TLS, the balancer and the proxy', '😀']) {
        socket.send(text);
        expect(await socket.receive(MESSAGE_DEADLINE_MS)).toBe(text);
      }
    } finally {
      socket.close();
    }
  }, BUILD_DEADLINE_MS + 60_000);

  it('notes: a PostgreSQL add-on it reaches through DATABASE_URL (pg from npm), its table made by its release command, notes written and read over HTTPS', async () => {
    const berth = async (...args: string[]) => {
      const run = await runCli(args, env, { deadlineMs: BUILD_DEADLINE_MS });
      expect(run.code, `berth ${args.join(' ')}: ${run.stderr}`).toBe(0);
      return run;
    };
    const published = await berth('publish', example('notes'), '--name', 'notes');
    expect(published.stderr).toContain('no DATABASE_URL yet: nothing to migrate');
    expect(await get('/notes/notes')).toMatchObject({ status: 503 });

    // The add-on comes with a new release (v2), whose release command makes the table.
    await berth('addons:create', 'notes', 'postgres');
    await waitFor(async () => (await get('/notes/notes')).status === 200, { deadlineMs: 90_000, what: 'notes v2 answering with its database' });
    expect(JSON.parse(await berth('releases', 'notes', '--json').then((r) => r.stdout))[0].version).toBe(2);
    for (const text of ['first note', 'second, through the balancer']) expect(await get('/notes/notes', 'POST', text)).toMatchObject({ status: 201 });
    const listed = JSON.parse((await get('/notes/notes')).body) as { notes: { id: number; text: string }[] };
    expect(listed.notes.map((n) => n.text)).toEqual(['first note', 'second, through the balancer']);
    // The rows are in the add-on's database, as psql (through berth run, as the app) sees them.
    const counted = await berth('addons:psql', 'notes-postgres', '--', '-X', '-t', '-A', '-c', 'SELECT count(*) FROM notes');
    expect(counted.stdout).toBe('2\n');

    await berth('addons:destroy', 'notes-postgres', '--confirm', 'notes-postgres');
    await berth('delete', 'notes', '--yes');
  }, BUILD_DEADLINE_MS + 120_000);

  it('berth up killed with SIGKILL: every daemon, Redis and every app stop by themselves', async () => {
    expect(appProcesses(TAG).size).toBe(1);
    expect(await portRefuses(redisPort)).toBe(false);
    up.kill('SIGKILL');
    await waitFor(
      async () => {
        const left = [...platformProcesses(dir), ...[...appProcesses(TAG).values()].flat().map((pid) => `app ${pid}`)];
        if (!(await portRefuses(redisPort))) left.push(`redis on ${redisPort}`);
        if (left.length > 0) throw new Error(`still running: ${left.join('; ')}`);
        return true;
      },
      { deadlineMs: 30_000, what: 'nothing left running after SIGKILL' },
    );
  }, 60_000);
});
