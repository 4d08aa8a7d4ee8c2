// The scaler's pure planner: growth of culprits on hot machines and of apps over target, one-at-a-time shrinking of idle apps, bounds, cool-downs and the at-max notice.
import { describe, expect, it } from 'vitest';
import { planScaling, type AppObservation, type AutoscalePolicy, type MachineObservation, type PlanOptions } from '../../scaler/scaling-plan.js';

const OPTIONS: PlanOptions = { hotLoad: 0.9, idleRatio: 0.5, noticeIntervalMs: 60_000, rebalanceLoad: 1.0 };
const NOW = 1_000_000;
const SECOND = 1000;
const POLICY: AutoscalePolicy = { min: 1, max: 4, targetCpu: 0.5, cooldownUpSeconds: 30, cooldownDownSeconds: 120 };

function machine(name: string, load: number, uses: [app: string, cpu: number, inFlight?: number][] = []): MachineObservation {
  const instances = uses.map(([app, cpuCores, inFlight], i) => ({ app, instance: `${name}-${app}-${i}`, cpuCores, inFlight: inFlight ?? 0 }));
  const top = [...instances].sort((a, b) => b.cpuCores - a.cpuCores)[0];
  return { name, reachable: true, load, culprit: top ? { app: top.app, instance: top.instance, cpuCores: top.cpuCores } : null, instances };
}

const IDS = ['m1', 'm2', 'm3'].flatMap((m) => ['shop', 'blog'].flatMap((a) => [0, 1, 2, 3].map((i) => `${m}-${a}-${i}`)));

function app(over: Partial<AppObservation> = {}): AppObservation {
  const wanted = over.wanted ?? 2;
  return {
    name: 'shop',
    process: 'web',
    ids: IDS,
    wanted,
    running: wanted,
    machines: ['m1'],
    moving: 0,
    movable: IDS,
    policy: POLICY,
    lastChangeAt: null,
    lastNoticeAt: null,
    ...over,
  };
}

function plan(machines: MachineObservation[], apps: AppObservation[], now = NOW, options: PlanOptions = OPTIONS) {
  return planScaling({ machines, apps, now, options });
}

describe('growing', () => {
  it('grows the culprit of a hot machine by one', () => {
    const [d, ...rest] = plan([machine('m1', 1.2, [['shop', 0.3], ['shop', 0.2], ['blog', 0.1]])], [app()]);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ app: 'shop', from: 2, to: 3, cause: 'hot_machine' });
    expect(d!.reason).toContain('m1');
    expect(d!.inputs).toMatchObject({ hotCulpritOn: ['m1'], cpuCores: 0.5, cpuPerInstance: 0.25, machineLoads: { m1: 1.2 } });
  });

  it('does not grow an app that is not the culprit, even on a hot machine', () => {
    // Under its target (0.3 each), and not idle enough to shrink (0.6 on one instance).
    const decisions = plan([machine('m1', 1.2, [['blog', 0.9], ['shop', 0.3], ['shop', 0.3]])], [app({ wanted: 2 })]);
    expect(decisions).toEqual([]);
  });

  it('grows an app whose CPU per instance is over its target on a cool machine', () => {
    const [d] = plan([machine('m1', 0.3, [['shop', 0.7], ['shop', 0.6]])], [app()]);
    expect(d).toMatchObject({ from: 2, to: 3, cause: 'over_target' });
    expect(d!.reason).toContain('0.65');
  });

  it('grows on requests in flight per instance when the policy has that target', () => {
    const policy = { ...POLICY, targetInFlight: 5 };
    const [d] = plan([machine('m1', 0.3, [['shop', 0.01, 8], ['shop', 0.01, 6]])], [app({ policy })]);
    expect(d).toMatchObject({ to: 3, cause: 'over_target' });
    expect(d!.inputs.inFlightPerInstance).toBe(7);
  });

  it('plans each process type of an app on its own instances: a busy worker grows, its web stays', () => {
    // m1-shop-0 is web, m1-shop-1 a worker burning 0.8 cores: each type sees only its own.
    const m1 = machine('m1', 0.3, [['shop', 0.2], ['shop', 0.8]]);
    const web = app({ wanted: 1, ids: ['m1-shop-0'], movable: ['m1-shop-0'] });
    const worker = app({ process: 'worker', wanted: 1, ids: ['m1-shop-1'], movable: ['m1-shop-1'] });
    const decisions = plan([m1], [web, worker]);
    expect(decisions).toHaveLength(1);
    expect(decisions[0]).toMatchObject({ app: 'shop', process: 'worker', from: 1, to: 2, cause: 'over_target' });
    expect(decisions[0]!.inputs.cpuCores).toBe(0.8);
  });

  it('never grows past max: says so once per notice interval instead', () => {
    const hot = [machine('m1', 1.5, [['shop', 0.9]]), machine('m2', 1.1, [['shop', 0.8]])];
    const atMax = app({ wanted: 4, machines: ['m1', 'm2'] });
    const [d, ...rest] = plan(hot, [atMax]);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ from: 4, to: 4, cause: 'at_max' });
    expect(d!.inputs.everyMachineHot).toBe(true);
    expect(d!.reason).toContain('every machine is hot');
    expect(plan(hot, [{ ...atMax, lastNoticeAt: NOW - 10 * SECOND }])).toEqual([]);
    expect(plan(hot, [{ ...atMax, lastNoticeAt: NOW - 61 * SECOND }])).toHaveLength(1);
  });

  it('says only "raise its max" when some machine is still cool (and moving is off)', () => {
    const [d] = plan([machine('m1', 1.5, [['shop', 0.9]]), machine('m2', 0.2)], [app({ wanted: 4 })], NOW, { ...OPTIONS, rebalanceLoad: Infinity });
    expect(d!.cause).toBe('at_max');
    expect(d!.inputs.everyMachineHot).toBe(false);
    expect(d!.reason).not.toContain('every machine');
  });

  it('waits out the up cool-down after any change', () => {
    const hot = [machine('m1', 1.2, [['shop', 0.6]])];
    expect(plan(hot, [app({ lastChangeAt: NOW - 29 * SECOND })])).toEqual([]);
    expect(plan(hot, [app({ lastChangeAt: NOW - 30 * SECOND })])).toHaveLength(1);
  });

  it('waits until the instances asked for before run', () => {
    expect(plan([machine('m1', 1.2, [['shop', 0.6]])], [app({ wanted: 3, running: 2 })])).toEqual([]);
  });

  it('grows every app that is the culprit of some hot machine, each by one', () => {
    const decisions = plan(
      [machine('m1', 1.2, [['shop', 0.6]]), machine('m2', 1.0, [['blog', 0.6]])],
      [app({ name: 'shop', machines: ['m1'] }), app({ name: 'blog', machines: ['m2'] })],
    );
    expect(decisions.map((d) => [d.app, d.to])).toEqual([
      ['shop', 3],
      ['blog', 3],
    ]);
  });
});

