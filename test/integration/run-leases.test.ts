// One-off runs are leased like instances, with two real hoster processes racing for them: each of many runs started at once runs exactly once (one machine, one output); a run whose hoster is SIGKILLed dies with it, is marked lost when its lease expires, and is never started again elsewhere.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BerthClient } from '../../sdk/berth-client.js';
import type { Run, RunOutput } from '../../sdk/types.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';
import { traversableTempDir, uploadApp } from '../helpers/hoster-fixture.js';
import { instancePortRange } from '../helpers/port-range.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, testPrefix, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const LEASE_MS = 3000;
const APP = 'racer';

let redis: TestRedis;
let registry: RegistryFixture;
let client: BerthClient;
let prefix: string;
const hosters: { proc: DaemonProcess; dir: string }[] = [];

function hosterProcess(machine: string): DaemonProcess {
  const dir = traversableTempDir(`berth-${machine}-`);
  const proc = startDaemon(['hoster', '--machine', machine, '--data-dir', dir], {
    REDIS_URL: redis.url,
    BERTH_KEY_PREFIX: prefix,
    BERTH_LEASE_MS: String(LEASE_MS),
    BERTH_MAX_LOAD_PER_CPU: '1000',
    BERTH_STOP_GRACE_MS: '500',
    BERTH_HEARTBEAT_MS: '1000',
    BERTH_CAPACITY: '40',
    BERTH_PORT_RANGE: instancePortRange(),
  });
  hosters.push({ proc, dir });
  return proc;
}

/** Pids of processes whose environment says they are this run. */
function processesOfRun(id: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
      const state = readFileSync(`/proc/${entry}/stat`, 'latin1').split(') ')[1]?.[0];
      if (state !== 'Z' && environ.includes(`BERTH_RUN=${id}`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

beforeAll(async () => {
  redis = await startRedis();
  prefix = testPrefix();
  registry = await startTestRegistry(redis, { keyPrefix: prefix, reconcileIntervalMs: 50, leaseMs: LEASE_MS });
  client = registry.client;
  hosterProcess('m1');
  hosterProcess('m2');
  await waitFor(async () => (await client.listMachines()).length === 2, { deadlineMs: 20_000, what: 'both hosters up' }).catch((err) => {
    throw new Error(`${String(err)}\n${hosters.map((h) => h.proc.output().slice(-2000)).join('\n')}`);
  });
  const bundle = await uploadApp(client, { 'server.js': "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');\n" });
  await client.publishApp({ name: APP, path: `/${APP}`, instances: 0, bundle });
});

afterAll(async () => {
  for (const h of hosters) h.proc.kill('SIGTERM');
  await Promise.all(hosters.map((h) => h.proc.exited));
  for (const h of hosters) rmSync(h.dir, { recursive: true, force: true });
  await registry?.close();
  await redis?.stop();
});

describe('run leases', () => {
  it('many runs started at once each run exactly once', async () => {
    const runs = await Promise.all(
      Array.from({ length: 12 }, (_, i) => client.createRun(APP, { command: ['node', '-e', `console.log(process.env.BERTH_MACHINE + ' ${i}')`], detached: true })),
    );
    await waitFor(async () => (await client.listRuns(APP)).filter((r) => r.state === 'exited').length === runs.length, { deadlineMs: 60_000, what: 'every run done' });
    for (const [i, run] of runs.entries()) {
      const output = await client.runOutput(APP, run.id);
      const printed = output.filter((o): o is Extract<RunOutput, { stream: string }> => 'stream' in o).map((o) => o.data).join('');
      const done = (await client.getRun(APP, run.id)) as Run;
      expect(done).toMatchObject({ state: 'exited', exitCode: 0 });
      // One machine ran it, once: one line, naming the machine the run records.
      expect(printed).toBe(`${done.machine} ${i}\n`);
      expect(output.filter((o) => 'exit' in o)).toHaveLength(1);
    }
  });

  it('a run whose hoster is SIGKILLed dies with it, ends lost, and is not started again', async () => {
    const run = await client.createRun(APP, { command: ['node', '-e', "console.log('started on ' + process.env.BERTH_MACHINE); setInterval(() => {}, 1000)"], detached: true });
    await waitFor(async () => (await client.runOutput(APP, run.id)).length > 0 && processesOfRun(run.id).length > 0, { deadlineMs: 30_000, what: 'the run running' });
    const holder = (await client.getRun(APP, run.id)).machine!;
    const victim = hosters.find((h) => h.proc.child.spawnargs.includes(holder))!;
    victim.proc.kill('SIGKILL');
    await victim.proc.exited;
    // The parent-death signal: no orphan keeps running the command.
    await waitFor(() => processesOfRun(run.id).length === 0, { deadlineMs: 5000, what: "the run's process gone with its hoster" });
    await waitFor(async () => (await client.getRun(APP, run.id)).state === 'lost', { deadlineMs: LEASE_MS * 4, what: 'the run marked lost' });
    expect((await client.getRun(APP, run.id)).reason).toBe('lease_expired');
    // The other hoster never picks it up: it runs a later run to its end meanwhile (it is polling).
    const later = await client.createRun(APP, { command: ['node', '-e', "console.log('later')"], detached: true });
    await waitFor(async () => (await client.getRun(APP, later.id)).state === 'exited', { deadlineMs: 30_000, what: 'a later run done by the other hoster' });
    expect((await client.getRun(APP, later.id)).machine).not.toBe(holder);
    const printed = (await client.runOutput(APP, run.id)).filter((o) => 'stream' in o);
    expect(printed).toEqual([{ stream: 'out', data: `started on ${holder}\n` }]);
    expect(processesOfRun(run.id)).toEqual([]);
  });

  it('a run no hoster takes within the start timeout fails (not_started) and ends its followers', async () => {
    // Its own registry and key prefix: no hoster serves it.
    const lonely = await startTestRegistry(redis, { runStartTimeoutMs: 1500 });
    try {
      const bundle = await uploadApp(lonely.client, { 'server.js': "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');\n" });
      await lonely.client.publishApp({ name: APP, path: `/${APP}`, instances: 0, bundle });
      const run = await lonely.client.createRun(APP, { command: ['node', '-e', "console.log('ran')"] });
      const seen: RunOutput[] = [];
      for await (const piece of lonely.client.followRun(APP, run.id, { signal: AbortSignal.timeout(30_000) })) seen.push(piece);
      expect(seen).toEqual([{ exit: { state: 'failed', exitCode: null, signal: null, reason: 'not_started' } }]);
      expect(await lonely.client.getRun(APP, run.id)).toMatchObject({ state: 'failed', reason: 'not_started', machine: null, startedAt: null });
    } finally {
      await lonely.close();
    }
  });
});
