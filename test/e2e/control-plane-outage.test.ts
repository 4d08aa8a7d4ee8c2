// A control-plane outage is not a data-plane outage: with a real `berth up` (one machine, default lease) and a request loop through the HTTPS balancer, Redis frozen (SIGSTOP) for 10 s, then 30 s, then 60 s costs no request and stops no app (same processes, same claims). Frozen for longer than a grace shortened through BERTH_CONTROL_PLANE_GRACE_MS (20 s), the apps stop at the grace and run again within seconds of SIGCONT.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appProcesses } from '../helpers/app-processes.js';
import { runCli } from '../helpers/cli-process.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { getPort } from '../helpers/get-port.js';
import { traversableTempDir } from '../helpers/hoster-fixture.js';
import { instancePortRange } from '../helpers/port-range.js';
import { platformProcesses } from '../helpers/platform-processes.js';
import { waitFor } from '../helpers/wait-for.js';

interface Platform {
  dir: string;
  up: DaemonProcess;
  httpsPort: number;
  ca: string;
  env: NodeJS.ProcessEnv;
  redisPid: number;
}

async function startUp(extraEnv: NodeJS.ProcessEnv): Promise<Platform> {
  const dir = traversableTempDir('berth-outage-');
  const httpsPort = await getPort();
  const env = { BERTH_HOME: join(dir, 'home'), BERTH_MAX_LOAD_PER_CPU: '1000', BERTH_PORT_RANGE: instancePortRange(), BERTH_DRAIN_MS: '500', ...extraEnv };
  const up = startDaemon(
    ['up', '--data-dir', join(dir, 'data'), '--api-port', String(await getPort()), '--proxy-port', String(await getPort()), '--https-port', String(httpsPort), '--redis-port', String(await getPort())],
    env,
  );
  await waitFor(() => up.output().includes('running: press Ctrl-C to stop'), { deadlineMs: 60_000, what: 'berth up' });
  const redisPid = Number(/redis started \(pid (\d+)\)/.exec(up.output())?.[1]);
  expect(redisPid).toBeGreaterThan(0);
  return { dir, up, httpsPort, ca: readFileSync(join(dir, 'data', 'tls', 'ca.pem'), 'utf8'), env, redisPid };
}