describe('rebalancing', () => {
  const overloaded = () => [machine('m1', 1.4, [['shop', 0.9], ['shop', 0.8], ['blog', 0.1]]), machine('m2', 0.3, [['shop', 0.4]]), machine('m3', 0.95)];
  const atMax = (over: Partial<AppObservation> = {}) => app({ wanted: 4, running: 4, machines: ['m1', 'm2'], ...over });

  it('moves the culprit instance of an app at its max off an overloaded machine to the cool ones', () => {
    const [d, ...rest] = plan(overloaded(), [atMax()]);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ app: 'shop', from: 4, to: 4, cause: 'rebalance', move: { instance: 'm1-shop-0', from: 'm1', to: ['m2'] } });
    expect(d!.reason).toContain('starting the copy first');
  });

  it('moves nothing while a move is under way, an instance is not running yet, or inside the up cool-down', () => {
    expect(plan(overloaded(), [atMax({ moving: 1 })])).toEqual([]);
    // The culprit is retiring already (the proxy still remembers its CPU): not moved again (over target, so only a notice).
    expect(plan(overloaded(), [atMax({ movable: ['m2-shop-0'] })]).map((d) => [d.cause, d.inputs.hotCulpritOn])).toEqual([['at_max', []]]);
    expect(plan(overloaded(), [atMax({ running: 3 })])).toEqual([]);
    expect(plan(overloaded(), [atMax({ lastChangeAt: NOW - 5 * SECOND })])).toEqual([]);
  });

  it('moves nothing from a machine hot but under the rebalance load, and says at_max instead', () => {
    const [d] = plan([machine('m1', 0.95, [['shop', 0.9]]), machine('m2', 0.3)], [atMax()]);
    expect(d!.cause).toBe('at_max');
  });

  it('grows rather than moves while under max', () => {
    const [d] = plan(overloaded(), [atMax({ wanted: 3, running: 3 })]);
    expect(d).toMatchObject({ cause: 'hot_machine', to: 4 });
  });
});

