import { KEY_NAME_SLOT, type RegistryKeys } from './keys.js';

/**
 * The keys of one-off runs and cron jobs, under the registry's prefix (and its hash tag), kept
 * beside keys.ts so that runs stay an entity of their own.
 */
export interface RunKeys {
  /** Hash of one run (its command, state, holder, exit). */
  run(id: string): string;
  /** Stream of a run's output (and its end), read by the CLI that waits for it. */
  runOutput(id: string): string;
  /** Stream of an interactive run's input (keys, window sizes), read by its hoster. */
  runInput(id: string): string;
  /** Sorted set of an app's run ids, by creation time (the newest kept). */
  appRuns(app: string): string;
  /** Sorted set of the runs no hoster has claimed yet, by creation time. */
  readonly pendingRuns: string;
  /** Sorted set of claimed runs, by lease expiry (ms, Redis clock). */
  readonly runLeases: string;
  /** The epoch counter shared with instance claims. */
  readonly epoch: string;
  /** Hash of one cron job. */
  cron(id: string): string;
  /** Set of every cron job id. */
  readonly crons: string;
  /** Set of one app's cron job ids. */
  appCrons(app: string): string;
  /** String set (NX) by the scheduler that fired this tick of the job: once per tick across registries. */
  cronTick(id: string, tickMs: number): string;
  readonly formats: { run: string; runOutput: string };
}

export function runKeys(keys: RegistryKeys): RunKeys {
  const p = keys.prefix;
  const run = (id: string) => `${p}run:${id}`;
  const runOutput = (id: string) => `${p}run:${id}:output`;
  return {
    run,
    runOutput,
    runInput: (id) => `${p}run:${id}:input`,
    appRuns: (app) => `${p}app:${app}:runs`,
    pendingRuns: `${p}pending-runs`,
    runLeases: `${p}run-leases`,
    epoch: keys.epoch,
    cron: (id) => `${p}cron:${id}`,
    crons: `${p}crons`,
    appCrons: (app) => `${p}app:${app}:crons`,
    cronTick: (id, tickMs) => `${p}cron:${id}:tick:${tickMs}`,
    formats: { run: run(KEY_NAME_SLOT), runOutput: runOutput(KEY_NAME_SLOT) },
  };
}