function get(p: Platform, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: p.httpsPort, path, ca: p.ca, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function berth(p: Platform, ...args: string[]): Promise<string> {
  const run = await runCli(args, p.env, { deadlineMs: 120_000 });
  if (run.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return run.stdout;
}

async function publishHello(p: Platform, tag: string): Promise<void> {
  const app = mkdtempSync(join(tmpdir(), 'berth-outage-app-'));
  cpSync(new URL('../../examples/hello', import.meta.url), app, { recursive: true });
  try {
    await berth(p, 'publish', app, '--name', 'hello', '--path', '/hello', '--instances', '2', '--env', `TEST_TAG=${tag}`);
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
}

interface InstanceRow {
  id: string;
  state: string;
  epoch: number;
  machine: string | null;
  port: number | null;
}

/** The app's instances as `berth instances` shows them: who, where, under which claim. */
async function instances(p: Platform): Promise<InstanceRow[]> {
  return (JSON.parse(await berth(p, 'instances', 'hello', '--json')) as InstanceRow[])
    .map(({ id, state, epoch, machine, port }) => ({ id, state, epoch, machine, port }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** GET loops through the balancer until stopped; counts answers that are not 200. */
function requestLoop(p: Platform, workers = 3) {
  let on = true;
  let total = 0;
  const failures: string[] = [];
  const loops = Array.from({ length: workers }, async () => {
    while (on) {
      const r = await get(p, '/hello').catch((err: Error) => ({ status: 0, body: err.message }));
      total++;
      if (r.status !== 200) failures.push(`${r.status} ${r.body.slice(0, 120)}`);
    }
  });
  return {
    get total() {
      return total;
    },
    failures,
    stop: async () => {
      on = false;
      await Promise.all(loops);
      return { total, failures };
    },
  };
}

/** Freezes the platform's Redis for `ms` (SIGSTOP, then SIGCONT): a frozen, stalled or failing-over Redis. */
async function freezeRedis(p: Platform, ms: number, during?: () => Promise<void>): Promise<{ frozenAt: number; thawedAt: number }> {
  const frozenAt = performance.now();
  process.kill(p.redisPid, 'SIGSTOP');
  try {
    await Promise.all([new Promise((r) => setTimeout(r, ms)), during?.()]);
  } finally {
    process.kill(p.redisPid, 'SIGCONT');
  }
  return { frozenAt, thawedAt: performance.now() };
}

/** Stops a berth up for good: its daemons stop by themselves, then its data goes. */
async function stopUp(p: Platform | undefined): Promise<void> {
  if (!p) return;
  try {
    process.kill(p.redisPid, 'SIGCONT');
  } catch {
    // gone
  }
  p.up.kill('SIGKILL');
  await p.up.exited;
  // The hoster stops its apps and removes their directories as it goes: wait for it, then clean up.
  await waitFor(() => platformProcesses(p.dir).length === 0, { deadlineMs: 30_000, what: 'the platform to stop' }).catch(() => undefined);
  rmSync(p.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('Redis frozen below the grace (default lease and grace)', () => {
  let platform: Platform;
  const tag = `outage-${process.pid}`;

  beforeAll(async () => {
    platform = await startUp({});
    await publishHello(platform, tag);
    await waitFor(async () => (await instances(platform)).filter((i) => i.state === 'running').length === 2, { deadlineMs: 30_000, what: 'both instances running' });
  }, 120_000);

  afterAll(() => stopUp(platform), 60_000);

  for (const seconds of [10, 30, 60]) {
    it(`frozen ${seconds} s: no failed request, no instance stopped, same claims`, async () => {
      const before = await instances(platform);
      const pids = appProcesses(tag);
      expect(pids.size).toBe(2);
      const load = requestLoop(platform);
      await waitFor(() => load.total > 50, { deadlineMs: 20_000, what: 'load under way' });
      const { frozenAt, thawedAt } = await freezeRedis(platform, seconds * 1000);
      const atThaw = load.total;
      // Redis answers again: claims renewed, every instance still the same one.
      await waitFor(async () => JSON.stringify(await instances(platform)) === JSON.stringify(before), { deadlineMs: 20_000, what: 'the same instances, claims and states after the freeze' });
      await waitFor(() => load.total > atThaw + 100, { deadlineMs: 20_000, what: 'load after the freeze' });
      const { total, failures } = await load.stop();
      expect(failures).toEqual([]);
      expect(appProcesses(tag)).toEqual(pids);
      expect(platform.up.output()).toMatch(/no other machine: Redis is away for the whole platform/);
      process.stdout.write(`control-plane outage: Redis frozen ${((thawedAt - frozenAt) / 1000).toFixed(1)} s; 0 of ${total} requests failed; the 2 app processes kept running, same claims\n`);
    }, seconds * 1000 + 90_000);
  }

  it('the reaper held expiries after the 30 s freeze, and said why', () => {
    expect(platform.up.output()).toMatch(/holding lease expiries for \d+ ms: the reaper did not run for \d+ ms/);
  });
});

describe('Redis frozen past a grace shortened to 20 s', () => {
  // Longer than the lease (15 s), or the lease alone would keep the apps up as long.
  const GRACE_MS = 20_000;
  let platform: Platform;
  const tag = `outage-grace-${process.pid}`;

  beforeAll(async () => {
    platform = await startUp({ BERTH_CONTROL_PLANE_GRACE_MS: String(GRACE_MS), BERTH_STOP_GRACE_MS: '1000' });
    await publishHello(platform, tag);
    await waitFor(async () => (await instances(platform)).filter((i) => i.state === 'running').length === 2, { deadlineMs: 30_000, what: 'both instances running' });
  }, 120_000);

  afterAll(() => stopUp(platform), 60_000);

  it('stops the apps at the grace (± 1 s) and runs them again within seconds of Redis returning', async () => {
    const before = await instances(platform);
    const ports = before.map((i) => i.port!);
    const stoppedAt = new Map<number, number>();
    const { frozenAt, thawedAt } = await freezeRedis(platform, GRACE_MS + 6000, async () => {
      // Each app closes its listener on SIGTERM: its port refusing is the moment it was stopped.
      await waitFor(
        async () => {
          for (const port of ports) if (!stoppedAt.has(port) && (await refuses(port))) stoppedAt.set(port, performance.now());
          return stoppedAt.size === ports.length;
        },
        { deadlineMs: GRACE_MS + 5000, what: 'both apps stopped' },
      );
    });
    const stops = [...stoppedAt.values()].map((t) => t - frozenAt);
    for (const ms of stops) {
      expect(ms).toBeGreaterThan(GRACE_MS - 1000);
      expect(ms).toBeLessThan(GRACE_MS + 1000);
    }
    await waitFor(() => appProcesses(tag).size === 0, { deadlineMs: 10_000, what: 'no app process left' });
    const back = await waitFor(
      async () => {
        const r = await get(platform, '/hello').catch(() => undefined);
        return r?.status === 200 ? performance.now() : undefined;
      },
      { deadlineMs: 30_000, what: 'the app answering again' },
    );
    await waitFor(async () => (await instances(platform)).filter((i) => i.state === 'running').length === 2, { deadlineMs: 30_000, what: 'both instances running again' });
    expect(back - thawedAt).toBeLessThan(15_000);
    expect(platform.up.output()).toMatch(/gave back the claim on hello\//);
    process.stdout.write(
      `control-plane grace: Redis frozen ${((thawedAt - frozenAt) / 1000).toFixed(1)} s with a ${GRACE_MS / 1000} s grace; apps stopped ${stops.map((ms) => (ms / 1000).toFixed(2)).join(' and ')} s into the freeze; answering again ${((back - thawedAt) / 1000).toFixed(1)} s after Redis returned\n`,
    );
  }, 120_000);
});
