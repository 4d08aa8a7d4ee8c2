// berth run through the real CLI against a real registry and hoster: the command's output streams as it prints, its exit code is the CLI's, it runs as the app's user with the release's config; --detach prints an id that runs and logs --run follow; a time limit stops it (exit 124); a CLI that goes away stops its run; an interactive run on a PTY is driven through node-pty (prompt, keys, resize, Ctrl-C); bad input is refused.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn as spawnPty } from 'node-pty';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthApiError } from '../../sdk/api-error.js';
import { BerthClient } from '../../sdk/berth-client.js';
import type { Run } from '../../sdk/types.js';
import { runCli } from '../helpers/cli-process.js';
import { CLI_MAIN } from '../helpers/daemon-process.js';
import { startTestHoster, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: TestRedis;
let registry: RegistryFixture;
let hoster: HosterFixture;
let client: BerthClient;
let work: string;
let env: NodeJS.ProcessEnv;

const APP = 'jobs';

beforeAll(async () => {
  redis = await startRedis();
  const prefix = testPrefix();
  registry = await startTestRegistry(redis, { keyPrefix: prefix, reconcileIntervalMs: 50, drainMs: 200 });
  client = registry.client;
  hoster = await startTestHoster(redis, prefix, 'm1', { proxyUrl: 'http://127.0.0.1:1' });
  work = mkdtempSync(join(tmpdir(), 'berth-runs-'));
  const home = join(work, 'home');
  mkdirSync(home);
  env = { HOME: home, BERTH_HOME: join(home, 'berth'), BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token, NO_COLOR: '1' };
  const app = join(work, APP);
  mkdirSync(join(app, 'scripts'), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: APP, version: '1.0.0', scripts: { start: 'node server.js' } }));
  writeFileSync(
    join(app, 'server.js'),
    "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');\n",
  );
  // Prints a line, then another after a pause: the first must reach the CLI before the second is printed.
  writeFileSync(join(app, 'scripts', 'slow.js'), "console.log('first'); const later = setInterval(() => { console.log('second'); clearInterval(later); }, 1500);\n");
  writeFileSync(join(app, 'scripts', 'whoami.js'), "console.log(JSON.stringify({ uid: process.getuid(), greeting: process.env.GREETING, run: process.env.BERTH_RUN, port: process.env.PORT ?? null, cwd: process.cwd() }));\n");
  const r = await runCli(['publish', app, '--path', '/jobs', '--env', 'GREETING=hello', '--timeout', '60'], env, { deadlineMs: 90_000 });
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  for (const app of await client.listApps().catch(() => [])) await client.deleteApp(app.name).catch(() => undefined);
  await hoster?.close({ evacuate: true });
  await registry?.close();
  await redis?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function runOf(id: string): Promise<Run> {
  return client.getRun(APP, id);
}

describe('berth run', () => {
  it('exits with the command exit code, stdout and stderr apart', async () => {
    const r = await runCli(['run', APP, '--', 'node', '-e', "console.log('to out'); console.error('to err'); process.exit(3)"], env, { deadlineMs: 60_000 });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toBe('to out\n');
    expect(r.stderr).toContain('to err');
    const ok = await runCli(['run', APP, '--', 'node', '-e', 'process.exit(0)'], env, { deadlineMs: 60_000 });
    expect(ok.code, ok.stderr).toBe(0);
    // Ended by a signal: 128 + its number, as a shell says.
    const killed = await runCli(['run', APP, '--', 'node', '-e', "process.kill(process.pid, 'SIGTERM')"], env, { deadlineMs: 60_000 });
    expect(killed.code).toBe(143);
    expect(killed.stderr).toContain('ended by SIGTERM');
    // --json: each piece of output as a JSON line, the end last.
    const json = await runCli(['run', APP, '--json', '--', 'node', '-e', "console.log('a'); process.exit(2)"], env, { deadlineMs: 60_000 });
    expect(json.code).toBe(2);
    expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ stream: 'out', data: 'a\n' }, { exit: { state: 'exited', exitCode: 2, signal: null, reason: null } }]);
  });

  it("runs as the app's user, with the release's config, in the app's folder, without a port", async () => {
    const r = await runCli(['run', APP, '--', 'node', 'scripts/whoami.js'], env, { deadlineMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout) as { uid: number; greeting: string; run: string; port: string | null };
    if (process.getuid?.() === 0) expect(seen.uid).not.toBe(0);
    expect(seen.greeting).toBe('hello');
    expect(seen.run).toMatch(/^[0-9a-f]{16}$/);
    expect(seen.port).toBeNull();
    const run = await runOf(seen.run);
    expect(run).toMatchObject({ state: 'exited', exitCode: 0, machine: 'm1', release: 1, command: ['node', 'scripts/whoami.js'] });
  });

  it('streams output as it is printed', async () => {
    const child = spawn(process.execPath, [CLI_MAIN, 'run', APP, '--', 'node', 'scripts/slow.js'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let firstAt = 0;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (firstAt === 0 && out.includes('first')) firstAt = Date.now();
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const endAt = Date.now();
    expect(code).toBe(0);
    expect(out).toBe('first\nsecond\n');
    // The script waits 1.5 s between its lines: the first came well before the end.
    expect(endAt - firstAt).toBeGreaterThan(1000);
  });

  it('--detach prints an id; runs lists it; logs --run and runs:logs print its output', async () => {
    const r = await runCli(['run', APP, '--detach', '--', 'node', '-e', "console.log('detached says hi'); setInterval(() => process.exit(7), 1000)"], env, { deadlineMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    // Followed to its end by another CLI (leaving it would not stop a detached run).
    const followed = await runCli(['runs:logs', APP, id, '-f'], env, { deadlineMs: 60_000 });
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toBe('detached says hi\n');
    expect(followed.stderr).toContain('exited (exit 7)');
    const logs = await runCli(['logs', APP, '--run', id], env);
    expect(logs.stdout).toBe('detached says hi\n');
    const listed = await runCli(['runs', APP, '--json'], env);
    const runs = JSON.parse(listed.stdout) as Run[];
    expect(runs.find((x) => x.id === id)).toMatchObject({ state: 'exited', exitCode: 7, detached: true, machine: 'm1' });
    const table = await runCli(['runs', APP], env);
    expect(table.stdout).toMatch(new RegExp(`^${id}\\s+node -e .*exited\\s+7\\s+`, 'm'));
    // Its lines are in the app's log too, under the run's id.
    const appLogs = await client.logs(APP, 200);
    expect(appLogs.some((l) => l.instance === id && l.line === 'detached says hi')).toBe(true);
  });

  it('a run over its time limit is stopped: exit 124', async () => {
    const r = await runCli(['run', APP, '--timeout', '2', '--', 'node', '-e', 'setInterval(() => {}, 60000)'], env, { deadlineMs: 60_000 });
    expect(r.code).toBe(124);
    expect(r.stderr).toContain('time limit');
  });

  it('a CLI that goes away stops its run', async () => {
    const child = spawn(process.execPath, [CLI_MAIN, 'run', APP, '--', 'node', '-e', "console.log('started'); setInterval(() => {}, 1000)"], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('started'), { deadlineMs: 30_000, what: 'the run started' });
    const [run] = await client.listRuns(APP);
    expect(run!.state).toBe('running');
    // SIGKILL: no goodbye from the CLI, only its connection closing.
    child.kill('SIGKILL');
    await waitFor(async () => (await runOf(run!.id)).state === 'stopped', { deadlineMs: 20_000, what: 'the run stopped' });
    expect((await runOf(run!.id)).reason).toBe('client_gone');
  });

  it('a read-only follower that leaves does not stop the run', async () => {
    const run = await client.createRun(APP, { command: ['node', '-e', "console.log('up'); setInterval(() => console.log('tick'), 250)"] });
    const watcher = new BerthClient({ url: registry.daemon.url, token: (await client.createToken('watcher', { readOnly: true })).token });
    const leave = new AbortController();
    for await (const piece of watcher.followRun(APP, run.id, { signal: leave.signal })) {
      if ('stream' in piece && piece.data.includes('up')) break;
    }
    leave.abort();
    // The run goes on ticking for 2 s after its follower left, more than a renewal: a stop would
    // have reached the hoster by then, and the ticks would have ended.
    const ticks = async () => (await client.runOutput(APP, run.id)).filter((o) => 'stream' in o && o.data.includes('tick')).length;
    const before = await ticks();
    await waitFor(async () => (await ticks()) >= before + 8, { deadlineMs: 20_000, what: 'eight more ticks after the follower left' });
    expect((await runOf(run.id)).state).toBe('running');
    await client.stopRun(APP, run.id);
    await waitFor(async () => (await runOf(run.id)).state === 'stopped', { deadlineMs: 20_000, what: 'stopped by runs:stop' });
    expect((await runOf(run.id)).reason).toBe('stopped');
  });

  it('refuses bad input: an unknown app, no command, a read-only token, a bad time limit', async () => {
    const unknown = await runCli(['run', 'nope', '--', 'node'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No app named "nope"');
    await expect(client.createRun(APP, { command: [] })).rejects.toMatchObject({ code: 'invalid_request', status: 400 });
    await expect(client.createRun(APP, { command: ['node'], timeoutMs: 10 })).rejects.toMatchObject({ code: 'invalid_request' });
    const badTimeout = await runCli(['run', APP, '--timeout', 'soon', '--', 'node'], env);
    expect(badTimeout.code).toBe(1);
    expect(badTimeout.stderr).toContain('seconds');
    const reader = await client.createToken('reader', { readOnly: true });
    const asReader = await runCli(['run', APP, '--', 'node', '-e', '0'], { ...env, BERTH_TOKEN: reader.token });
    expect(asReader.code).toBe(1);
    expect(asReader.stderr).toContain('read-only');
    await expect(client.getRun(APP, '0123456789abcdef')).rejects.toBeInstanceOf(BerthApiError);
    await expect(client.getRun(APP, '0123456789abcdef')).rejects.toMatchObject({ code: 'run_not_found', status: 404 });
  });
});

describe('berth run on an app with nothing to run', () => {
  it('is refused with no_release while the only release failed, and runs nothing', async () => {
    const dir = join(work, 'broken');
    mkdirSync(dir);
    writeFileSync(join(dir, 'README'), 'no start command here\n');
    const published = await runCli(['publish', dir, '--path', '/broken', '--timeout', '60'], env, { deadlineMs: 90_000 });
    expect(published.code).toBe(1);
    expect((await client.getApp('broken')).current?.status).toBe('failed');
    const r = await runCli(['run', 'broken', '--', 'node', '-e', '0'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('broken has no release to run (v1 failed');
    await expect(client.createRun('broken', { command: ['node'] })).rejects.toMatchObject({ code: 'no_release', status: 409 });
    expect(await client.listRuns('broken')).toEqual([]);
  });
});

describe('berth run -it', () => {
  /** The HTTP status the terminal's WebSocket is refused with (0: it opened). */
  async function terminalStatus(run: string, token: string): Promise<number> {
    const ws = new WebSocket(client.runTerminalUrl(APP, run), { headers: { authorization: `Bearer ${token}` } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        ws.terminate();
        resolve(0);
      });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? -1));
      ws.once('error', reject);
    });
  }

  it("refuses the terminal to a read-only token, another app's token, no token, and a run without -it", async () => {
    const run = await client.createRun(APP, { command: ['node', '-e', 'setInterval(() => {}, 1000)'], interactive: true });
    try {
      const reader = await client.createToken('tty-reader', { readOnly: true });
      expect(await terminalStatus(run.id, reader.token)).toBe(403);
      const other = await client.createToken('tty-other', { app: 'other' });
      expect(await terminalStatus(run.id, other.token)).toBe(403);
      expect(await terminalStatus(run.id, 'not-a-token')).toBe(401);
      const plain = await client.createRun(APP, { command: ['node', '-e', '0'], detached: true });
      expect(await terminalStatus(plain.id, registry.token)).toBe(409);
      expect(await terminalStatus('0123456789abcdef', registry.token)).toBe(404);
    } finally {
      await client.stopRun(APP, run.id);
    }
  });

  it('gives a real terminal: a prompt, keys, the window size, Ctrl-C, and the exit', async () => {
    const pty = spawnPty(process.execPath, [CLI_MAIN, 'run', '-it', APP, '--', 'node'], {
      cols: 90,
      rows: 30,
      env: { PATH: process.env.PATH ?? '', ...env } as Record<string, string>,
    });
    let screen = '';
    pty.onData((d) => (screen += d));
    const exited = new Promise<number>((resolve) => pty.onExit(({ exitCode }) => resolve(exitCode)));
    const seen = async (text: string, what: string) => {
      await waitFor(() => screen.includes(text), { deadlineMs: 30_000, what: `${what} (screen so far: ${JSON.stringify(screen.slice(-300))})` });
    };
    try {
      await seen('> ', "node's prompt");
      pty.write('6 * 7\r');
      await seen('42', 'the answer');
      pty.write('[process.stdout.isTTY, process.stdout.columns, process.getuid() === 0].join("/")\r');
      await seen(`true/90/${false}`, 'a TTY of the CLI window size, not as root');
      pty.resize(120, 40);
      await waitFor(
        async () => {
          screen = screen.slice(-200);
          pty.write('"cols=" + process.stdout.columns\r');
          await new Promise((r) => setTimeout(r, 300));
          return screen.includes("'cols=120'");
        },
        { deadlineMs: 20_000, what: 'the new window size' },
      );
      // Ctrl-C goes to the PTY (the CLI's terminal is raw): node's REPL answers it instead of the CLI ending.
      pty.write('\x03');
      await seen('To exit, press Ctrl+C again', "the REPL's answer to Ctrl-C");
      pty.write('process.exit(5)\r');
      expect(await exited).toBe(5);
    } finally {
      pty.kill();
    }
    const [run] = await client.listRuns(APP);
    expect(run).toMatchObject({ interactive: true, state: 'exited', exitCode: 5 });
    // Its bytes were for the terminal only: not in runs:logs.
    expect(await client.runOutput(APP, run!.id)).toEqual([{ exit: { state: 'exited', exitCode: 5, signal: null, reason: null } }]);
  });
});
