import cluster, { type Worker } from 'node:cluster';
import type { Closable } from '../common/daemon-lifecycle.js';
import { idempotentClose } from '../common/daemon-lifecycle.js';
import type { Logger } from '../common/logger.js';
import { ProxyMetrics, type AppMetricsSnapshot } from './proxy-metrics.js';

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
/** A worker that stayed up this long starts its restart backoff afresh. */
const STABLE_AFTER_MS = 30_000;

type Message =
  | { berth: 'totals?'; id: number }
  | { berth: 'snapshot?'; id: number }
  | { berth: 'snapshot'; id: number; snapshot: AppMetricsSnapshot[] }
  | { berth: 'totals'; id: number; snapshots: AppMetricsSnapshot[][] }
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
  const slots = new Map<Worker, { slot: number; startedAt: number }>();
  let nextAsk = 1;
  /** Totals being gathered, by the primary's own id; `replyId` is the asking worker's. */
  const asks = new Map<number, { from: Worker; replyId: number; snapshots: AppMetricsSnapshot[][]; waiting: number; timer: NodeJS.Timeout }>();

  const answer = (id: number) => {
    const ask = asks.get(id);
    if (ask === undefined) return;
    asks.delete(id);
    clearTimeout(ask.timer);
    if (ask.from.isConnected()) ask.from.send({ berth: 'totals', id: ask.replyId, snapshots: ask.snapshots } satisfies Message);
  };

  const fork = (slot: number) => {
    const worker = cluster.fork({ BERTH_PROXY_WORKER: String(slot) });
    slots.set(worker, { slot, startedAt: Date.now() });
    worker.on('message', (message: unknown) => {
      if (!isMessage(message)) return;
      if (message.berth === 'totals?') {
        // Ask every worker (the asker too) for its numbers, under an id of the primary's own.
        const id = nextAsk++;
        const live = [...slots.keys()].filter((w) => w.isConnected());
        const timer = setTimeout(() => answer(id), SNAPSHOT_WAIT_MS);
        asks.set(id, { from: worker, replyId: message.id, snapshots: [], waiting: live.length, timer });
        for (const w of live) w.send({ berth: 'snapshot?', id } satisfies Message);
      } else if (message.berth === 'snapshot') {
        const ask = asks.get(message.id);
        if (ask === undefined) return; // too late: already answered
        ask.snapshots.push(message.snapshot);
        if (--ask.waiting <= 0) answer(message.id);
      }
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const entry = slots.get(worker);
    slots.delete(worker);
    if (entry === undefined || closing) return;
    const inARow = Date.now() - entry.startedAt > STABLE_AFTER_MS ? 0 : (restarts.get(entry.slot) ?? 0);
    const delayMs = Math.min(250 * 2 ** inARow, 5000);
    restarts.set(entry.slot, inARow + 1);
    logger.warn({ worker: entry.slot, code, signal, delayMs }, `proxy worker ${entry.slot} exited (${signal ?? `code ${code}`}): starting another in ${delayMs} ms`);
    setTimeout(() => !closing && fork(entry.slot), delayMs).unref();
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
 * In a worker: /metrics answers with every worker's numbers added up (asked of the primary),
 * or this worker's own when the primary does not answer in time. `drain` is how the primary
 * stops the worker; a primary that is gone (even SIGKILLed) stops it too.
 */
export function joinProxyPrimary(local: ProxyMetrics, daemon: Closable, logger: Logger): { metricsText: () => Promise<string> } {
  let nextId = 1;
  const waiting = new Map<number, (snapshots: AppMetricsSnapshot[][] | undefined) => void>();
  const stop = (why: string) => {
    logger.info(why);
    void daemon.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.berth === 'snapshot?') process.send?.({ berth: 'snapshot', id: message.id, snapshot: local.snapshot() } satisfies Message);
    else if (message.berth === 'totals') waiting.get(message.id)?.(message.snapshots);
    else if (message.berth === 'drain') stop('the proxy primary asks this worker to drain');
  });
  process.on('disconnect', () => stop('the proxy primary is gone: stopping this worker'));

  const metricsText = async () => {
    const id = nextId++;
    const snapshots = await new Promise<AppMetricsSnapshot[][] | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), TOTALS_WAIT_MS);
      waiting.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      process.send?.({ berth: 'totals?', id } satisfies Message);
    });
    waiting.delete(id);
    if (snapshots === undefined) return local.render();
    const total = new ProxyMetrics();
    for (const s of snapshots) total.add(s);
    return total.render();
  };
  return { metricsText };
}
