// The autoscale policy through the API (set, change, remove, per process type, bad input refused, manual instances refused while on) and the fencing of scaler decisions: only the lease holder, only from the state it read, each one recorded in the decision log and the event stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppStore } from '../../registry/store/app-store.js';
import type { BerthClient } from '../../sdk/berth-client.js';
import { helloApp, uploadApp } from '../helpers/hoster-fixture.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startTestRegistry, type RegistryFixture } from '../helpers/registry-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

const LEASE_MS = 10_000;

let redis: TestRedis;
let registry: RegistryFixture;
let client: BerthClient;
let apps: AppStore;

beforeAll(async () => {
  redis = await startRedis();
  registry = await startTestRegistry(redis, { maxInstances: 10 });
  client = registry.client;
  apps = registry.daemon.apps;
  const bundle = await uploadApp(client, helloApp());
  await client.publishApp({ name: 'shop', path: '/shop', instances: 2, bundle });
  // No hoster here: its instances never run, which these tests do not need.
  await client.publishApp({ name: 'jobs', path: '/jobs', instances: 1, bundle, processes: { worker: 'node worker.js' } });
});

afterAll(async () => {
  await registry?.close();
  await redis?.stop();
});

async function put(body: unknown, app = 'shop'): Promise<{ status: number; code?: string; message?: string }> {
  const res = await fetch(`${registry.daemon.url}/v1/apps/${app}/autoscale`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${registry.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { error?: { code: string; message: string } };
  return { status: res.status, code: json.error?.code, message: json.error?.message };
}

async function remove(app: string, query: string): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${registry.daemon.url}/v1/apps/${app}/autoscale${query}`, { method: 'DELETE', headers: { authorization: `Bearer ${registry.token}` } });
  const json = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: json.error?.code };
}

const decision = (from: number, to: number) => ({ app: 'shop', from, to, cause: 'idle' });

describe('autoscale policy', () => {
  it('is off until set; set fills in defaults; berth scale N is refused while it is on; DELETE turns it off', async () => {
    expect((await client.getApp('shop')).autoscale).toBeNull();
    const on = await client.setAutoscale('shop', { min: 1, max: 4 });
    expect(on.autoscale).toEqual({ min: 1, max: 4, targetCpu: 0.6, cooldownUpSeconds: 30, cooldownDownSeconds: 120 });
    const changed = await client.setAutoscale('shop', { min: 2, max: 5, targetCpu: 0.3, targetInFlight: 8, cooldownUpSeconds: 5, cooldownDownSeconds: 60 });
    expect(changed.autoscale).toEqual({ min: 2, max: 5, targetCpu: 0.3, targetInFlight: 8, cooldownUpSeconds: 5, cooldownDownSeconds: 60 });
    await expect(client.scaleApp('shop', { instances: 3 })).rejects.toMatchObject({ code: 'autoscale_on', status: 409 });
    await expect(client.updateApp('shop', { instances: 3 })).rejects.toMatchObject({ code: 'autoscale_on' });
    // Prefix stripping is not the scaler's business.
    expect((await client.scaleApp('shop', { stripPrefix: true })).stripPrefix).toBe(true);
    const off = await client.removeAutoscale('shop');
    expect(off.autoscale).toBeNull();
    expect(off.instances).toBe(2);
    expect((await client.scaleApp('shop', { instances: 3 })).instances).toBe(3);
    await client.scaleApp('shop', { instances: 2 });
    // Removing it twice is fine.
    expect((await client.removeAutoscale('shop')).autoscale).toBeNull();
  });

  it('names a process type: one policy per type beside web\'s, returned, a count by hand of that type refused, removed alone', async () => {
    expect((await client.getApp('jobs')).autoscaleByType).toEqual({});
    await client.setAutoscale('jobs', { min: 1, max: 3 });
    const on = await client.setAutoscale('jobs', { type: 'worker', min: 1, max: 4, targetCpu: 0.3 });
    expect(on.autoscaleByType).toEqual({ worker: { min: 1, max: 4, targetCpu: 0.3, cooldownUpSeconds: 30, cooldownDownSeconds: 120 } });
    expect(on.autoscale).toEqual({ min: 1, max: 3, targetCpu: 0.6, cooldownUpSeconds: 30, cooldownDownSeconds: 120 });
    // Setting it again changes that type's policy alone; type web is the app's own policy.
    const changed = await client.setAutoscale('jobs', { type: 'worker', min: 2, max: 4 });
    expect(changed.autoscaleByType.worker).toMatchObject({ min: 2, max: 4, targetCpu: 0.6 });
    expect((await client.setAutoscale('jobs', { type: 'web', min: 1, max: 2 })).autoscale).toMatchObject({ min: 1, max: 2 });
    expect((await client.getApp('jobs')).autoscaleByType.worker).toMatchObject({ min: 2 });

    await expect(client.scaleApp('jobs', { formation: { worker: 3 } })).rejects.toMatchObject({ code: 'autoscale_on', status: 409, message: expect.stringContaining('berth scale jobs --type worker --off') });
    expect((await client.getApp('jobs')).formation).toEqual({});

    const workerOff = await client.removeAutoscale('jobs', 'worker');
    expect(workerOff.autoscaleByType).toEqual({});
    expect(workerOff.autoscale).toMatchObject({ min: 1, max: 2 });
    expect((await client.scaleApp('jobs', { formation: { worker: 2 } })).formation).toEqual({ worker: 2 });
    // Web's stays on until removed on its own; removing a type's policy twice is fine.
    expect((await client.removeAutoscale('jobs', 'worker')).autoscaleByType).toEqual({});
    expect((await client.removeAutoscale('jobs')).autoscale).toBeNull();
    await client.scaleApp('jobs', { formation: { worker: 1 } });
  });

  it('refuses bad policies with 400 invalid_request (unknown_process_type for a type its release lacks) and changes neither the app nor its policy events', async () => {
    const r = redis.client();
    // The reconciler may still be retiring instances of the last test: count only policy events.
    const policyEvents = async () => (await r.xrange(registry.daemon.store.keys.events, '-', '+')).filter(([, f]) => f.includes('app-autoscale')).length;
    const state = async () => [await r.hgetall(registry.daemon.store.keys.app('shop')), await policyEvents()];
    const before = await state();
    const bad: unknown[] = [
      { min: 3, max: 2 },
      { min: 0, max: 2 },
      { max: 2 },
      { min: 1, max: 11 },
      { min: 1, max: 2, targetCpu: 0 },
      { min: 1, max: 2, targetCpu: '0.5' },
      { min: 1, max: 2, cooldownUpSeconds: -1 },
      { min: 1, max: 2, surprise: true },
      [],
    ];
    for (const body of bad) {
      const answer = await put(body);
      expect(answer, JSON.stringify(body)).toMatchObject({ status: 400, code: 'invalid_request' });
    }
    expect((await put({ min: 3, max: 2 })).message).toContain('min must not be over max');
    expect(await state()).toEqual(before);

    // A process type: named well, of the app's current release, and worth a policy.
    const jobs = async () => [await r.hgetall(registry.daemon.store.keys.app('jobs')), await policyEvents()];
    const jobsBefore = await jobs();
    for (const body of [{ min: 1, max: 2, type: 'Worker!' }, { min: 1, max: 2, type: 'release' }, { min: 1, max: 2, type: 7 }, { min: 1, max: 2, type: 'worker', targetInFlight: 5 }]) {
      expect(await put(body, 'jobs'), JSON.stringify(body)).toMatchObject({ status: 400, code: 'invalid_request' });
    }
    expect(await put({ min: 1, max: 2, type: 'clock' }, 'jobs')).toMatchObject({ status: 400, code: 'unknown_process_type', message: expect.stringContaining('its types are web, worker') });
    expect(await put({ min: 1, max: 2, type: 'worker' }, 'shop')).toMatchObject({ status: 400, code: 'unknown_process_type' });
    expect(await remove('jobs', '?type=Worker!')).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(await remove('jobs', '?surprise=1')).toMatchObject({ status: 400, code: 'invalid_request' });
    expect(await jobs()).toEqual(jobsBefore);
    expect(await state()).toEqual(before);
    await expect(client.setAutoscale('nope', { min: 1, max: 2 })).rejects.toMatchObject({ code: 'app_not_found' });
    await expect(client.scalerLog({ app: 'nope' })).rejects.toMatchObject({ code: 'app_not_found' });
  });
});

describe('scaler decisions', () => {
  it('apply only for the lease holder, only from the instances it read, and are logged with their inputs', async () => {
    await client.setAutoscale('shop', { min: 1, max: 4 });
    const store = registry.daemon.store;
    const record = (from: number, to: number) => ({ ...decision(from, to), reason: `test ${from}->${to}`, inputs: { wanted: from } });

    // No lease: nothing changes.
    expect(await apps.applyScaleDecision(decision(2, 3), record(2, 3), 'scaler-a', 100)).toEqual({ applied: false, why: 'not_leader' });
    expect(await store.holdLeadership(store.keys.scalerLease, 'scaler-a', LEASE_MS, 'hold')).toBe(true);
    // Another scaler cannot take it, nor act.
    expect(await store.holdLeadership(store.keys.scalerLease, 'scaler-b', LEASE_MS, 'hold')).toBe(false);
    expect(await apps.applyScaleDecision(decision(2, 3), record(2, 3), 'scaler-b', 100)).toEqual({ applied: false, why: 'not_leader' });
    // From a state that is no longer there: refused.
    expect(await apps.applyScaleDecision(decision(1, 2), record(1, 2), 'scaler-a', 100)).toEqual({ applied: false, why: 'app_changed' });
    expect((await client.getApp('shop')).instances).toBe(2);

    const ok = await apps.applyScaleDecision(decision(2, 3), record(2, 3), 'scaler-a', 100);
    expect(ok).toMatchObject({ applied: true });
    expect((await client.getApp('shop')).instances).toBe(3);
    // The same decision again (a retry after a lost reply) does not grow it twice.
    expect(await apps.applyScaleDecision(decision(2, 3), record(2, 3), 'scaler-a', 100)).toEqual({ applied: false, why: 'app_changed' });
    // A notice changes nothing but is logged.
    expect(await apps.applyScaleDecision({ ...decision(3, 3), cause: 'at_max' }, record(3, 3), 'scaler-a', 100)).toMatchObject({ applied: true });

    const log = await client.scalerLog({ app: 'shop' });
    expect(log.map((d) => [d.from, d.to])).toEqual([
      [3, 3],
      [2, 3],
    ]);
    expect(log[1]).toMatchObject({ reason: 'test 2->3', inputs: { wanted: 2 } });
    expect(typeof log[1]!.at).toBe('number');
    const memory = (await apps.scalerMemory()).get('shop')!;
    expect(memory.changeAt).toBe(log[1]!.at);
    expect(memory.noticeAt).toBe(log[0]!.at);

    // Each decision is on the event stream too, next to the app-updated every scale sends.
    const events = (await redis.client().xrange(store.keys.events, '-', '+')).map(([, f]: [string, string[]]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])));
    const decisions = events.filter((e: Record<string, string | undefined>) => e.kind === 'scaler-decision');
    expect(decisions.map((e: Record<string, string | undefined>) => e.reason)).toEqual(['idle 2->3', 'at_max 3->3']);

    // The log is capped.
    for (let i = 0; i < 5; i++) await apps.applyScaleDecision({ ...decision(3, 3), cause: 'at_max' }, record(3, 3), 'scaler-a', 4);
    expect(await client.scalerLog({ limit: 100 })).toHaveLength(4);
    await store.holdLeadership(store.keys.scalerLease, 'scaler-a', LEASE_MS, 'drop');
  });

  it('of a process type change that type\'s count alone, fenced like web\'s, remembered per type', async () => {
    const store = registry.daemon.store;
    await store.holdLeadership(store.keys.scalerLease, 'scaler-t', LEASE_MS, 'hold');
    const worker = (from: number, to: number) => ({ app: 'jobs', process: 'worker', from, to, cause: 'over_target' });
    // No worker policy: refused, as for web without one.
    expect(await apps.applyScaleDecision(worker(1, 2), {}, 'scaler-t', 100)).toEqual({ applied: false, why: 'app_changed' });
    await client.setAutoscale('jobs', { type: 'worker', min: 1, max: 3 });
    // From a count it does not have (its formation has no entry: 1 runs).
    expect(await apps.applyScaleDecision(worker(2, 3), {}, 'scaler-t', 100)).toEqual({ applied: false, why: 'app_changed' });
    const ok = await apps.applyScaleDecision(worker(1, 2), { ...worker(1, 2), reason: 'test' }, 'scaler-t', 100);
    expect(ok).toMatchObject({ applied: true });
    const app = await client.getApp('jobs');
    expect(app.formation).toEqual({ worker: 2 });
    expect(app.instances).toBe(1);
    // The same decision again does not grow it twice; a web decision needs web's own policy.
    expect(await apps.applyScaleDecision(worker(1, 2), {}, 'scaler-t', 100)).toEqual({ applied: false, why: 'app_changed' });
    expect(await apps.applyScaleDecision({ ...decision(1, 2), app: 'jobs' }, {}, 'scaler-t', 100)).toEqual({ applied: false, why: 'app_changed' });
    const memory = (await apps.scalerMemory()).get('jobs')!;
    expect(memory.types?.worker?.changeAt).toBe(ok.applied ? ok.at : -1);
    expect(memory.changeAt).toBeUndefined();
    expect((await client.scalerLog({ app: 'jobs' }))[0]).toMatchObject({ process: 'worker', from: 1, to: 2, reason: 'test' });
    await client.removeAutoscale('jobs', 'worker');
    await store.holdLeadership(store.keys.scalerLease, 'scaler-t', LEASE_MS, 'drop');
  });

  it('refuses a decision once the policy is removed', async () => {
    const store = registry.daemon.store;
    await store.holdLeadership(store.keys.scalerLease, 'scaler-c', LEASE_MS, 'hold');
    await client.removeAutoscale('shop');
    expect(await apps.applyScaleDecision(decision(3, 2), {}, 'scaler-c', 100)).toEqual({ applied: false, why: 'app_changed' });
    expect((await client.getApp('shop')).instances).toBe(3);
  });

  it('forgets what it remembered of an app once the app is removed, so a new app of that name starts afresh', async () => {
    await client.publishApp({ name: 'brief', path: '/brief', instances: 1, bundle: await uploadApp(client, helloApp()) });
    await redis.client().hset(apps.keys.scalerMemory, 'brief', JSON.stringify({ changeAt: Date.now() }));
    expect((await apps.scalerMemory()).has('brief')).toBe(true);
    await client.deleteApp('brief');
    await waitFor(async () => !(await client.listApps()).some((a) => a.name === 'brief'), { what: 'the deleted app to be removed' });
    const memory = await apps.scalerMemory();
    expect(memory.has('brief')).toBe(false);
    expect(memory.has('shop')).toBe(true);
  });
});
