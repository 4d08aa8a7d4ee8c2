import cluster, { type Worker } from 'node:cluster';
import type { Closable } from './daemon-lifecycle.js';
import { idempotentClose } from './daemon-lifecycle.js';
import type { Logger } from './logger.js';

/*
 * A daemon as several worker processes sharing its listeners (node:cluster), for the proxy and
 * the balancer: Node runs JavaScript on one thread, so one process tops out at one core, and a
 * crash of one process loses only what that process had in flight. The primary only forks,
 * restarts and stops the workers, hands them connections (cluster's round-robin) or lets each
 * accept for itself (`accept`), and relays their reports to one another; each worker is a
 * whole daemon following the registry itself.
 */

/** The environment variable that tells a worker its slot (1..count), stable across restarts. */
export const WORKER_SLOT_ENV = 'BERTH_WORKER_SLOT';

/** How long the primary waits for the workers' numbers before answering with those it has. */
const SNAPSHOT_WAIT_MS = 1000;
/** A worker that asked for the totals and heard nothing answers with its own numbers. */
const TOTALS_WAIT_MS = 2000;
/** Workers that die before listening, in a row, before the primary gives up. */
const MAX_FAILED_STARTS = 5;
/** A worker that stayed up this long starts its restart backoff afresh. */
const STABLE_AFTER_MS = 30_000;

/** What a worker can be asked for by name (e.g. its metrics snapshot), answered by every worker. */
export type ReportKind = string;

type Message =
  | { berth: 'gather?'; id: number; kind: ReportKind }
  | { berth: 'report?'; id: number; kind: ReportKind }
  | { berth: 'report'; id: number; data: unknown }
  | { berth: 'gathered'; id: number; reports: unknown[] }
  | { berth: 'drain' };

function isMessage(value: unknown): value is Message {
  return typeof value === 'object' && value !== null && typeof (value as { berth?: unknown }).berth === 'string';
}

export interface WorkerPrimaryOptions {
  /** The daemon's name in log lines: "proxy", "balancer". */
  name: string;
  count: number;
  logger: Logger;
  /** How long a worker's drain may take before the primary SIGKILLs it. */
  graceMs: number;
  /**
   * Who accepts connections. 'primary': cluster's round-robin, the primary accepts and hands each
   * connection to the next worker (an even spread; but a connection handed to a worker that is
   * SIGKILLed before it took it stays open in the primary, unanswered, until its client gives up).
   * 'workers': every worker accepts from the one shared socket itself (the kernel's spread,
   * uneven when idle; a worker's death loses only what it had accepted, the rest of the queue
   * goes to the others).
   * @default DEFAULT_ACCEPT
   */
  accept?: 'primary' | 'workers';
}

export const DEFAULT_ACCEPT = 'primary';

/**
 * The primary: forks `count` workers (which run the daemon on the same ports), restarts one
 * that dies with a capped backoff, and on close asks each to drain, then waits for them.
 */
