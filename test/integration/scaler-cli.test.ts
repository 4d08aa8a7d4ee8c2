// berth scale --min/--max/--target/--off (and --type for another process type), berth info and berth scaler log, run as the real command against a real registry: the policy set, changed one field at a time and removed, manual counts refused while it is on, usage errors, and the decision log printed with its reasons.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BerthClient } from '../../sdk/berth-client.js';
import type { ScaleDecision } from '../../sdk/types.js';
import { runCli } from '../helpers/cli-process.js';
import { helloApp, uploadApp } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';

const LEASE_MS = 10_000;

let redis: TestRedis;
let registry: RegistryFixture;
let client: BerthClient;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis);
  client = registry.client;
  env = { BERTH_URL: registry.daemon.url, BERTH_TOKEN: registry.token, BERTH_HOME: '/nonexistent-berth-home' };
  await client.publishApp({ name: 'shop', path: '/shop', instances: 1, bundle: await uploadApp(client, helloApp()) });
});

afterAll(async () => {
  await registry?.close();
  await redis?.stop();
});

describe('berth scale with a policy', () => {
  it('sets, changes and removes the policy; info shows it; a count by hand is refused while it is on', async () => {
    const on = await runCli(['scale', 'shop', '--min', '1', '--max', '3', '--target', '0.4'], env);
    expect(on).toMatchObject({ code: 0, stderr: '' });
    expect(on.stdout).toBe('shop: scales automatically, 1-3 instances, target 0.4 CPU per instance, cool-down 30s up / 120s down (now 1 wanted)\n');

    const changed = await runCli(['scale', 'shop', '--max', '5', '--target-in-flight', '10', '--cooldown-down', '60', '--json'], env);
    expect(changed.code).toBe(0);
    expect(JSON.parse(changed.stdout).autoscale).toEqual({ min: 1, max: 5, targetCpu: 0.4, targetInFlight: 10, cooldownUpSeconds: 30, cooldownDownSeconds: 60 });

    const info = await runCli(['info', 'shop'], env);
    expect(info.stdout).toMatch(/^ {2}autoscale +1-5 instances, target 0\.4 CPU or 10 in flight per instance, cool-down 30s up \/ 60s down$/m);

    const byHand = await runCli(['scale', 'shop', '2', '--no-wait'], env);
    expect(byHand.code).toBe(1);
    expect(byHand.stderr).toBe('berth: shop scales automatically: change its policy (berth scale shop --min N --max N) or turn it off (berth scale shop --off) before setting its instances.\n');

    const off = await runCli(['scale', 'shop', '--off'], env);
    expect(off).toMatchObject({ code: 0, stdout: 'shop: automatic scaling off, 1 instance(s) wanted\n' });
    expect((await runCli(['info', 'shop'], env)).stdout).toMatch(/^ {2}autoscale +off$/m);
  });

  it('--type names the process type of the policy: set, changed, shown by info, counts by hand of that type refused, turned off alone', async () => {
    await client.publishApp({ name: 'jobs', path: '/jobs', instances: 1, bundle: await uploadApp(client, helloApp()), processes: { worker: 'node worker.js' } });
    const on = await runCli(['scale', 'jobs', '--type', 'worker', '--min', '1', '--max', '4'], env);
    expect(on).toMatchObject({ code: 0, stderr: '' });
    expect(on.stdout).toBe("jobs's worker: scales automatically, 1-4 instances, target 0.6 CPU per instance, cool-down 30s up / 120s down (now 1 wanted)\n");
    const changed = await runCli(['scale', 'jobs', '--type', 'worker', '--max', '3', '--json'], env);
    expect(changed.code).toBe(0);
    const json = JSON.parse(changed.stdout);
    expect(json.autoscaleByType).toEqual({ worker: { min: 1, max: 3, targetCpu: 0.6, cooldownUpSeconds: 30, cooldownDownSeconds: 120 } });
    expect(json.autoscale).toBeNull();

    const info = (await runCli(['info', 'jobs'], env)).stdout;
    expect(info).toMatch(/^ {2}autoscale +off$/m);
    expect(info).toMatch(/^ {2}autoscale worker +1-3 instances, target 0\.6 CPU per instance, cool-down 30s up \/ 120s down$/m);

    const byHand = await runCli(['scale', 'jobs', 'worker=2', '--no-wait'], env);
    expect(byHand.code).toBe(1);
    expect(byHand.stderr).toContain("jobs's worker scales automatically: change its policy (berth scale jobs --type worker --min N --max N) or turn it off (berth scale jobs --type worker --off)");
    const unknown = await runCli(['scale', 'jobs', '--type', 'clock', '--min', '1', '--max', '2'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('jobs has no process type "clock": its types are web, worker');
    const mixed = await runCli(['scale', 'jobs', 'worker=2', '--type', 'worker'], env);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toContain('--type is for automatic scaling: give counts per type as TYPE=N instead');

    const off = await runCli(['scale', 'jobs', '--type', 'worker', '--off'], env);
    expect(off).toMatchObject({ code: 0, stdout: "jobs's worker: automatic scaling off, 1 instance(s) wanted\n" });
    expect((await client.getApp('jobs')).autoscaleByType).toEqual({});
  });

  it('refuses mixed or incomplete forms with a message that shows the right ones', async () => {
    for (const args of [['scale', 'shop', '2', '--min', '1'], ['scale', 'shop', '--off', '--max', '2'], ['scale', 'shop']]) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toContain('Give a number of instances, or --min/--max/--target, or --off');
    }
    const half = await runCli(['scale', 'shop', '--max', '4'], env);
    expect(half).toMatchObject({ code: 1, stdout: '' });
    expect(half.stderr).toContain('Give both --min and --max');
    const bad = await runCli(['scale', 'shop', '--min', '1', '--max', '4', '--target', 'lots'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Expected a number above 0');
    const inverted = await runCli(['scale', 'shop', '--min', '4', '--max', '2'], env);
    expect(inverted.code).toBe(1);
    expect(inverted.stderr).toContain('min must not be over max');
    expect((await client.getApp('shop')).autoscale).toBeNull();
  });
});

describe('berth scaler log', () => {
  it('says when there is nothing yet, then prints each decision with its cause, reason and numbers', async () => {
    expect(await runCli(['scaler', 'log'], env)).toMatchObject({ code: 0, stdout: 'No scaler decisions yet.\n' });
    await client.setAutoscale('shop', { min: 1, max: 2 });
    const store = registry.daemon.store;
    await store.holdLeadership(store.keys.scalerLease, 'scaler-cli-test', LEASE_MS, 'hold');
    const inputs: ScaleDecision['inputs'] = {
      wanted: 1,
      running: 1,
      policy: { min: 1, max: 2, targetCpu: 0.6, cooldownUpSeconds: 30, cooldownDownSeconds: 120 },
      cpuCores: 0.9,
      inFlight: 3,
      cpuPerInstance: 0.9,
      inFlightPerInstance: 3,
      hotCulpritOn: [],
      machineLoads: { m1: 0.42 },
      everyMachineHot: false,
    };
    const d = { app: 'shop', from: 1, to: 2, cause: 'over_target', reason: 'grows because its CPU per instance 0.9 is over its target of 0.6', inputs };
    expect(await registry.daemon.apps.applyScaleDecision(d, { ...d, scaler: 'scaler-cli-test' }, 'scaler-cli-test', 100)).toMatchObject({ applied: true });

    const text = await runCli(['scaler', 'log', 'shop'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^\S+ ago +shop {2}1 -> 2 {2}over_target: grows because its CPU per instance 0\.9 is over its target of 0\.6 {2}\(cpu\/instance 0\.9, in flight\/instance 3, loads m1=0\.42\)\n$/);
    const json = await runCli(['scaler', 'log', '--json', '-n', '5'], env);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ app: 'shop', from: 1, to: 2, cause: 'over_target', scaler: 'scaler-cli-test', inputs })]);
    const many = await runCli(['scaler', 'log', '-n', 'lots'], env);
    expect(many.code).toBe(1);
    expect(many.stderr).toContain('Expected a number of decisions from 1 to 1000');
    const unknown = await runCli(['scaler', 'log', 'nope'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No app named "nope"');
  });

  it('berth --help lists the scaler among the daemons, and berth scaler --help its log', async () => {
    const help = await runCli(['--help'], env);
    expect(help.stdout).toMatch(/^ {2}scaler /m);
    const scalerHelp = await runCli(['scaler', '--help'], env);
    expect(scalerHelp.code).toBe(0);
    expect(scalerHelp.stdout).toMatch(/^ {2}log /m);
  });
});
