import type { FailureReason, RetireReason } from '../sdk/types.js';
import { RELEASE_PROCESS, WEB_PROCESS } from '../common/procfile.js';
import { wantedOf, type App, type Release, type Instance } from './store/index.js';
import { DEFAULT_RELEASE_TIMEOUT_MS } from './release-processes.js';

/** What the reconciler does for one app in one round; each action is idempotent. */
export type ReconcileAction =
  | { kind: 'register'; release: number; wanted: number; process: string }
  | { kind: 'retire'; id: string; reason: RetireReason }
  | { kind: 'release-active'; version: number }
  | { kind: 'release-failed'; version: number; reason: string; fallback: number | null }
  | { kind: 'remove-app' };

export type { RetireReason };

export interface PlanInput {
  app: App;
  /** Every release of the app, by version. */
  releases: ReadonlyMap<number, Release>;
  /** Every instance of the app. */
  instances: readonly Instance[];
  /** Now, on Redis's clock (ms). */
  now: number;
  /** A release that has not got all its instances running this long after it was made has failed. */
  rolloutTimeoutMs: number;
  /** Machines whose hoster sent a heartbeat lately: a crash on each of them is conclusive. @default 2 */
  liveMachines?: number;
  /** The app's attached add-ons whose server has not started yet (see addonsStarting); read only while a release deploys. */
  startingAddons?: readonly StartingAddon[];
}

/** An add-on attached to the app whose server is still coming up: the release waits for it. */
export interface StartingAddon {
  name: string;
  variable: string;
  state: string;
  detail: string;
}

/**
 * Add-ons the release must wait for: a server not yet started for the first time (just created,
 * or its hoster not yet there). Without the wait, the release command (a migration) and the
 * new instances would race the server's first start and fail with ECONNREFUSED. A server that
 * ran and crashed does not hold a release back: the app's own errors say what is wrong.
 */
export function addonsStarting(addons: readonly { name: string; state: string; restarts: number; detail: string; attachments: Record<string, string> }[], app: string): StartingAddon[] {
  return addons
    .filter((a) => (a.state === 'unclaimed' || a.state === 'starting') && a.restarts === 0 && a.attachments[app] !== undefined)
    .map((a) => ({ name: a.name, variable: a.attachments[app]!, state: a.state, detail: a.detail }));
}

/** Machines a release may crash on before it, not the machines, is taken to be at fault. */
export const FAILED_MACHINES_FOR_BAD_RELEASE = 2;

/**
 * Failures that are the release's whatever the machine: the same bundle, build and config
 * fail the same way anywhere, so one machine's word is conclusive.
 */
export const RELEASE_FAULTS: ReadonlySet<string> = new Set<FailureReason>(['build_failed', 'bundle_rejected', 'no_start_command', 'invalid_env', 'release_command_failed']);

const STATE_ORDER: Record<string, number> = { unclaimed: 0, crashed: 1, claimed: 2, running: 3 };

/**
 * Decides what brings an app closer to what its user wants. The rules that keep an update
 * free of failed requests: a new release's instances start first; an old instance is retired
 * only while enough new ones run; a retired instance drains (unroutable) before it stops.
 * Each process type (web, worker, …) follows these rules with its own count. A release with a
 * release command first runs that alone (one instance of type `release`): nothing else of the
 * release is registered until it succeeded, and the release fails if it did not.
 */