export function startWorkerPrimary({ name, count, logger, graceMs, accept = DEFAULT_ACCEPT }: WorkerPrimaryOptions): Closable {
  // Read by cluster at the first fork; one daemon per process, so one policy per process.
  cluster.schedulingPolicy = accept === 'primary' ? cluster.SCHED_RR : cluster.SCHED_NONE;
  let closing = false;
  const restarts = new Map<number, number>(); // slot -> restarts in a row
  const slots = new Map<Worker, { slot: number; startedAt: number; listened: boolean }>();
  let nextAsk = 1;
  /** Reports being gathered, by the primary's own id; `replyId` is the asking worker's. */
  const asks = new Map<number, { from: Worker; replyId: number; reports: unknown[]; waiting: number; timer: NodeJS.Timeout }>();
  /** Restarts in a row of workers that never listened: a port in use, a bad config. */
  let failedStarts = 0;

  const answer = (id: number) => {
    const ask = asks.get(id);
    if (ask === undefined) return;
    asks.delete(id);
    clearTimeout(ask.timer);
    if (ask.from.isConnected()) ask.from.send({ berth: 'gathered', id: ask.replyId, reports: ask.reports } satisfies Message);
  };

  const fork = (slot: number) => {
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot) });
    slots.set(worker, { slot, startedAt: Date.now(), listened: false });
    worker.on('message', (message: unknown) => {
      if (!isMessage(message)) return;
      if (message.berth === 'gather?') {
        // Ask every worker (the asker too) for its report, under an id of the primary's own.
        const id = nextAsk++;
        const live = [...slots.keys()].filter((w) => w.isConnected());
        const timer = setTimeout(() => answer(id), SNAPSHOT_WAIT_MS);
        asks.set(id, { from: worker, replyId: message.id, reports: [], waiting: live.length, timer });
        for (const w of live) w.send({ berth: 'report?', id, kind: message.kind } satisfies Message);
      } else if (message.berth === 'report') {
        const ask = asks.get(message.id);
        if (ask === undefined) return; // too late: already answered
        ask.reports.push(message.data);
        if (--ask.waiting <= 0) answer(message.id);
      }
    });
    worker.once('listening', () => {
      failedStarts = 0;
      const entry = slots.get(worker);
      if (entry !== undefined) entry.listened = true;
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const entry = slots.get(worker);
    slots.delete(worker);
    if (entry === undefined || closing) return;
    if (!entry.listened && ++failedStarts >= MAX_FAILED_STARTS) {
      // Restarting for ever would hide it: exit non-zero, so that systemd or `berth up` says so.
      logger.error({ failedStarts }, `${name} workers failed to start ${failedStarts} times in a row (see the errors above): exiting`);
      process.exit(1);
    }
    const inARow = Date.now() - entry.startedAt > STABLE_AFTER_MS ? 0 : (restarts.get(entry.slot) ?? 0);
    const delayMs = Math.min(250 * 2 ** inARow, 5000);
    restarts.set(entry.slot, inARow + 1);
    logger.warn({ worker: entry.slot, code, signal, delayMs }, `${name} worker ${entry.slot} exited (${signal ?? `code ${code}`}): starting another in ${delayMs} ms`);
    // Not unref'd: while every worker is down, this timer is what keeps the primary alive.
    setTimeout(() => !closing && fork(entry.slot), delayMs);
  });
  for (let slot = 1; slot <= count; slot++) fork(slot);
  logger.info({ workers: count, accept }, `${name}: ${count} worker processes (connections accepted by ${accept === 'primary' ? 'the primary, round-robin' : 'each worker'})`);

  const close = idempotentClose(async () => {
    closing = true;
    const workers = [...slots.keys()];
    const exited = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of workers) if (w.isConnected()) w.send({ berth: 'drain' } satisfies Message);
    const timer = setTimeout(() => workers.forEach((w) => !w.isDead() && w.process.kill('SIGKILL')), graceMs + 1000);
    await Promise.all(exited);
    clearTimeout(timer);
  });
  return { close };
}

/**
 * In a worker: `gather` asks the primary for every worker's report of a kind (this worker's
 * own included), or resolves undefined when the primary does not answer in time or is gone.
 * `drain` is how the primary stops the worker; a primary that is gone (even SIGKILLed) makes it
 * drain and stop too.
 */
export function joinWorkerPrimary(
  reports: Record<ReportKind, () => unknown>,
  daemon: Closable,
  logger: Logger,
  graceMs: number,
): { gather: (kind: ReportKind) => Promise<unknown[] | undefined> } {
  let nextId = 1;
  const waiting = new Map<number, (reports: unknown[] | undefined) => void>();
  const stop = (why: string) => {
    logger.info(why);
    // Without a primary to SIGKILL it after its grace, a worker bounds its own drain.
    setTimeout(() => {
      logger.error({ graceMs }, 'drain did not finish within the grace period: exiting');
      process.exit(1);
    }, graceMs + 1000).unref();
    void daemon.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  const send = (message: Message) => {
    // The channel may close at any moment (the primary gone): that is handled by 'disconnect'.
    if (process.connected) process.send?.(message, undefined, {}, () => undefined);
  };
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.berth === 'report?') send({ berth: 'report', id: message.id, data: reports[message.kind]?.() });
    else if (message.berth === 'gathered') waiting.get(message.id)?.(message.reports);
    else if (message.berth === 'drain') stop('the primary asks this worker to drain');
  });
  // node:cluster makes a worker exit at once when its channel to the primary closes unasked
  // (the primary died, even by SIGKILL), cutting every request it has in flight. This one
  // drains instead, as on SIGTERM: its requests finish, its answers say Connection: close,
  // and it exits once its connections are closed (IDLE_LINGER_MS, within the grace).
  if (cluster.worker !== undefined) cluster.worker.exitedAfterDisconnect = true;
  process.on('disconnect', () => stop('the primary is gone: draining and stopping this worker'));

  const gather = async (kind: ReportKind) => {
    if (!process.connected) return undefined;
    const id = nextId++;
    const gathered = await new Promise<unknown[] | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), TOTALS_WAIT_MS);
      waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      send({ berth: 'gather?', id, kind });
    });
    waiting.delete(id);
    return gathered;
  };
  return { gather };
}
