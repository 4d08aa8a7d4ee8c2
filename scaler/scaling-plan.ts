/**
 * The scaler's decisions, as a pure function of what it observed: machines' load and culprit
 * reports, each policed process type of an app (web, or a worker type) with its instances and
 * policy, when it last changed, and the time. No I/O,
 * so every rule is unit-tested on its own (test/unit/scaling-plan.test.ts).
 */
import type { AutoscalePolicy } from '../registry/store/index.js';

export type { AutoscalePolicy };

/** One instance as its machine's proxy measured it. */
export interface InstanceUse {
  app: string;
  instance: string;
  cpuCores: number;
  inFlight: number;
}

/** What one machine's proxy reported; `reachable: false` when its reports could not be read. */
export interface MachineObservation {
  name: string;
  reachable: boolean;
  /** GetLoad's 5-minute load per CPU (1.0 = at capacity). */
  load: number;
  /** GetCulprit's app (the instance using the most CPU), if any. */
  culprit: { app: string; instance: string; cpuCores: number } | null;
  /** Every instance of this machine the proxy routes to. */
  instances: InstanceUse[];
}

/** One policed process type of an app: each is planned on its own. */
export interface AppObservation {
  name: string;
  /** The process type: `web`, or another type of the release (a worker). */
  process: string;
  /** Every instance of this type (any release or state): only their measured use counts for it. */
  ids: string[];
  /** Instances wanted now. */
  wanted: number;
  /** Running instances of the current release. */
  running: number;
  /** Machine of each running instance: their reports must all be in before the app may shrink. */
  machines: string[];
  /** Instances being moved (evacuating): no other move starts meanwhile. */
  moving: number;
  /** Ids of its running instances of the current release not being moved: only these may move. */
  movable: string[];
  policy: AutoscalePolicy;
  /** When the scaler last changed it (ms), or null. */
  lastChangeAt: number | null;
  /** When the scaler last said it is at its max (ms), or null. */
  lastNoticeAt: number | null;
}

export interface PlanOptions {
  /** A machine whose load per CPU is at least this runs hot. */
  hotLoad: number;
  /** An app shrinks only when, with one instance fewer, it would use less than this share of its target. */
  idleRatio: number;
  /** An "at its max" notice is repeated at most this often per app. */
  noticeIntervalMs: number;
  /**
   * An app at its max that is the culprit of a machine this loaded moves that instance to a
   * machine under `hotLoad` (make before break). At least the hosters' claim gate, so that the
   * loaded machine does not claim the copy itself. Infinity: never.
   */
  rebalanceLoad: number;
}

export type ScaleCause = 'below_min' | 'above_max' | 'hot_machine' | 'over_target' | 'idle' | 'at_max' | 'rebalance';

/** One decision with the numbers that made it, as recorded in the decision log. */
export interface ScaleDecision {
  app: string;
  process: string;
  from: number;
  /** Equal to `from` for a notice (at_max) and a move (rebalance). */
  to: number;
  cause: ScaleCause;
  /** For a move: the instance to move and the machine it leaves. */
  move?: { instance: string; from: string; to: string[] };
  /** One sentence a person can read. */
  reason: string;
  inputs: DecisionInputs;
}

export interface DecisionInputs {
  wanted: number;
  running: number;
  policy: AutoscalePolicy;
  /** CPU cores of all its measured instances together, null when a machine's report is missing. */
  cpuCores: number | null;
  inFlight: number | null;
  /** Per wanted instance. */
  cpuPerInstance: number | null;
  inFlightPerInstance: number | null;
  /** Hot machines where this app is the culprit. */
  hotCulpritOn: string[];
  /** Load per CPU of every machine, null where unreachable. */
  machineLoads: Record<string, number | null>;
  everyMachineHot: boolean;
}

export interface PlanInput {
  machines: MachineObservation[];
  apps: AppObservation[];
  now: number;
  options: PlanOptions;
}