export function planApp(input: PlanInput): ReconcileAction[] {
  const { app, releases } = input;
  const managed = input.instances.filter((i) => i.release !== null);
  const actions: ReconcileAction[] = [];
  // Draining instances advance to stopping once their drain time is up.
  for (const i of managed) if (i.state === 'draining') actions.push({ kind: 'retire', id: i.id, reason: retireReasonOf(i) });
  const live = managed.filter((i) => i.state !== 'draining' && i.state !== 'stopping');

  if (app.state === 'deleting') {
    for (const i of live) actions.push({ kind: 'retire', id: i.id, reason: 'app_deleted' });
    if (managed.length === 0) actions.push({ kind: 'remove-app' });
    return actions;
  }

  const current = releases.get(app.release);
  const phase = releasePhase(current);
  const tasks = live.filter((i) => i.process === RELEASE_PROCESS);
  const processes = live.filter((i) => i.process !== RELEASE_PROCESS);
  // A release task is kept only while its release still waits for it.
  for (const t of tasks) {
    if (t.release !== app.release || phase !== 'pending' || current?.status !== 'deploying') actions.push({ kind: 'retire', id: t.id, reason: 'replaced' });
  }

  const failedCurrent = current === undefined || current.status === 'failed';
  const types = new Set<string>([WEB_PROCESS, ...(failedCurrent ? [] : Object.keys(current.processes ?? {})), ...processes.map((i) => i.process)]);
  const wantedByType = new Map<string, number>();
  for (const type of types) {
    const declared = type === WEB_PROCESS || (!failedCurrent && current.processes?.[type] !== undefined);
    wantedByType.set(type, failedCurrent || !declared ? 0 : wantedOf(app, type));
  }
  const isMine = (i: Instance) => i.release === app.release && !i.evacuating;

  if (current !== undefined && current.status === 'deploying') {
    const mineAll = live.filter(isMine);
    const runningMine = processes.filter((i) => isMine(i) && i.state === 'running');
    const wantedAll = [...wantedByType.values()].reduce((a, b) => a + b, 0);
    const runningEnough = [...wantedByType].every(([type, wanted]) => runningMine.filter((i) => i.process === type).length >= wanted);
    const waiting = input.startingAddons ?? [];
    const failure = waiting.length > 0 ? addonFailure(current, waiting, input) : rolloutFailure(current, phase, mineAll, runningMine.length, wantedAll, input);
    if (failure !== undefined) {
      const webOthers = processes.filter((i) => i.process === WEB_PROCESS && !isMine(i));
      actions.push({ kind: 'release-failed', version: current.version, reason: failure, fallback: fallbackRelease(app, releases, webOthers) });
      return actions;
    }
    if (waiting.length > 0) {
      // Nothing of the release starts before its add-ons' servers do; the release before keeps serving.
      return actions;
    }
    if (phase === 'pending') {
      // Only the release command runs until it has succeeded; the release before keeps serving.
      if (!tasks.some((t) => t.release === app.release)) actions.push({ kind: 'register', release: app.release, wanted: 1, process: RELEASE_PROCESS });
      return actions;
    }
    if (runningEnough) actions.push({ kind: 'release-active', version: current.version });
  }

  for (const [type, wanted] of wantedByType) {
    planType(app, releases, type, wanted, current?.status === 'failed', processes.filter((i) => i.process === type), actions);
  }
  return actions;
}

/** One process type's register and retire steps: new ones first, old ones only while enough new ones run. */
function planType(app: App, releases: ReadonlyMap<number, Release>, type: string, wanted: number, currentFailed: boolean, live: Instance[], actions: ReconcileAction[]): void {
  // An evacuating instance counts like one of an old release: replaced first, then retired.
  const mine = live.filter((i) => i.release === app.release && !i.evacuating);
  const others = live.filter((i) => i.release !== app.release || i.evacuating);
  const runningMine = mine.filter((i) => i.state === 'running');

  if (mine.length < wanted) actions.push({ kind: 'register', release: app.release, wanted, process: type });
  if (mine.length > wanted) {
    const surplus = [...mine]
      .sort((a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) || b.seq - a.seq)
      .slice(0, mine.length - wanted);
    const reason: RetireReason = currentFailed ? 'release_failed' : 'scaled_down';
    for (const i of surplus) actions.push({ kind: 'retire', id: i.id, reason });
  }

  // Instances of other releases give way only while enough of the current one serve.
  const stillServing = Math.min(runningMine.length, wanted);
  let mayRetireRunning = stillServing + others.filter((i) => i.state === 'running').length - wanted;
  const oldestFirst = [...others].sort((a, b) => a.seq - b.seq);
  for (const i of oldestFirst) {
    const failed = i.release !== app.release && releases.get(i.release!)?.status === 'failed';
    const reason: RetireReason = failed ? 'release_failed' : 'replaced';
    if (i.state !== 'running' && (failed || stillServing >= wanted)) actions.push({ kind: 'retire', id: i.id, reason });
    else if (stillServing >= wanted) actions.push({ kind: 'retire', id: i.id, reason });
    else if (i.state === 'running' && mayRetireRunning > 0) {
      // Even a failed release's running instance serves until enough others do.
      actions.push({ kind: 'retire', id: i.id, reason });
      mayRetireRunning--;
    }
  }
}