describe('shrinking', () => {
  it('removes one instance of an idle app', () => {
    const [d, ...rest] = plan([machine('m1', 0.1, [['shop', 0.01], ['shop', 0.02], ['shop', 0.0]])], [app({ wanted: 3 })]);
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ from: 3, to: 2, cause: 'idle' });
  });

  it('keeps an app whose rest would come near its target with one fewer', () => {
    // 0.6 cores over 3 instances is 0.2 each, but 0.3 each over 2: over idleRatio × target (0.25).
    expect(plan([machine('m1', 0.3, [['shop', 0.2], ['shop', 0.2], ['shop', 0.2]])], [app({ wanted: 3 })])).toEqual([]);
  });

  it('never goes under min', () => {
    expect(plan([machine('m1', 0.0, [['shop', 0.0]])], [app({ wanted: 1 })])).toEqual([]);
    const policy = { ...POLICY, min: 2 };
    expect(plan([machine('m1', 0.0, [['shop', 0.0], ['shop', 0.0]])], [app({ wanted: 2, policy })])).toEqual([]);
  });

  it('waits out the down cool-down after any change, so a grow is not undone at once', () => {
    const idle = [machine('m1', 0.1, [['shop', 0.0], ['shop', 0.0], ['shop', 0.0]])];
    expect(plan(idle, [app({ wanted: 3, lastChangeAt: NOW - 119 * SECOND })])).toEqual([]);
    expect(plan(idle, [app({ wanted: 3, lastChangeAt: NOW - 120 * SECOND })])).toHaveLength(1);
  });

  it('does not shrink while a machine running the app did not report', () => {
    const m2 = { ...machine('m2', 0), reachable: false };
    const decisions = plan([machine('m1', 0.1, [['shop', 0.0]]), m2], [app({ wanted: 2, machines: ['m1', 'm2'] })]);
    expect(decisions).toEqual([]);
  });

  it('keeps an app whose requests in flight are near its target although its CPU is low', () => {
    const policy = { ...POLICY, targetInFlight: 4 };
    expect(plan([machine('m1', 0.1, [['shop', 0.0, 3], ['shop', 0.0, 3]])], [app({ policy })])).toEqual([]);
    expect(plan([machine('m1', 0.1, [['shop', 0.0, 0], ['shop', 0.0, 1]])], [app({ policy })])).toHaveLength(1);
  });

  it('does not shrink the culprit of a hot machine, even when its own CPU looks low', () => {
    // At max, hot: a notice at most, never a shrink.
    const decisions = plan([machine('m1', 1.2, [['shop', 0.05], ['shop', 0.01]])], [app({ wanted: 4, lastNoticeAt: NOW })]);
    expect(decisions).toEqual([]);
  });
});

describe('bounds', () => {
  it('brings an app under its min up to it at once, whatever the cool-down', () => {
    const [d] = plan([machine('m1', 0.0)], [app({ wanted: 0, lastChangeAt: NOW, policy: { ...POLICY, min: 2 } })]);
    expect(d).toMatchObject({ from: 0, to: 2, cause: 'below_min' });
  });

  it('brings an app over its max down to it at once', () => {
    const [d] = plan([machine('m1', 1.5, [['shop', 1]])], [app({ wanted: 7, lastChangeAt: NOW })]);
    expect(d).toMatchObject({ from: 7, to: 4, cause: 'above_max' });
  });
});

describe('a load that comes and goes', () => {
  it('grows to max step by step and shrinks back to min, never inside a cool-down', () => {
    let state = app({ wanted: 1 });
    const history: number[] = [];
    let changes: number[] = [];
    // 10 s rounds: 5 minutes of load (each instance busy), then 10 minutes of none.
    for (let t = 0; t < 90; t++) {
      const now = NOW + t * 10 * SECOND;
      const busy = t < 30;
      const m = machine('m1', busy ? 1.3 : 0.1, Array.from({ length: state.wanted }, () => ['shop', busy ? 0.9 : 0.01] as [string, number]));
      const [d] = plan([m], [state], now);
      if (d && d.to !== d.from) {
        changes.push(now);
        state = { ...state, wanted: d.to, running: d.to, lastChangeAt: now };
      } else if (d) state = { ...state, lastNoticeAt: now };
      history.push(state.wanted);
    }
    expect(Math.max(...history)).toBe(4);
    expect(history.at(-1)).toBe(1);
    // Every step is one instance.
    for (let i = 1; i < history.length; i++) expect(Math.abs(history[i]! - history[i - 1]!)).toBeLessThanOrEqual(1);
    // Never two changes closer than the shorter cool-down.
    changes = changes.sort((a, b) => a - b);
    for (let i = 1; i < changes.length; i++) expect(changes[i]! - changes[i - 1]!).toBeGreaterThanOrEqual(POLICY.cooldownUpSeconds * SECOND);
  });
});
