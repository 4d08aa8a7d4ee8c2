// The reconciler's plan: scale up and down, roll out new releases before retiring old ones, fail bad releases, delete apps.
import { describe, expect, it } from 'vitest';
import { DEFAULT_HEALTH_CHECK, type App, type Release } from '../../registry/store/app.js';
import type { Instance, InstanceState } from '../../registry/store/instance.js';
import { addonsStarting, planApp, type PlanInput } from '../../registry/reconcile-plan.js';

let seq = 0;
function inst(release: number, state: InstanceState, extra: Partial<Instance> = {}): Instance {
  seq++;
  return {
    id: `i${seq}`,
    service: 'pay',
    path: '/pay',
    state,
    attributes: {},
    claimAttributes: {},
    files: 'd',
    release,
    machine: state === 'unclaimed' ? null : 'm1',
    host: null,
    port: null,
    epoch: seq,
    leaseUntil: null,
    pid: null,
    reason: null,
    failedOn: [],
    restarts: 0,
    reasonDetail: null,
    drainUntil: null,
    evacuating: false,
    process: 'web',
    seq,
    createdAt: seq,
    updatedAt: seq,
    ...extra,
  };
}

function rel(version: number, status: Release['status'], createdAt = 0): Release {
  return { version, bundle: `b${version}`, env: {}, command: null, requirements: {}, healthCheck: DEFAULT_HEALTH_CHECK, description: '', createdBy: 't', createdAt, status };
}

function app(instances: number, release: number, state: App['state'] = 'active'): App {
  return { name: 'pay', path: '/pay', instances, stripPrefix: false, release, state, autoscale: null, autoscaleByType: {}, formation: {}, createdAt: 0, updatedAt: 0 };
}

function plan(over: Partial<PlanInput> & Pick<PlanInput, 'app'>) {
  return planApp({ releases: new Map([[1, rel(1, 'active')]]), instances: [], now: 1000, rolloutTimeoutMs: 60_000, ...over });
}

