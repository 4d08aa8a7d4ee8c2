// Of two policed apps on one machine, the one under real CPU load (a burner app, measured by the proxy's real culprit sampling) grows to its max and back to its min when the load stops, never inside a cool-down, with one of two scalers acting, each change explained in the decision log, served without a failed request while it shrinks; and a worker-type policy grows and shrinks an app's workers on their own measured CPU, leaving its web alone.
//
// Honest note: the machine's 5-minute load average moves over minutes and is shared with
// other test suites, so the proxy's and hoster's load source here is a number the test sets
// (hot while the burner burns, cool after). The culprit and every instance's CPU use are the
// real ones, sampled from /proc by the proxy.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveOptions } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import type { MachineLoad } from '../../common/load-source.js';
import type { ProxyDaemon } from '../../proxy/proxy-daemon.js';
import { SCALER_OPTIONS, startScaler, type ScalerDaemon } from '../../scaler/scaler-daemon.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import type { ScaleDecision } from '../../sdk/types.js';
import { burnerApp } from '../helpers/burner-app.js';
import { startTestHoster, traversableTempDir, uploadApp, type HosterFixture } from '../helpers/hoster-fixture.js';
import { startTestProxy } from '../helpers/proxy-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const COOLDOWN_UP_SECONDS = 2;
const COOLDOWN_DOWN_SECONDS = 4;
const SECOND = 1000;
/** Growing needs new instances started and measured; shrinking needs the 10 s CPU window to empty. */
const GROW_DEADLINE_MS = 60_000;
const SHRINK_DEADLINE_MS = 90_000;
const TEST_TIMEOUT_MS = 200_000;
/** Between two requests of the traffic kept up while shrinking: about 50 requests a second. */
const TRAFFIC_PACE_MS = 20;
const HOT = 1.3;
const COOL = 0.1;

let redis: TestRedis;
let registry: RegistryFixture;
let client: BerthClient;
let proxy: ProxyDaemon;
let hoster: HosterFixture;
let flagDir: string;
let perCpu = COOL;
const scalers: ScalerDaemon[] = [];
const applied: ScaleDecision[] = [];
/** Rounds completed as the acting scaler, by all scalers. */
let rounds = 0;

const load = (): MachineLoad => ({ load1: perCpu * 2, load5: perCpu * 2, load15: perCpu * 2, cpus: 2, perCpu });

async function startTestScaler(): Promise<ScalerDaemon> {
  const config = resolveOptions(
    SCALER_OPTIONS,
    { keyPrefix: registry.prefix, intervalMs: 300, leaseMs: 4000, reportTimeoutMs: 1500, hotLoad: 0.9, noticeIntervalMs: 600_000 },
    { REDIS_URL: redis.url },
  );
  const daemon = await startScaler(config, silentLogger(), {
    onDecision: (d) => applied.push(d),
    onRound: () => rounds++,
  });
  scalers.push(daemon);
  return daemon;
}

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis, { reconcileIntervalMs: 100, drainMs: 500, leaseMs: 3000 });
  client = registry.client;
  proxy = await startTestProxy(redis, registry.prefix, 'm1', {}, load);
  hoster = await startTestHoster(redis, registry.prefix, 'm1', { proxyUrl: proxy.url }, load);
  flagDir = traversableTempDir('berth-burn-');
});

afterAll(async () => {
  for (const s of scalers) await s.close();
  await hoster?.close({ evacuate: false });
  await proxy?.close();
  await registry?.close();
  await redis?.stop();
  if (flagDir) rmSync(flagDir, { recursive: true, force: true });
});

async function wanted(): Promise<{ instances: number; running: number }> {
  const app = await client.getApp('burner');
  return { instances: app.instances, running: app.running };
}

