// The hoster runs published apps for real: claims at once, runs unprivileged, restarts crashes, releases crash loops and unhealthy apps, stops retired instances, obeys the load gate, ships logs.
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Instance } from '../../registry/store/instance.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import { helloApp, startTestHoster, uploadApp, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';
import { alive } from '../helpers/process-table.js';

let redis: TestRedis;
let registry: RegistryFixture;
let client: BerthClient;
let hosters: HosterFixture[] = [];

async function hoster(machine: string, overrides: Record<string, unknown> = {}, load?: () => ReturnType<import('../../common/load-source.js').LoadSource>) {
  const h = await startTestHoster(redis, registry.prefix, machine, overrides, load);
  hosters.push(h);
  return h;
}

async function running(app: string): Promise<Instance[]> {
  return (await client.listAppInstances(app)).filter((i) => i.state === 'running');
}

async function get(port: number): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis, { reconcileIntervalMs: 50, drainMs: 200, leaseMs: 3000 });
  client = registry.client;
});

afterEach(async () => {
  await Promise.all(hosters.map((h) => h.close({ evacuate: false })));
  hosters = [];
  for (const app of await client.listApps()) await client.deleteApp(app.name).catch(() => undefined);
});

afterAll(async () => {
  await registry.close();
  await redis.stop();
});

