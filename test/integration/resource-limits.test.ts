// Memory and CPU limits per app, enforced by cgroups: an app over its memory limit is killed by
// the kernel and its release fails as out_of_memory, with the reason in its log; one under it
// runs in a cgroup with the limit and the CPU weight asked for; bad limits are refused. Without
// cgroups, RLIMIT_DATA holds the memory limit: the app runs under it, fails past it, and its
// release fails as out_of_memory too; a CPU weight is refused as limits_unavailable.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { PRLIMIT_PATHS } from '../../hoster/resource-limits.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { detectCgroups } from '../../hoster/cgroup-limits.js';
import { BerthApiError } from '../../sdk/api-error.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import type { Attributes } from '../../sdk/types.js';
import { runCli } from '../helpers/cli-process.js';
import { helloApp, startTestHoster, uploadApp, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const CGROUPS = detectCgroups();

let redis: TestRedis;
let registry: RegistryFixture;
let client: BerthClient;
let hosters: HosterFixture[] = [];

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis, { reconcileIntervalMs: 50, drainMs: 200, leaseMs: 3000 });
  client = registry.client;
});

afterEach(async () => {
  await Promise.all(hosters.map((h) => h.close({ evacuate: true })));
  hosters = [];
  for (const app of await client.listApps()) await client.deleteApp(app.name).catch(() => undefined);
});

afterAll(async () => {
  await registry.close();
  await redis.stop();
});

describe('limits refused by the API', () => {
  it('refuses a memory limit or CPU weight that is not a whole number in range, and publishes nothing', async () => {
    const bundle = await uploadApp(client, helloApp());
    for (const attributes of [{ maxMemoryMb: 8 }, { maxMemoryMb: '512' }, { maxMemoryMb: 1.5 }, { cpuWeight: 0 }, { cpuWeight: 20_000 }] as Attributes[]) {
      const err = await client.publishApp({ name: 'lim', path: '/lim', instances: 1, bundle, attributes }).catch((e: unknown) => e);
      expect(err, JSON.stringify(attributes)).toBeInstanceOf(BerthApiError);
      expect((err as BerthApiError).status).toBe(400);
      expect((err as BerthApiError).message).toMatch(/maxMemoryMb|cpuWeight/);
    }
    expect(await client.listApps()).toEqual([]);
  });
});

