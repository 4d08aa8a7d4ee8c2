// Deploys that cannot succeed (publish, update, config:set, rollback) fail within seconds on one machine, with the cause in the app's own words, while the release before keeps serving every request; one of them through a real `berth up` whose data dir is in a 0700 folder.
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseHosterDir } from '../../hoster/hoster-dir.js';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import { runCli } from '../helpers/cli-process.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { startTestHoster, traversableTempDir, type HosterFixture } from '../helpers/hoster-fixture.js';
import { platformProcesses } from '../helpers/platform-processes.js';
import { instancePortRange } from '../helpers/port-range.js';
import { startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const HELLO = fileURLToPath(new URL('../../examples/hello', import.meta.url));
/** The bound the issue sets for a crash or a build failure on one machine. */
const FAIL_WITHIN_MS = 30_000;

let redis: TestRedis;
let proxy: ProxyDaemon;
let registry: RegistryFixture;
let hoster: HosterFixture;
let client: BerthClient;
let work: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  redis = await startRedis();
  const prefix = testPrefix();
  proxy = await startTestProxy(redis, prefix, 'm1');
  registry = await startTestRegistry(redis, { keyPrefix: prefix, publicUrl: proxy.url, reconcileIntervalMs: 50, drainMs: 200 });
  client = registry.client;
  hoster = await startTestHoster(redis, prefix, 'm1', { proxyUrl: proxy.url });
  work = traversableTempDir('berth-failing-');
  const home = join(work, 'home');
  mkdirSync(home);
  env = { HOME: home, BERTH_HOME: join(home, 'berth'), BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token };
  const good = join(work, 'good');
  cpSync(HELLO, good, { recursive: true });
  const r = await runCli(['publish', good, '--name', 'shop', '--path', '/shop', '--timeout', '60'], env, { deadlineMs: 90_000 });
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  for (const app of await client?.listApps().catch(() => []) ?? []) await client.deleteApp(app.name).catch(() => undefined);
  await hoster?.close({ evacuate: true });
  await proxy?.close();
  await registry?.close();
  await redis?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** An app that throws at start, saying why. */
const THROWS = {
  'package.json': JSON.stringify({ name: 'throws', version: '1.0.0', scripts: { start: 'node server.js' } }),
  'server.js': "console.error('boom: DATABASE_URL is not set');\nprocess.exit(3);\n",
};

/** A folder holding one app, from its files. */
function appFolder(name: string, files: Record<string, string>, under = work): string {
  const dir = join(under, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

/** GETs the serving app at `url` in a loop until stopped; counts what did not answer 200. */
function requestLoop(url: string): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        if (res.status === 200) ok++;
        else failed.push(String(res.status));
      } catch (err) {
        failed.push(String(err));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

/** Runs a berth command that makes a release of shop, under load, expecting it to fail fast; prints how long it took. */
async function failingRun(args: string[], platform: { env: NodeJS.ProcessEnv; shopUrl: string } = { env, shopUrl: `${proxy.url}/shop` }) {
  const load = requestLoop(platform.shopUrl);
  const started = Date.now();
  const r = await runCli([...args, '--timeout', '120'], platform.env, { deadlineMs: 150_000 });
  const ms = Date.now() - started;
  const served = await load.stop();
  console.log(`berth ${args[0]} exited ${r.code} after ${(ms / 1000).toFixed(1)} s (bound ${FAIL_WITHIN_MS / 1000} s); ${served.ok} requests to the serving release answered, ${served.failed.length} failed`);
  return { ...r, ms, served };
}

/** What each failed deploy shows: exit 1 within the bound, the reason, the app's own line, and v1 serving every request throughout. */
function expectFailedFast(r: Awaited<ReturnType<typeof failingRun>>, reason: RegExp, ownLine?: string): void {
  expect(r.code, r.stdout + r.stderr).toBe(1);
  expect(r.ms).toBeLessThan(FAIL_WITHIN_MS);
  expect(r.stderr).toMatch(reason);
  if (ownLine !== undefined) expect(r.stderr).toContain(ownLine);
  expect(r.stderr).toContain('shop still runs v1');
  expect(r.served.failed).toEqual([]);
}

/** Publishes `dir` as shop, expecting it to fail fast; returns the CLI's run. */
function failingPublish(dir: string, flags: string[] = []) {
  return failingRun(['publish', dir, '--name', 'shop', '--path', '/shop', ...flags]);
}

describe('a deploy that cannot succeed', () => {
  it('an app that throws at start: crash_loop with its exit code and its own last lines, in seconds', async () => {
    const dir = appFolder('throws', THROWS);
    const r = await failingPublish(dir);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.ms).toBeLessThan(FAIL_WITHIN_MS);
    expect(r.stderr).toMatch(/shop v\d+ failed: crash_loop on m1: exited with code 3/);
    expect(r.stderr).toContain('boom: DATABASE_URL is not set');
    expect(r.stderr).toContain('shop still runs v1');
    // Without a terminal, the wait still says what it is waiting for, once per new status.
    expect(r.stderr).toMatch(/^shop v\d+ deploying: 0\/1 running.*\d+s$/m);
    expect(r.served.failed).toEqual([]);
    expect(r.served.ok).toBeGreaterThan(0);
  });

  it('an app whose dependencies cannot be installed: build_failed with npm’s own error', async () => {
    const dir = appFolder('unbuildable', {
      'package.json': JSON.stringify({ name: 'unbuildable', version: '1.0.0', dependencies: { native: 'file:./native' } }),
      'native/package.json': JSON.stringify({ name: 'native', version: '1.0.0', scripts: { install: "echo 'gyp: no-such-toolchain for native' >&2; exit 7" } }),
      'server.js': "require('native');\n",
    });
    const r = await failingPublish(dir);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.ms).toBeLessThan(FAIL_WITHIN_MS);
    expect(r.stderr).toMatch(/failed: build_failed on m1: npm install exited with code \d+/);
    expect(r.stderr).toContain('gyp: no-such-toolchain for native');
    // The build's own lines came while it ran, framed by the hoster's "----->" lines (the
    // failure's summary quotes build.log, which has none of those).
    expect(r.stderr).toMatch(/^-----> Installing dependencies \(npm install --omit=dev --no-audit --no-fund\)$/m);
    expect(r.stderr).toMatch(/^-----> npm install exited with code \d+ after \d+\.\d s$/m);
    expect(r.served.failed).toEqual([]);
    // And they are kept: berth logs --build shows them, marked as the build's.
    const logs = await runCli(['logs', 'shop', '--build', '-n', '1000'], env);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/ build \| -----> Installing dependencies/);
    expect(logs.stdout).toMatch(/ build \| .*gyp: no-such-toolchain for native/);
    expect(logs.stdout).not.toMatch(/ (out|err) \| /);
  });

  it('an app that never listens on $PORT: not_listening, naming the port to use', async () => {
    const dir = appFolder('deaf', {
      'package.json': JSON.stringify({ name: 'deaf', version: '1.0.0', scripts: { start: 'node server.js' } }),
      'server.js': "console.log('working hard, listening nowhere');\nsetInterval(() => {}, 1000);\n",
    });
    // The test hoster checks every 100 ms, so its default 30 attempts last 3 s: on a loaded
    // machine the app might not have printed yet. 100 attempts (10 s) leave it time to.
    const r = await failingPublish(dir, ['--health-attempts', '100']);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.ms).toBeLessThan(FAIL_WITHIN_MS);
    expect(r.stderr).toMatch(/failed: not_listening on m1: nothing listened on \$PORT \(\d+\) after 100 attempts/);
    expect(r.stderr).toContain('working hard, listening nowhere');
    expect(r.served.failed).toEqual([]);
  });

  it('a bundle the hoster refuses to unpack: bundle_rejected, naming the entry, in seconds', async () => {
    // berth publish packs any depth; the hoster unpacks at most 32 levels.
    const deep = `${Array.from({ length: 33 }, (_, i) => `d${i}`).join('/')}/deep.js`;
    const dir = appFolder('too-deep', {
      'package.json': JSON.stringify({ name: 'too-deep', version: '1.0.0', scripts: { start: 'node server.js' } }),
      'server.js': "require('http').createServer((req, res) => res.end('never')).listen(process.env.PORT);\n",
      [deep]: '// too deep to unpack\n',
    });
    const r = await failingPublish(dir);
    expectFailedFast(r, /shop v\d+ failed: bundle_rejected on m1: .*entry "d0\/d1\/[^"]*" is nested 3[34] levels deep, more than 32: flatten the folder structure/);
  });

  it('a failed release is not retried: its instances are gone and v1 still serves', async () => {
    const app = await client.getApp('shop');
    expect(app.current?.status).toBe('active');
    const instances = await client.listAppInstances('shop');
    expect(instances.filter((i) => i.release !== app.release)).toEqual([]);
    const releases = await client.listReleases('shop');
    expect(releases.filter((x) => x.status === 'failed')).toHaveLength(4);
  });

  it('a config var holding NUL is refused before any release is made', async () => {
    const before = (await client.listReleases('shop')).length;
    // Node refuses NUL in a command's arguments, so the API is asked as the SDK would.
    const res = await fetch(`${registry.daemon.url}/v1/apps/shop/config`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${registry.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ set: { TOKEN: 'a\0b' } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('NUL');
    expect(await client.listReleases('shop')).toHaveLength(before);
  });
});

describe('update, config:set and rollback wait as publish does', () => {
  it('berth update whose new start command cannot start: exit 1 with crash_loop and the app’s own lines', async () => {
    const r = await failingRun(['update', '--name', 'shop', '--command', 'node no-such-file.js']);
    expectFailedFast(r, /shop v\d+ failed: crash_loop on m1: exited with code 1/);
    expect(r.stderr).toMatch(/Cannot find module '[^']*no-such-file\.js'/);
  });

  it('berth config:set with a variable the app cannot start with: exit 1 with crash_loop and node’s own line', async () => {
    const r = await failingRun(['config:set', 'shop', 'NODE_OPTIONS=--no-such-flag']);
    expectFailedFast(r, /shop v\d+ failed: crash_loop on m1: exited with code 9/, '--no-such-flag is not allowed in NODE_OPTIONS');
  });

  it('berth rollback to a release that cannot start: exit 1 with that release’s reason and lines', async () => {
    // The release of the app that throws at start (above): rolled back to, it fails the same way.
    const throws = (await client.listReleases('shop')).find((x) => x.status === 'failed' && x.reason?.includes('exited with code 3'));
    expect(throws, 'the failed release of the app that throws').toBeDefined();
    const r = await failingRun(['rollback', 'shop', `v${throws!.version}`]);
    expectFailedFast(r, /shop v\d+ failed: crash_loop on m1: exited with code 3/, 'boom: DATABASE_URL is not set');
    expect((await client.getApp('shop')).release).toBe(1);
  });
});

describe('through a real berth up whose data dir is in a 0700 folder (as a clone in /root is)', () => {
  let dir: string;
  let up: DaemonProcess;
  let upEnv: NodeJS.ProcessEnv;
  let shopUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-failing-up-'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const proxyPort = await getPort();
    shopUrl = `http://127.0.0.1:${proxyPort}/shop`;
    // The CLI finds the API and token in the credentials berth up saves under BERTH_HOME.
    upEnv = { BERTH_HOME: join(dir, 'home'), BERTH_MAX_LOAD_PER_CPU: '1000', BERTH_PORT_RANGE: instancePortRange(), BERTH_DRAIN_MS: '500' };
    up = startDaemon(
      ['up', '--data-dir', join(dir, 'data'), '--api-port', String(await getPort()), '--proxy-port', String(proxyPort), '--https-port', String(await getPort()), '--redis-port', String(await getPort())],
      upEnv,
    );
    await waitFor(() => up.output().includes('running: press Ctrl-C to stop'), { deadlineMs: 60_000, what: 'berth up' });
    const good = join(dir, 'good');
    cpSync(HELLO, good, { recursive: true });
    const r = await runCli(['publish', good, '--name', 'shop', '--path', '/shop', '--timeout', '60'], upEnv, { deadlineMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    up?.kill('SIGTERM');
    await up?.exited;
    await waitFor(() => platformProcesses(dir).length === 0, { deadlineMs: 30_000, what: 'berth up stopped' }).catch(() => undefined);
    // As root the apps' files lie outside the 0700 folder, where berth up put them.
    const hosterDir = chooseHosterDir(join(dir, 'data'), { explicit: '', appsRunAsOthers: process.getuid?.() === 0 }).dir;
    rmSync(hosterDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('an app that throws at start: berth publish exits 1 with crash_loop and its own lines, in seconds, v1 serving throughout', async () => {
    const r = await failingRun(['publish', appFolder('throws', THROWS, dir), '--name', 'shop', '--path', '/shop'], { env: upEnv, shopUrl });
    expectFailedFast(r, /shop v2 failed: crash_loop on \S+: exited with code 3/, 'boom: DATABASE_URL is not set');
    expect(r.served.ok).toBeGreaterThan(0);
  });
});
