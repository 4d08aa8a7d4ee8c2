import cluster, { type Worker } from 'node:cluster';
import type { Closable } from '../common/daemon-lifecycle.js';
import { idempotentClose } from '../common/daemon-lifecycle.js';
import type { Logger } from '../common/logger.js';
import { RequestMetrics, type AppMetricsSnapshot } from '../forward/index.js';

/*
 * One proxy process per core: Node runs JavaScript on one thread, so a single proxy process
 * tops out at one core however many the machine has. The primary only forks, restarts and
 * stops the workers, hands them connections (cluster's round-robin) and adds up their
 * metrics; each worker is a whole proxy with its own route table following the registry.
 */

/** How long the primary waits for the workers' numbers before answering with those it has. */
const SNAPSHOT_WAIT_MS = 1000;
/** A worker that asked for the totals and heard nothing answers with its own numbers. */
const TOTALS_WAIT_MS = 2000;
/** Workers that die before listening, in a row, before the primary gives up. */
const MAX_FAILED_STARTS = 5;
/** A worker that stayed up this long starts its restart backoff afresh. */
const STABLE_AFTER_MS = 30_000;

/** What a worker can be asked for: its metrics snapshot, or its /_berth/routes view. */
export type ReportKind = 'metrics' | 'routes';

type Message =
  | { berth: 'gather?'; id: number; kind: ReportKind }
  | { berth: 'report?'; id: number; kind: ReportKind }
  | { berth: 'report'; id: number; data: unknown }
  | { berth: 'gathered'; id: number; reports: unknown[] }
  | { berth: 'drain' };

function isMessage(value: unknown): value is Message {
  return typeof value === 'object' && value !== null && typeof (value as { berth?: unknown }).berth === 'string';
}

/**
 * The primary: forks `count` workers (which run `startProxy` on the same port), restarts one
 * that dies with a capped backoff, and on close asks each to drain, then waits for them.
 */
export function startProxyPrimary(count: number, logger: Logger, graceMs: number): Closable {
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
    const worker = cluster.fork({ BERTH_PROXY_WORKER: String(slot) });
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
      logger.error({ failedStarts }, `proxy workers failed to start ${failedStarts} times in a row (see the errors above): exiting`);
      process.exit(1);
    }
    const inARow = Date.now() - entry.startedAt > STABLE_AFTER_MS ? 0 : (restarts.get(entry.slot) ?? 0);
    const delayMs = Math.min(250 * 2 ** inARow, 5000);
    restarts.set(entry.slot, inARow + 1);
    logger.warn({ worker: entry.slot, code, signal, delayMs }, `proxy worker ${entry.slot} exited (${signal ?? `code ${code}`}): starting another in ${delayMs} ms`);
    // Not unref'd: while every worker is down, this timer is what keeps the primary alive.
    setTimeout(() => !closing && fork(entry.slot), delayMs);
  });
  for (let slot = 1; slot <= count; slot++) fork(slot);
  logger.info({ workers: count }, `proxy: ${count} workers (one per CPU unless --workers says otherwise)`);

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
export function joinProxyPrimary(
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
    if (message.berth === 'report?') send({ berth: 'report', id: message.id, data: reports[message.kind]() });
    else if (message.berth === 'gathered') waiting.get(message.id)?.(message.reports);
    else if (message.berth === 'drain') stop('the proxy primary asks this worker to drain');
  });
  // node:cluster makes a worker exit at once when its channel to the primary closes unasked
  // (the primary died, even by SIGKILL), cutting every request it has in flight. This one
  // drains instead, as on SIGTERM: its requests finish, its answers say Connection: close,
  // and it exits once its connections are closed (IDLE_LINGER_MS, within the grace).
  if (cluster.worker !== undefined) cluster.worker.exitedAfterDisconnect = true;
  process.on('disconnect', () => stop('the proxy primary is gone: draining and stopping this worker'));

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

/** /metrics of a worker: every worker's numbers added up, or its own when they cannot be had. */
export async function totalMetricsText(local: RequestMetrics, gather: (kind: ReportKind) => Promise<unknown[] | undefined>): Promise<string> {
  const snapshots = (await gather('metrics')) as AppMetricsSnapshot[][] | undefined;
  if (snapshots === undefined) return local.render();
  const total = new RequestMetrics();
  for (const s of snapshots) total.add(s);
  return total.render();
}