describe('hoster', () => {
  it('runs a published app within moments, as the unprivileged app user, with its environment', async () => {
    await hoster('m1');
    const bundle = await uploadApp(client, helloApp());
    const published = Date.now();
    await client.publishApp({ name: 'hello', path: '/hello', instances: 2, bundle, env: { GREETING: 'hi' } });
    const [a, b] = await waitFor(async () => {
      const r = await running('hello');
      return r.length === 2 ? r : undefined;
    }, { deadlineMs: 40_000, what: '2 instances running' });
    const took = Date.now() - published;
    expect(took).toBeLessThan(10_000);
    for (const i of [a!, b!]) {
      expect(i.machine).toBe('m1');
      const answer = await get(i.port!);
      expect(answer).toMatchObject({ instance: i.id, release: 'v1', greeting: 'hi' });
      if (process.getuid?.() === 0) {
        expect(answer.uid).not.toBe(0);
        const status = readFileSync(`/proc/${i.pid}/status`, 'utf8');
        expect(status).not.toMatch(/^Uid:\s+0\s/m);
      }
    }
    expect(a!.port).not.toBe(b!.port);
  });

  it("applies the app's resource limits (maxOpenFiles) to its process", async () => {
    await hoster('m1');
    const bundle = await uploadApp(client, {
      'server.js': `
const http = require('node:http');
const fs = require('node:fs');
http.createServer((req, res) => res.end(fs.readFileSync('/proc/self/limits', 'utf8'))).listen(Number(process.env.PORT), process.env.HOST);
`,
    });
    await client.publishApp({ name: 'limited', path: '/limited', instances: 1, bundle, attributes: { maxOpenFiles: 200 } });
    const [i] = await waitFor(async () => {
      const r = await running('limited');
      return r.length === 1 ? r : undefined;
    }, { deadlineMs: 40_000, what: 'running' });
    const limits = await (await fetch(`http://127.0.0.1:${i!.port}/`)).text();
    expect(limits).toMatch(/Max open files\s+200\s+200/);
  });

  it('restarts an app killed with SIGKILL, keeping its claim, and counts each restart on it', async () => {
    await hoster('m1');
    await client.publishApp({ name: 'tough', path: '/tough', instances: 1, bundle: await uploadApp(client, helloApp()) });
    const [before] = await waitFor(async () => {
      const r = await running('tough');
      return r.length === 1 ? r : undefined;
    }, { deadlineMs: 40_000, what: 'running' });
    expect(before!.restarts).toBe(0);
    let pid = before!.pid!;
    for (const restarts of [1, 2]) {
      process.kill(pid, 'SIGKILL');
      await waitFor(async () => {
        try {
          return (await get(before!.port!)).instance === before!.id && !alive(pid);
        } catch {
          return false;
        }
      }, { deadlineMs: 15_000, what: `the app to answer again after kill ${restarts}` });
      // The registry has the new process and the count once the hoster reports it running again.
      const after = await waitFor(async () => {
        const [i] = await client.listAppInstances('tough');
        return i !== undefined && i.pid !== pid ? i : undefined;
      }, { deadlineMs: 5000, what: `the restart ${restarts} reported` });
      expect(after).toMatchObject({ id: before!.id, epoch: before!.epoch, state: 'running', restarts });
      pid = after.pid!;
    }
  });

  it('releases a crash-looping app with reason crash_loop', async () => {
    await hoster('m1');
    await client.publishApp({ name: 'crashy', path: '/crashy', instances: 1, bundle: await uploadApp(client, { 'server.js': "console.error('boom'); process.exit(3);" }) });
    // The instance itself is gone soon after (its release failed): the release keeps the verdict.
    const [failed] = await waitFor(async () => {
      const releases = await client.listReleases('crashy');
      return releases[0]?.status === 'failed' ? releases : undefined;
    }, { deadlineMs: 20_000, what: 'the release failed' });
    expect(failed!.reason).toMatch(/^crash_loop on m1: exited with code 3, 3 times/);
    // The lines it printed reached the app's log.
    expect((await client.logs('crashy')).some((l) => l.line === 'boom' && l.stream === 'err')).toBe(true);
  });

  it('never routes an app that does not pass its health check, and releases it as unhealthy', async () => {
    await hoster('m1');
    const bundle = await uploadApp(client, {
      'server.js': "require('node:http').createServer((q, s) => { s.writeHead(500); s.end(); }).listen(Number(process.env.PORT), process.env.HOST);",
    });
    await client.publishApp({ name: 'sick', path: '/sick', instances: 1, bundle, healthCheck: { path: '/health', attempts: 3, timeoutMs: 500 } });
    let everRunning = false;
    const [failed] = await waitFor(async () => {
      const [i] = await client.listAppInstances('sick');
      if (i?.state === 'running') everRunning = true;
      const releases = await client.listReleases('sick');
      return releases[0]?.status === 'failed' ? releases : undefined;
    }, { deadlineMs: 20_000, what: 'the release failed' });
    expect(everRunning).toBe(false);
    expect(failed!.reason).toMatch(/^unhealthy on m1: GET \/health never answered 200/);
  });

  it('checks health for the whole life: a running instance that fails it is taken out of routing, restarted, and crash-loops when it keeps failing', async () => {
    await hoster('m1');
    // Healthy for its first second of life, then /health answers 500 (the app itself still serves).
    const bundle = await uploadApp(client, {
      'server.js': `const born = Date.now();
require('node:http').createServer((q, s) => { s.writeHead(q.url === '/health' && Date.now() - born > 1000 ? 500 : 200); s.end(); }).listen(Number(process.env.PORT), process.env.HOST);`,
    });
    await client.publishApp({ name: 'wilting', path: '/wilting', instances: 1, bundle, healthCheck: { path: '/health', intervalMs: 200, failures: 2 } });
    // Every state the instance goes through, seen every 10 ms.
    const seen: Instance[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const [i] = await client.listAppInstances('wilting').catch(() => []);
        if (i !== undefined && (seen.length === 0 || seen.at(-1)!.state !== i.state || seen.at(-1)!.pid !== i.pid)) seen.push(i);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      // Its release was active before it wilted: the instance is released as a crash loop, the release stays.
      const looped = await waitFor(() => seen.find((i) => i.reason === 'crash_loop'), { deadlineMs: 40_000, what: 'a crash_loop release after the instance kept failing its health check' });
      expect(looped.reasonDetail).toMatch(/^failed its health check \(500 from GET \/health, 2 checks in a row\), 3 times in 60 s/);
    } finally {
      watching = false;
      await watcher;
    }
    const unroutable = seen.filter((i) => i.state === 'claimed' && i.reason === 'unhealthy');
    expect(unroutable.length, JSON.stringify(seen.map((i) => [i.state, i.reason, i.pid]))).toBeGreaterThanOrEqual(1);
    expect(unroutable[0]!.reasonDetail).toBe('500 from GET /health, 2 checks in a row');
    // Running under more than one process: it was restarted, not only marked, and counted, all under one claim.
    const runs = seen.filter((i) => i.state === 'running');
    expect(new Set(runs.map((i) => i.pid)).size).toBeGreaterThanOrEqual(2);
    expect(runs.map((i) => i.restarts).slice(0, 2)).toEqual([0, 1]);
    expect(new Set(runs.map((i) => i.epoch)).size).toBe(1);
  });

  it('stops and removes the instances a scale-down retires', async () => {
    await hoster('m1');
    await client.publishApp({ name: 'shrink', path: '/shrink', instances: 2, bundle: await uploadApp(client, helloApp()) });
    const two = await waitFor(async () => {
      const r = await running('shrink');
      return r.length === 2 ? r : undefined;
    }, { deadlineMs: 40_000, what: '2 running' });
    await client.scaleApp('shrink', { instances: 1 });
    await waitFor(async () => (await client.listAppInstances('shrink')).length === 1, { deadlineMs: 40_000, what: 'one instance left' });
    const [kept] = await client.listAppInstances('shrink');
    const gone = two.find((i) => i.id !== kept!.id)!;
    await waitFor(() => !alive(gone.pid!), { deadlineMs: 10_000, what: 'the retired process to exit' });
    expect(alive(kept!.pid!)).toBe(true);
  });

  it('claims nothing while the load per CPU is at or over the threshold, and resumes under it', async () => {
    let perCpu = 1.0;
    const h = await hoster('m1', { maxLoadPerCpu: 1.0 }, () => ({ load1: perCpu * 2, load5: perCpu * 2, load15: perCpu * 2, cpus: 2, perCpu }));
    await client.publishApp({ name: 'gated', path: '/gated', instances: 1, bundle: await uploadApp(client, helloApp()) });
    await waitFor(async () => (await client.listAppInstances('gated')).length === 1, { what: 'registered' });
    expect(await h.daemon.hoster.claimRound()).toBe(0);
    perCpu = 1.5;
    expect(await h.daemon.hoster.claimRound()).toBe(0);
    expect((await client.listAppInstances('gated'))[0]!.state).toBe('unclaimed');
    perCpu = 0.99;
    expect(await h.daemon.hoster.claimRound()).toBe(1);
    await waitFor(async () => (await running('gated')).length === 1, { deadlineMs: 15_000, what: 'claimed under the threshold' });
  });
});