describe('berth scaler', () => {
  it(
    'grows a burning app to its max, says it is at its max, and shrinks it back to its min one at a time when the load stops',
    async () => {
      const flag = join(flagDir, 'burn');
      const bundle = await uploadApp(client, burnerApp());
      await client.publishApp({ name: 'burner', path: '/burner', instances: 1, bundle, env: { BURN_FLAG: flag, BURN_DUTY: '0.25' } });
      // Same code, never burning: on the same hot machine it is never the culprit, so it never grows.
      await client.publishApp({ name: 'calm', path: '/calm', instances: 1, bundle });
      await client.setAutoscale('calm', { min: 1, max: 2, targetCpu: 0.1, cooldownUpSeconds: 0, cooldownDownSeconds: 0 });
      await waitFor(async () => (await wanted()).running === 1 && (await client.getApp('calm')).running === 1, { deadlineMs: 30_000, what: 'the first burner and calm instances to run' });
      const app = await client.setAutoscale('burner', { min: 1, max: 3, targetCpu: 0.1, cooldownUpSeconds: COOLDOWN_UP_SECONDS, cooldownDownSeconds: COOLDOWN_DOWN_SECONDS });
      expect(app.autoscale).toEqual({ min: 1, max: 3, targetCpu: 0.1, cooldownUpSeconds: COOLDOWN_UP_SECONDS, cooldownDownSeconds: COOLDOWN_DOWN_SECONDS });
      // Manual instances are refused while the scaler decides them.
      await expect(client.scaleApp('burner', { instances: 2 })).rejects.toMatchObject({ code: 'autoscale_on' });

      const first = await startTestScaler();
      const second = await startTestScaler();
      await waitFor(() => first.scaler.isLeader || second.scaler.isLeader, { what: 'one scaler to take the lease' });
      expect(first.scaler.isLeader && second.scaler.isLeader).toBe(false);

      // Idle and cool: nothing to do at its min.
      const idleRounds = await countRounds(3);
      expect(idleRounds).toBeGreaterThanOrEqual(3);
      expect(applied).toEqual([]);

      // Load: the burner burns a quarter core per instance and the machine reads hot.
      writeFileSync(flag, '1');
      perCpu = HOT;
      await waitFor(async () => {
        const w = await wanted();
        return w.instances === 3 && w.running === 3;
      }, { deadlineMs: GROW_DEADLINE_MS, what: 'the burner to grow to its max of 3 and run them' });
      await waitFor(() => applied.some((d) => d.cause === 'at_max'), { deadlineMs: GROW_DEADLINE_MS, what: 'the at-max notice' });
      expect(applied.filter((d) => d.app === 'calm')).toEqual([]);
      const grown = applied.filter((d) => d.to > d.from);
      expect(grown.map((d) => [d.from, d.to])).toEqual([
        [1, 2],
        [2, 3],
      ]);
      for (const d of grown) expect(['hot_machine', 'over_target']).toContain(d.cause);
      const notice = applied.find((d) => d.cause === 'at_max')!;
      expect(notice).toMatchObject({ from: 3, to: 3 });
      expect(notice.inputs.everyMachineHot).toBe(true);
      expect(notice.reason).toContain('every machine is hot');
      // Still burning: no shrink, and no second notice within the notice interval.
      await countRounds(5);
      expect(applied.filter((d) => d.to < d.from)).toEqual([]);
      expect(applied.filter((d) => d.cause === 'at_max')).toHaveLength(1);

      // The acting scaler stops: the other one takes over for the way down.
      const leader = first.scaler.isLeader ? first : second;
      const standby = leader === first ? second : first;
      await leader.close();

      // Requests keep flowing through the proxy while instances are retired.
      let failures = 0;
      let served = 0;
      let stop = false;
      const traffic = (async () => {
        while (!stop) {
          const res = await fetch(`${proxy.url}/burner/`, { signal: AbortSignal.timeout(5 * SECOND) }).catch(() => null);
          if (res?.status === 200) served++;
          else failures++;
          await res?.body?.cancel();
          // Paced: a tight loop would itself keep the instances busy above the idle line on a fast machine.
          await new Promise((resolve) => setTimeout(resolve, TRAFFIC_PACE_MS));
        }
      })();

      rmSync(flag);
      perCpu = COOL;
      expect(existsSync(flag)).toBe(false);
      await waitFor(async () => {
        const w = await wanted();
        const left = (await client.listAppInstances('burner')).length;
        return w.instances === 1 && left === 1;
      }, { deadlineMs: SHRINK_DEADLINE_MS, what: 'the burner to shrink back to its min of 1' });
      stop = true;
      await traffic;
      expect(served).toBeGreaterThan(0);
      expect(failures).toBe(0);

      expect(applied.filter((d) => d.app === 'calm')).toEqual([]);
      expect((await client.getApp('calm')).instances).toBe(1);
      const shrunk = applied.filter((d) => d.to < d.from);
      expect(shrunk.map((d) => [d.from, d.to, d.cause])).toEqual([
        [3, 2, 'idle'],
        [2, 1, 'idle'],
      ]);
      for (const d of shrunk) expect(d.scaler).toBe(standby.scaler.holder);
      for (const d of grown) expect(d.scaler).toBe(leader.scaler.holder);

      // No flapping: every change waits out the cool-down of its direction after the one before.
      const changes = applied.filter((d) => d.to !== d.from && d.app === 'burner').sort((a, b) => a.at - b.at);
      for (let i = 1; i < changes.length; i++) {
        const gap = changes[i]!.at - changes[i - 1]!.at;
        const cooldown = changes[i]!.to > changes[i]!.from ? COOLDOWN_UP_SECONDS : COOLDOWN_DOWN_SECONDS;
        expect(gap).toBeGreaterThanOrEqual(cooldown * SECOND);
        // A chain: each decision started from what the one before left (no two scalers acted on one state).
        expect(changes[i]!.from).toBe(changes[i - 1]!.to);
      }

      // The decision log (GET /v1/scaler/log) explains every change, newest first, with its inputs.
      const log = await client.scalerLog({ app: 'burner' });
      expect(log.map((d) => [d.from, d.to, d.cause])).toEqual(
        [...applied].sort((a, b) => a.at - b.at).reverse().map((d) => [d.from, d.to, d.cause]),
      );
      for (const d of log) {
        expect(d.reason.length).toBeGreaterThan(20);
        expect(d.inputs.machineLoads).toHaveProperty('m1');
        expect(d.inputs.cpuPerInstance).not.toBeNull();
        expect(d.inputs.policy.max).toBe(3);
      }
      const grew = log.find((d) => d.from === 1 && d.to === 2)!;
      expect(grew.inputs.machineLoads.m1).toBe(HOT);
      expect(grew.scaler).toBe(leader.scaler.holder);
      const idle = log.find((d) => d.from === 2 && d.to === 1)!;
      expect(idle.inputs.cpuPerInstance!).toBeLessThan(0.1);
      expect(idle.scaler).toBe(standby.scaler.holder);
    },
    TEST_TIMEOUT_MS,
  );
});

