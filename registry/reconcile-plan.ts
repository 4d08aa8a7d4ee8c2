import type { FailureReason, RetireReason } from '../sdk/types.js';
import type { App, Release, Instance } from './store/index.js';

/** What the reconciler does for one app in one round; each action is idempotent. */
export type ReconcileAction =
  | { kind: 'register'; release: number; wanted: number }
  | { kind: 'retire'; id: string; reason: RetireReason }
  | { kind: 'release-active'; version: number }
  | { kind: 'release-failed'; version: number; reason: string; fallback: number | null }
  | { kind: 'remove-app' };

export type { RetireReason };

export interface PlanInput {
  app: App;
  /** Every release of the app, by version. */
  releases: ReadonlyMap<number, Release>;
  /** Every instance of the app's service. */
  instances: readonly Instance[];
  /** Now, on Redis's clock (ms). */
  now: number;
  /** A release that has not got all its instances running this long after it was made has failed. */
  rolloutTimeoutMs: number;
  /** Machines whose hoster sent a heartbeat lately: a crash on each of them is conclusive. @default 2 */
  liveMachines?: number;
}

/** Machines a release may crash on before it, not the machines, is taken to be at fault. */
export const FAILED_MACHINES_FOR_BAD_RELEASE = 2;

/**
 * Failures that are the release's whatever the machine: the same bundle, build and config
 * fail the same way anywhere, so one machine's word is conclusive.
 */
export const RELEASE_FAULTS: ReadonlySet<string> = new Set<FailureReason>(['build_failed', 'bundle_rejected', 'no_start_command', 'invalid_env']);

const STATE_ORDER: Record<string, number> = { unclaimed: 0, crashed: 1, claimed: 2, running: 3 };

/**
 * Decides what brings an app closer to what its user wants. The rules that keep an update
 * free of failed requests: a new release's instances start first; an old instance is retired
 * only while enough new ones run; a retired instance drains (unroutable) before it stops.
 */
export function planApp(input: PlanInput): ReconcileAction[] {
  const { app, releases, now } = input;
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
  const wanted = current === undefined || current.status === 'failed' ? 0 : app.instances;
  // An evacuating instance counts like one of an old release: replaced first, then retired.
  const mine = live.filter((i) => i.release === app.release && !i.evacuating);
  const others = live.filter((i) => i.release !== app.release || i.evacuating);
  const runningMine = mine.filter((i) => i.state === 'running');

  if (current !== undefined && current.status === 'deploying') {
    const failure = rolloutFailure(current, mine, runningMine.length, app.instances, input);
    if (failure !== undefined) {
      actions.push({ kind: 'release-failed', version: current.version, reason: failure, fallback: fallbackRelease(app, releases, others) });
      return actions;
    }
    if (runningMine.length >= app.instances) actions.push({ kind: 'release-active', version: current.version });
  }

  if (mine.length < wanted) actions.push({ kind: 'register', release: app.release, wanted });
  if (mine.length > wanted) {
    const surplus = [...mine]
      .sort((a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) || b.seq - a.seq)
      .slice(0, mine.length - wanted);
    const reason: RetireReason = current?.status === 'failed' ? 'release_failed' : 'scaled_down';
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
  return actions;
}

function rolloutFailure(current: Release, mine: Instance[], running: number, wanted: number, input: PlanInput): string | undefined {
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
  if (running < wanted && input.now - current.createdAt > input.rolloutTimeoutMs) {
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