/** Where a release is with its release command: none to run, still to run (or running), or done. */
export function releasePhase(release: Release | undefined): 'none' | 'pending' | 'succeeded' | 'failed' {
  if (release === undefined || !release.releaseCommand) return 'none';
  return release.releaseTask === undefined ? 'pending' : release.releaseTask.status;
}

/** A release waiting for add-ons fails once the rollout's time is up, naming them. */
function addonFailure(current: Release, waiting: readonly StartingAddon[], input: PlanInput): string | undefined {
  if (input.now - current.createdAt <= input.rolloutTimeoutMs) return undefined;
  const which = waiting.map((a) => `${a.name} (${a.variable}) is still ${a.state}${a.detail === '' ? '' : `: ${a.detail}`}`).join('; ');
  return `addon_not_started: ${Math.round(input.rolloutTimeoutMs / 1000)} s after the release, ${which} (berth addons:info shows why; the machine's hoster runs it)`;
}

function rolloutFailure(current: Release, phase: ReturnType<typeof releasePhase>, mine: Instance[], running: number, wanted: number, input: PlanInput): string | undefined {
  const task = current.releaseTask;
  if (phase === 'failed' && task !== undefined) return `release_command_failed on ${task.machine}: ${task.detail}`;
  const fault = mine.find((i) => i.reason !== null && RELEASE_FAULTS.has(i.reason) && i.failedOn.length > 0);
  if (fault !== undefined) return verdict(fault);
  // A crash may be the machine's (a full disk, a missing tool): conclusive only once it
  // happened on two machines, or on every machine there is.
  const crashMachines = Math.max(1, Math.min(FAILED_MACHINES_FOR_BAD_RELEASE, input.liveMachines ?? FAILED_MACHINES_FOR_BAD_RELEASE));
  const worst = [...mine].sort((a, b) => b.failedOn.length - a.failedOn.length)[0];
  if (worst !== undefined && worst.failedOn.length >= crashMachines) {
    if (worst.reasonDetail !== null) return verdict(worst);
    const crashedOn = new Set(mine.flatMap((i) => i.failedOn));
    return `its instances crashed or failed their health check on ${crashedOn.size} machine${crashedOn.size === 1 ? '' : 's'} (${[...crashedOn].join(', ')})`;
  }
  const taskTimeoutMs = current.releaseTimeoutMs ?? DEFAULT_RELEASE_TIMEOUT_MS;
  if (phase === 'pending') {
    // The hoster that runs it stops it at its timeout; this is for a command no machine took.
    if (input.now - current.createdAt > taskTimeoutMs + input.rolloutTimeoutMs) {
      return `release_command_failed: the release command had not finished ${Math.round((taskTimeoutMs + input.rolloutTimeoutMs) / 1000)} s after the release (no machine ran it to the end)`;
    }
    return undefined;
  }
  // The rollout's time starts once the release command is done.
  const since = Math.max(current.createdAt, task?.at ?? 0);
  if (running < wanted && input.now - since > input.rolloutTimeoutMs) {
    return `only ${running} of ${wanted} instances were running ${Math.round(input.rolloutTimeoutMs / 1000)} s after the release`;
  }
  return undefined;
}

/** "crash_loop on m1: exited with code 3" and the app's last lines, as the hoster reported them. */
function verdict(i: Instance): string {
  const where = i.failedOn.length > 0 ? ` on ${i.failedOn.join(', ')}` : '';
  return i.reasonDetail === null ? `${i.reason}${where}` : `${i.reason}${where}: ${i.reasonDetail}`;
}

/** The release to go back to: the one most still-running instances run, else the newest that served. */
function fallbackRelease(app: App, releases: ReadonlyMap<number, Release>, others: Instance[]): number | null {
  const counts = new Map<number, number>();
  for (const i of others) {
    // Evacuating instances of the failing release itself are no fallback.
    if (i.state === 'running' && i.release !== null && i.release !== app.release) counts.set(i.release, (counts.get(i.release) ?? 0) + 1);
  }
  const byRunning = [...counts.entries()].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0];
  if (byRunning !== undefined) return byRunning[0];
  const served = [...releases.values()]
    .filter((r) => r.version < app.release && (r.status === 'active' || r.status === 'superseded'))
    .sort((a, b) => b.version - a.version)[0];
  return served?.version ?? null;
}

function retireReasonOf(i: Instance): RetireReason {
  const r = i.reason;
  return r === 'scaled_down' || r === 'app_deleted' || r === 'release_failed' ? r : 'replaced';
}