describe('planApp', () => {
  it('registers what is missing of the current release', () => {
    expect(plan({ app: app(3, 1), instances: [inst(1, 'running')] })).toEqual([{ kind: 'register', release: 1, wanted: 3, process: 'web' }]);
  });

  it('scales down by retiring the least advanced, then newest, instances', () => {
    const running = [inst(1, 'running'), inst(1, 'running')];
    const newest = inst(1, 'running');
    const unclaimed = inst(1, 'unclaimed');
    const actions = plan({ app: app(1, 1), instances: [...running, newest, unclaimed] });
    expect(actions).toEqual([
      { kind: 'retire', id: unclaimed.id, reason: 'scaled_down' },
      { kind: 'retire', id: newest.id, reason: 'scaled_down' },
      { kind: 'retire', id: running[1]!.id, reason: 'scaled_down' },
    ]);
  });

  it('keeps every old instance while the new release has none running', () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'deploying', 900)]]);
    const old = [inst(1, 'running'), inst(1, 'running')];
    const fresh = [inst(2, 'claimed'), inst(2, 'unclaimed')];
    expect(plan({ app: app(2, 2), releases, instances: [...old, ...fresh] })).toEqual([]);
  });

  it('retires one old instance for each new one running, oldest first', () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'deploying', 900)]]);
    const old = [inst(1, 'running'), inst(1, 'running')];
    const fresh = [inst(2, 'running'), inst(2, 'claimed')];
    expect(plan({ app: app(2, 2), releases, instances: [...old, ...fresh] })).toEqual([{ kind: 'retire', id: old[0]!.id, reason: 'replaced' }]);
  });

  it('marks the release live and retires the rest once all new instances run', () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'deploying', 900)]]);
    const old = inst(1, 'running');
    const oldUnclaimed = inst(1, 'unclaimed');
    const fresh = [inst(2, 'running'), inst(2, 'running')];
    expect(plan({ app: app(2, 2), releases, instances: [old, oldUnclaimed, ...fresh] })).toEqual([
      { kind: 'release-active', version: 2 },
      { kind: 'retire', id: old.id, reason: 'replaced' },
      { kind: 'retire', id: oldUnclaimed.id, reason: 'replaced' },
    ]);
  });

  it('fails a release whose instances crashed on two machines, falling back to the one still serving', () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'deploying', 900)]]);
    const old = [inst(1, 'running'), inst(1, 'running')];
    const bad = inst(2, 'unclaimed', { failedOn: ['m1', 'm2'] });
    const actions = plan({ app: app(2, 2), releases, instances: [...old, bad, inst(2, 'claimed')] });
    expect(actions).toEqual([{ kind: 'release-failed', version: 2, reason: expect.stringContaining('2 machines'), fallback: 1 }]);
  });

  it('fails a release at once when its build failed on one machine, quoting the build', () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'deploying', 900)]]);
    const bad = inst(2, 'unclaimed', { reason: 'build_failed', failedOn: ['m1'], reasonDetail: "npm install exited with code 1\nnpm ERR! 404 'no-such-pkg@*'" });
    const actions = plan({ app: app(1, 2), releases, instances: [inst(1, 'running'), bad], liveMachines: 3 });
    expect(actions).toEqual([{ kind: 'release-failed', version: 2, reason: "build_failed on m1: npm install exited with code 1\nnpm ERR! 404 'no-such-pkg@*'", fallback: 1 }]);
  });

  it('fails a release whose instance crash-looped on the only machine there is', () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'deploying', 900)]]);
    const bad = inst(2, 'unclaimed', { reason: 'crash_loop', failedOn: ['m1'], reasonDetail: 'exited with code 3, 3 times in 10 s' });
    expect(plan({ app: app(1, 2), releases, instances: [inst(1, 'running'), bad], liveMachines: 1 })).toEqual([
      { kind: 'release-failed', version: 2, reason: 'crash_loop on m1: exited with code 3, 3 times in 10 s', fallback: 1 },
    ]);
    // With a second machine to try, one crash loop may be the machine's: the release goes on.
    expect(plan({ app: app(1, 2), releases, instances: [inst(1, 'running'), bad], liveMachines: 2 })).toEqual([]);
  });

  it('fails a release that is not all running after the rollout timeout', () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'deploying', 0)]]);
    const actions = plan({ app: app(1, 2), releases, instances: [inst(1, 'running'), inst(2, 'claimed')], now: 60_001 });
    expect(actions).toEqual([{ kind: 'release-failed', version: 2, reason: expect.stringContaining('0 of 1'), fallback: 1 }]);
  });

  it('after a failure, retires the failed release and keeps the fallback serving', () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'failed')]]);
    const old = [inst(1, 'running'), inst(1, 'running')];
    const bad = inst(2, 'unclaimed');
    expect(plan({ app: app(2, 1), releases, instances: [...old, bad] })).toEqual([{ kind: 'retire', id: bad.id, reason: 'release_failed' }]);
  });

  it('a failed first release with nothing to fall back to runs nothing', () => {
    const releases = new Map([[1, rel(1, 'failed')]]);
    const bad = inst(1, 'claimed');
    expect(plan({ app: app(2, 1), releases, instances: [bad] })).toEqual([{ kind: 'retire', id: bad.id, reason: 'release_failed' }]);
  });

  it('advances draining instances and leaves stopping ones to their hoster', () => {
    const draining = inst(1, 'draining', { reason: 'scaled_down' });
    const stopping = inst(1, 'stopping');
    const running = inst(1, 'running');
    expect(plan({ app: app(1, 1), instances: [draining, stopping, running] })).toEqual([{ kind: 'retire', id: draining.id, reason: 'scaled_down' }]);
  });

  it('deletes: retires everything, and removes the app once nothing is left', () => {
    const a = inst(1, 'running');
    expect(plan({ app: app(2, 1, 'deleting'), instances: [a] })).toEqual([{ kind: 'retire', id: a.id, reason: 'app_deleted' }]);
    expect(plan({ app: app(2, 1, 'deleting'), instances: [] })).toEqual([{ kind: 'remove-app' }]);
  });

  it('replaces an evacuating instance first, then retires it', () => {
    const leaving = inst(1, 'running', { evacuating: true });
    const staying = inst(1, 'running');
    expect(plan({ app: app(2, 1), instances: [leaving, staying] })).toEqual([{ kind: 'register', release: 1, wanted: 2, process: 'web' }]);
    const replacement = inst(1, 'running');
    expect(plan({ app: app(2, 1), instances: [leaving, staying, replacement] })).toEqual([{ kind: 'retire', id: leaving.id, reason: 'replaced' }]);
  });

  it('never falls back to the failing release itself, even through its evacuating instances', () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'deploying', 0)]]);
    const actions = plan({ app: app(2, 2), releases, instances: [inst(1, 'running'), inst(2, 'running', { evacuating: true }), inst(2, 'claimed', { failedOn: ['m1', 'm2'] })] });
    expect(actions).toEqual([{ kind: 'release-failed', version: 2, reason: expect.any(String), fallback: 1 }]);
  });

  it("keeps a failed release's running instances until the fallback has enough running", () => {
    const releases = new Map([[1, rel(1, 'active')], [2, rel(2, 'failed')]]);
    const v1 = inst(1, 'running');
    const v2Running = inst(2, 'running');
    const v2Starting = inst(2, 'claimed');
    // Fallback v1 wants 2 and has 1 running: the running v2 still serves; the starting one goes.
    expect(plan({ app: app(2, 1), releases, instances: [v1, v2Running, v2Starting] })).toEqual([
      { kind: 'register', release: 1, wanted: 2, process: 'web' },
      { kind: 'retire', id: v2Starting.id, reason: 'release_failed' },
    ]);
  });

  it('leaves instances that berth does not manage (no release) alone', () => {
    expect(plan({ app: app(0, 1), instances: [inst(1, 'running', { release: null })] })).toEqual([]);
  });

  describe('process types', () => {
    const typed = (version: number, status: Release['status'], extra: Partial<Release> = {}): Release => ({ ...rel(version, status), processes: { worker: 'node worker.js' }, ...extra });

    it('registers each type up to its own count (a type without one runs 1)', () => {
      const a = { ...app(2, 1), formation: { worker: 3 } };
      const actions = plan({ app: a, releases: new Map([[1, typed(1, 'active', { processes: { worker: 'w', clock: 'c' } })]]), instances: [inst(1, 'running')] });
      expect(actions).toEqual([
        { kind: 'register', release: 1, wanted: 2, process: 'web' },
        { kind: 'register', release: 1, wanted: 3, process: 'worker' },
        { kind: 'register', release: 1, wanted: 1, process: 'clock' },
      ]);
    });

    it('scales a type down without touching the others, and retires a type the release no longer has', () => {
      const a = { ...app(1, 1), formation: { worker: 1 } };
      const web = inst(1, 'running');
      const workers = [inst(1, 'running', { process: 'worker' }), inst(1, 'running', { process: 'worker' })];
      const gone = inst(1, 'running', { process: 'clock' });
      const actions = plan({ app: a, releases: new Map([[1, typed(1, 'active')]]), instances: [web, ...workers, gone] });
      expect(actions).toEqual([
        { kind: 'retire', id: workers[1]!.id, reason: 'scaled_down' },
        { kind: 'retire', id: gone.id, reason: 'scaled_down' },
      ]);
    });

    it('rolls each type on its own: an old worker goes once a new worker runs, whatever web does', () => {
      const a = app(1, 2);
      const oldWeb = inst(1, 'running');
      const oldWorker = inst(1, 'running', { process: 'worker' });
      const newWeb = inst(2, 'claimed');
      const newWorker = inst(2, 'running', { process: 'worker' });
      const actions = plan({ app: a, releases: new Map([[1, typed(1, 'active')], [2, typed(2, 'deploying')]]), instances: [oldWeb, oldWorker, newWeb, newWorker] });
      expect(actions).toEqual([{ kind: 'retire', id: oldWorker.id, reason: 'replaced' }]);
    });

    it('marks a release live only once every type runs its count', () => {
      const releases = new Map([[1, typed(1, 'deploying')]]);
      expect(plan({ app: app(1, 1), releases, instances: [inst(1, 'running')] })).toEqual([{ kind: 'register', release: 1, wanted: 1, process: 'worker' }]);
      expect(plan({ app: app(1, 1), releases, instances: [inst(1, 'running'), inst(1, 'running', { process: 'worker' })] })).toEqual([{ kind: 'release-active', version: 1 }]);
    });
  });

  describe('release phase', () => {
    const withCommand = (version: number, status: Release['status'], extra: Partial<Release> = {}): Release => ({
      ...rel(version, status),
      processes: { worker: 'node worker.js' },
      releaseCommand: 'node migrate.js',
      ...extra,
    });

    it('runs only the release command first, while the release before keeps serving', () => {
      const old = [inst(1, 'running'), inst(1, 'running', { process: 'worker' })];
      const releases = new Map([[1, withCommand(1, 'active', { releaseTask: { status: 'succeeded', detail: 'exit 0', machine: 'm1', at: 0 } })], [2, withCommand(2, 'deploying')]]);
      expect(plan({ app: app(1, 2), releases, instances: old })).toEqual([{ kind: 'register', release: 2, wanted: 1, process: 'release' }]);
      // Once registered, nothing more until it is done.
      expect(plan({ app: app(1, 2), releases, instances: [...old, inst(2, 'running', { process: 'release' })] })).toEqual([]);
    });

    it('starts the release once its release command succeeded, retiring the finished task', () => {
      const releases = new Map([[1, withCommand(1, 'deploying', { releaseTask: { status: 'succeeded', detail: 'exit 0', machine: 'm1', at: 500 } })]]);
      expect(plan({ app: app(2, 1), releases, instances: [] })).toEqual([
        { kind: 'register', release: 1, wanted: 2, process: 'web' },
        { kind: 'register', release: 1, wanted: 1, process: 'worker' },
      ]);
    });

    it('fails the release with release_command_failed when it exited non-zero, falling back to the one serving', () => {
      const old = inst(1, 'running');
      const releases = new Map([
        [1, rel(1, 'active')],
        [2, withCommand(2, 'deploying', { releaseTask: { status: 'failed', detail: 'exit 1\nmigration 7 failed', machine: 'm1', at: 500 } })],
      ]);
      expect(plan({ app: app(1, 2), releases, instances: [old] })).toEqual([
        { kind: 'release-failed', version: 2, reason: 'release_command_failed on m1: exit 1\nmigration 7 failed', fallback: 1 },
      ]);
    });

    it('fails a release whose release command no machine ran to the end in time', () => {
      const releases = new Map([[1, withCommand(1, 'deploying', { releaseTimeoutMs: 10_000 })]]);
      expect(plan({ app: app(1, 1), releases, instances: [], now: 60_000 })).toEqual([{ kind: 'register', release: 1, wanted: 1, process: 'release' }]);
      const late = plan({ app: app(1, 1), releases, instances: [], now: 70_001 });
      expect(late).toMatchObject([{ kind: 'release-failed', version: 1, reason: expect.stringMatching(/^release_command_failed: /) }]);
    });

    it("waits for an attached add-on's first start before its release command or any instance, then fails naming it", () => {
      const old = inst(1, 'running');
      const releases = new Map([[1, rel(1, 'active')], [2, withCommand(2, 'deploying', { createdAt: 0 })], [3, rel(3, 'deploying', 0)]]);
      const startingAddons = [{ name: 'pay-postgres', variable: 'DATABASE_URL', state: 'starting', detail: '' }];
      expect(plan({ app: app(1, 2), releases, instances: [old], startingAddons })).toEqual([]);
      // Without a release command, the instances wait too.
      expect(plan({ app: app(1, 3), releases, instances: [old], startingAddons })).toEqual([]);
      expect(plan({ app: app(1, 2), releases, instances: [old], startingAddons: [] })).toEqual([{ kind: 'register', release: 2, wanted: 1, process: 'release' }]);
      expect(plan({ app: app(1, 2), releases, instances: [old], startingAddons, now: 60_001 })).toEqual([
        { kind: 'release-failed', version: 2, reason: expect.stringMatching(/^addon_not_started: 60 s after the release, pay-postgres \(DATABASE_URL\) is still starting/), fallback: 1 },
      ]);
    });

    it("holds a release only for add-ons attached to the app that never ran yet", () => {
      const a = (name: string, state: string, restarts: number, attachments: Record<string, string>) => ({ name, state, restarts, detail: '', attachments });
      const starting = addonsStarting([a('new', 'starting', 0, { pay: 'DATABASE_URL' }), a('fresh', 'unclaimed', 0, { pay: 'REDIS_URL' }), a('crashed-before', 'starting', 2, { pay: 'OTHER_URL' }), a('up', 'running', 0, { pay: 'X_URL' }), a('theirs', 'starting', 0, { shop: 'DATABASE_URL' })], 'pay');
      expect(starting.map((s) => `${s.name}:${s.variable}`)).toEqual(['new:DATABASE_URL', 'fresh:REDIS_URL']);
    });

    it('counts the rollout timeout from the end of the release command', () => {
      const releases = new Map([[1, withCommand(1, 'deploying', { releaseTask: { status: 'succeeded', detail: 'exit 0', machine: 'm1', at: 50_000 } })]]);
      expect(plan({ app: app(1, 1), releases, instances: [inst(1, 'claimed'), inst(1, 'claimed', { process: 'worker' })], now: 100_000 })).toEqual([]);
    });
  });
});