/** A worker with no port: burns a quarter core while the file named by WORK_FLAG exists. */
const WORKER_JS = `const fs = require('node:fs');
setInterval(() => {
  if (!fs.existsSync(process.env.WORK_FLAG)) return;
  const until = Date.now() + 25;
  while (Date.now() < until);
}, 100);
process.on('SIGTERM', () => process.exit(0));
`;

describe('berth scaler with a worker-type policy', () => {
  it(
    'grows the workers of an app whose workers burn, on their own CPU, and shrinks them back when they stop, leaving its web instances alone',
    async () => {
      const flag = join(flagDir, 'work');
      const bundle = await uploadApp(client, { ...burnerApp(), 'worker.js': WORKER_JS });
      await client.publishApp({ name: 'jobs', path: '/jobs', instances: 1, bundle, env: { WORK_FLAG: flag }, processes: { worker: 'node worker.js' } });
      const running = async (process: string) => (await client.listAppInstances('jobs')).filter((i) => i.process === process && i.state === 'running').length;
      const instancesOf = async (process: string) => (await client.listAppInstances('jobs')).filter((i) => i.process === process).length;
      await waitFor(async () => (await running('web')) === 1 && (await running('worker')) === 1, { deadlineMs: 30_000, what: 'the first web and worker instances of jobs to run' });
      // Web has a policy too, with the same low target: the workers' CPU must not count for it.
      await client.setAutoscale('jobs', { min: 1, max: 2, targetCpu: 0.1, cooldownUpSeconds: 0, cooldownDownSeconds: 0 });
      const app = await client.setAutoscale('jobs', { type: 'worker', min: 1, max: 2, targetCpu: 0.1, cooldownUpSeconds: 0, cooldownDownSeconds: COOLDOWN_DOWN_SECONDS });
      expect(app.autoscaleByType.worker).toMatchObject({ min: 1, max: 2, targetCpu: 0.1 });
      const from = applied.length;
      const mine = () => applied.slice(from).filter((d) => d.app === 'jobs');
      await startTestScaler();

      writeFileSync(flag, '1');
      await waitFor(async () => (await client.getApp('jobs')).formation.worker === 2 && (await running('worker')) === 2, {
        deadlineMs: GROW_DEADLINE_MS,
        what: 'the workers of jobs to grow to 2 and run',
      });
      const grown = mine().filter((d) => d.to > d.from);
      expect(grown.map((d) => [d.process, d.from, d.to, d.cause])).toEqual([['worker', 1, 2, 'over_target']]);
      expect(grown[0]!.inputs.cpuPerInstance!).toBeGreaterThan(0.1);
      expect(grown[0]!.inputs.inFlight).toBe(0);

      rmSync(flag);
      await waitFor(async () => (await client.getApp('jobs')).formation.worker === 1 && (await instancesOf('worker')) === 1, {
        deadlineMs: SHRINK_DEADLINE_MS,
        what: 'the workers of jobs to shrink back to 1',
      });
      const shrunk = mine().filter((d) => d.to < d.from);
      expect(shrunk.map((d) => [d.process, d.from, d.to, d.cause])).toEqual([['worker', 2, 1, 'idle']]);
      // Web was never touched: no decision of its own, still its one instance.
      expect(mine().filter((d) => d.process !== 'worker')).toEqual([]);
      const after = await client.getApp('jobs');
      expect(after.instances).toBe(1);
      expect(await running('web')).toBe(1);
      const log = await client.scalerLog({ app: 'jobs' });
      expect(log.length).toBeGreaterThanOrEqual(2);
      for (const d of log) expect(d.process).toBe('worker');
    },
    TEST_TIMEOUT_MS,
  );
});

/** Waits until the acting scaler completed `n` more rounds. */
async function countRounds(n: number): Promise<number> {
  const from = rounds;
  await waitFor(() => rounds - from >= n, { deadlineMs: 20_000, what: `${n} scaler rounds` });
  return rounds - from;
}