export function planScaling(input: PlanInput): ScaleDecision[] {
  const { machines, now, options } = input;
  const reachable = machines.filter((m) => m.reachable);
  const reachableNames = new Set(reachable.map((m) => m.name));
  const hot = reachable.filter((m) => m.load >= options.hotLoad);
  const machineLoads = Object.fromEntries(machines.map((m) => [m.name, m.reachable ? m.load : null]));
  const everyMachineHot = machines.length > 0 && hot.length === machines.length;
  const decisions: ScaleDecision[] = [];

  for (const app of input.apps) {
    const p = app.policy;
    const ids = new Set(app.ids);
    const uses = reachable.flatMap((m) => m.instances.filter((i) => i.app === app.name && ids.has(i.instance)));
    // Idle or busy can be judged only when every machine running it answered.
    const known = app.machines.every((m) => reachableNames.has(m));
    const cpuCores = known ? sum(uses.map((u) => u.cpuCores)) : null;
    const inFlight = known ? sum(uses.map((u) => u.inFlight)) : null;
    const per = (total: number | null) => (total === null || app.wanted === 0 ? null : round3(total / app.wanted));
    // Only a live instance counts: one retiring or being moved is on its way out already.
    const hotCulpritOn = hot.filter((m) => m.culprit?.app === app.name && app.movable.includes(m.culprit.instance)).map((m) => m.name);
    const inputs: DecisionInputs = {
      wanted: app.wanted,
      running: app.running,
      policy: p,
      cpuCores: cpuCores === null ? null : round3(cpuCores),
      inFlight,
      cpuPerInstance: per(cpuCores),
      inFlightPerInstance: per(inFlight),
      hotCulpritOn,
      machineLoads,
      everyMachineHot,
    };
    const decide = (to: number, cause: ScaleCause, reason: string) => decisions.push({ app: app.name, process: app.process, from: app.wanted, to, cause, reason, inputs });

    // Outside its bounds (set by hand, or the policy changed): back inside at once.
    if (app.wanted < p.min) {
      decide(p.min, 'below_min', `${app.wanted} instance(s) is under the policy's min of ${p.min}`);
      continue;
    }
    if (app.wanted > p.max) {
      decide(p.max, 'above_max', `${app.wanted} instance(s) is over the policy's max of ${p.max}`);
      continue;
    }

    const cpuOver = inputs.cpuPerInstance !== null && inputs.cpuPerInstance > p.targetCpu;
    const inFlightOver = p.targetInFlight !== undefined && inputs.inFlightPerInstance !== null && inputs.inFlightPerInstance > p.targetInFlight;
    const overTarget = cpuOver || inFlightOver;
    const sinceChange = app.lastChangeAt === null ? Infinity : now - app.lastChangeAt;

    if (hotCulpritOn.length > 0 || overTarget) {
      const why =
        hotCulpritOn.length > 0
          ? `it uses the most CPU on ${hotCulpritOn.join(', ')}, running hot (load per CPU ${hotCulpritOn.map((m) => machineLoads[m]).join(', ')} >= ${options.hotLoad})`
          : cpuOver
            ? `its CPU per instance ${inputs.cpuPerInstance} is over its target of ${p.targetCpu}`
            : `its requests in flight per instance ${inputs.inFlightPerInstance} are over its target of ${p.targetInFlight}`;
      if (app.wanted >= p.max) {
        // At its max: move its busiest instance off the most loaded machine to a cool one, if any.
        const overloaded = hot
          .filter((m) => m.load >= options.rebalanceLoad && hotCulpritOn.includes(m.name))
          .sort((a, b) => b.load - a.load)[0];
        const cool = reachable.filter((m) => m.load < options.hotLoad).map((m) => m.name);
        if (overloaded !== undefined && cool.length > 0) {
          if (app.moving === 0 && app.running >= app.wanted && sinceChange >= p.cooldownUpSeconds * 1000) {
            decisions.push({
              app: app.name,
              process: app.process,
              from: app.wanted,
              to: app.wanted,
              cause: 'rebalance',
              reason: `moves instance ${overloaded.culprit!.instance} off ${overloaded.name} (load per CPU ${overloaded.load} >= ${options.rebalanceLoad}) to a cooler machine (${cool.join(', ')}), starting the copy first: it is at its max of ${p.max}`,
              inputs,
              move: { instance: overloaded.culprit!.instance, from: overloaded.name, to: cool },
            });
          }
          continue;
        }
        const sinceNotice = app.lastNoticeAt === null ? Infinity : now - app.lastNoticeAt;
        if (sinceNotice >= options.noticeIntervalMs) {
          decide(
            app.wanted,
            'at_max',
            `${app.process === 'web' ? app.name : `${app.name}'s ${app.process}`} needs more instances (${why}) but runs its max of ${p.max}${everyMachineHot ? ' and every machine is hot: add machines or raise its max' : ': raise its max'}`,
          );
        }
        continue;
      }
      // Instances asked for before have not all started: more would only queue up behind them.
      if (app.running < app.wanted) continue;
      if (sinceChange < p.cooldownUpSeconds * 1000) continue;
      decide(app.wanted + 1, hotCulpritOn.length > 0 ? 'hot_machine' : 'over_target', `grows because ${why}`);
      continue;
    }

    if (app.wanted <= p.min || cpuCores === null || inFlight === null) continue;
    if (sinceChange < p.cooldownDownSeconds * 1000) continue;
    // With one instance fewer, would the rest still sit well under the target?
    const fewer = app.wanted - 1;
    const cpuAfter = cpuCores / fewer;
    const inFlightAfter = inFlight / fewer;
    const idle = cpuAfter < p.targetCpu * options.idleRatio && (p.targetInFlight === undefined || inFlightAfter < p.targetInFlight * options.idleRatio);
    if (!idle) continue;
    decide(
      fewer,
      'idle',
      `shrinks because with ${fewer} instance(s) it would use ${round3(cpuAfter)} CPU per instance${p.targetInFlight === undefined ? '' : ` and ${round3(inFlightAfter)} requests in flight`}, under ${options.idleRatio} of its target`,
    );
  }
  return decisions;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