describe.skipIf(CGROUPS.kind === 'none')(`cgroup limits${CGROUPS.kind === 'none' ? ` (skipped: ${CGROUPS.why}; CI runs as root with cgroups)` : ''}`, () => {
  it('runs an app in a cgroup of its own with its memory limit and CPU weight, and removes it when the app stops', async () => {
    hosters.push(await startTestHoster(redis, registry.prefix, 'm1'));
    await client.publishApp({ name: 'lim', path: '/lim', instances: 1, bundle: await uploadApp(client, helloApp()), attributes: { maxMemoryMb: 128, cpuWeight: 50 } });
    const instance = await waitFor(async () => (await client.listAppInstances('lim')).find((i) => i.state === 'running'), { deadlineMs: 30_000, what: 'lim running' });
    const lines = readFileSync(`/proc/${instance.pid}/cgroup`, 'utf8').split('\n');
    const name = `${instance.id}-${instance.epoch}`;
    if (CGROUPS.kind === 'v1') {
      const memory = lines.find((l) => /^\d+:memory:/.test(l))!;
      expect(memory).toMatch(new RegExp(`/berth-apps/${name}$`));
      const dir = `/sys/fs/cgroup/memory${memory.split(':')[2]}`;
      expect(readFileSync(`${dir}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(128 * 1024 * 1024));
      if (CGROUPS.cpu !== undefined) {
        const cpu = lines.find((l) => /^\d+:cpu(,cpuacct)?:/.test(l))!;
        expect(readFileSync(`/sys/fs/cgroup/cpu${cpu.split(':')[2]}/cpu.shares`, 'utf8').trim()).toBe(String(512));
      }
      await client.scaleApp('lim', { instances: 0 });
      await waitFor(() => !existsSync(dir), { deadlineMs: 20_000, what: 'the cgroup removed once the app stopped' });
    } else {
      const unified = lines.find((l) => l.startsWith('0::'))!;
      expect(unified).toMatch(new RegExp(`/berth-apps/${name}$`));
      const dir = `/sys/fs/cgroup${unified.slice(3)}`;
      expect(readFileSync(`${dir}/memory.max`, 'utf8').trim()).toBe(String(128 * 1024 * 1024));
      await client.scaleApp('lim', { instances: 0 });
      await waitFor(() => !existsSync(dir), { deadlineMs: 20_000, what: 'the cgroup removed once the app stopped' });
    }
  });

  it('kills an app over its memory limit and fails its release as out_of_memory, saying so in its log', async () => {
    hosters.push(await startTestHoster(redis, registry.prefix, 'm1'));
    // Touches 256 MiB (Buffer.alloc zero-fills), four times its limit.
    const hog = "const keep = []; for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(4 * 1024 * 1024, 1)); require('node:http').createServer((q, s) => s.end('fat')).listen(Number(process.env.PORT), process.env.HOST);";
    await client.publishApp({ name: 'hog', path: '/hog', instances: 1, bundle: await uploadApp(client, { 'server.js': hog }), attributes: { maxMemoryMb: 64 } });
    const [failed] = await waitFor(async () => {
      const releases = await client.listReleases('hog');
      return releases[0]?.status === 'failed' ? releases : undefined;
    }, { deadlineMs: 40_000, what: 'the release failed' });
    expect(failed!.reason).toMatch(/^out_of_memory on m1: went over its memory limit, 3 times/);
    const logs = await client.logs('hog');
    expect(logs.some((l) => l.stream === 'err' && /^\[berth\] out of memory: the kernel stopped the app at its limit of 64 MB/.test(l.line))).toBe(true);
    // berth info says what the app runs under, and why its release failed.
    const home = mkdtempSync(join(tmpdir(), 'berth-cli-'));
    try {
      const info = await runCli(['info', 'hog'], { BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token, NO_COLOR: '1', BERTH_HOME: home });
      expect(info.code, info.stderr).toBe(0);
      expect(info.stdout).toMatch(/limits\s+memory 64 MB \(over it: out_of_memory\), CPU weight 100 \(default\)/);
      expect(info.stdout).toMatch(/release\s+v1 failed: .*\(out_of_memory on m1: went over its memory limit/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

const PRLIMIT = PRLIMIT_PATHS.find((p) => existsSync(p));

describe.skipIf(PRLIMIT === undefined)(`memory limits without cgroups (BERTH_MEMORY_LIMIT_BY=rlimit)${PRLIMIT === undefined ? ' (skipped: no prlimit; Debian has it in util-linux)' : ''}`, () => {
  it('runs an app under RLIMIT_DATA, fails one past it as out_of_memory in its own words, and refuses a CPU weight it cannot hold', async () => {
    hosters.push(await startTestHoster(redis, registry.prefix, 'm1', { memoryLimitBy: 'rlimit' }));
    await client.publishApp({ name: 'lim', path: '/lim', instances: 1, bundle: await uploadApp(client, helloApp()), attributes: { maxMemoryMb: 128 } });
    const running = await waitFor(async () => (await client.listAppInstances('lim')).find((i) => i.state === 'running'), { deadlineMs: 30_000, what: 'lim running under its limit' });
    const limit = readFileSync(`/proc/${running.pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max data size'))!;
    expect(limit.split(/\s{2,}/).slice(1, 3)).toEqual([String(128 * 1024 * 1024), String(128 * 1024 * 1024)]);
    // No cgroup of its own: the limit is the process's.
    expect(readFileSync(`/proc/${running.pid}/cgroup`, 'utf8')).not.toContain(`${running.id}-${running.epoch}`);

    const hog = "const keep = []; for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(4 * 1024 * 1024, 1)); require('node:http').createServer((q, s) => s.end('fat')).listen(Number(process.env.PORT), process.env.HOST);";
    await client.publishApp({ name: 'hog', path: '/hog', instances: 1, bundle: await uploadApp(client, { 'server.js': hog }), attributes: { maxMemoryMb: 64 } });
    const [failed] = await waitFor(async () => {
      const releases = await client.listReleases('hog');
      return releases[0]?.status === 'failed' ? releases : undefined;
    }, { deadlineMs: 40_000, what: 'the release failed' });
    expect(failed!.reason).toMatch(/^out_of_memory on m1: went over its memory limit, 3 times/);
    const logs = await client.logs('hog');
    expect(logs.some((l) => l.stream === 'err' && /^\[berth\] out of memory: the app could not allocate past its limit of 64 MB \(RLIMIT_DATA/.test(l.line))).toBe(true);

    await client.publishApp({ name: 'weighty', path: '/weighty', instances: 1, bundle: await uploadApp(client, helloApp()), attributes: { maxMemoryMb: 128, cpuWeight: 50 } });
    const [refused] = await waitFor(async () => {
      const releases = await client.listReleases('weighty');
      return releases[0]?.status === 'failed' ? releases : undefined;
    }, { deadlineMs: 40_000, what: 'the release with a CPU weight failed' });
    expect(refused!.reason).toMatch(/limits_unavailable/);
  });
});
