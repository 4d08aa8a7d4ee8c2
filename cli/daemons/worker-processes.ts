import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { closeOnSignals, stopWhenOrphaned, type Closable } from '../../common/daemon-lifecycle.js';
import { WORKER_SLOT_ENV } from '../../common/daemon-workers.js';

export interface WorkerProcessesOptions {
  logger: Logger;
  /** Worker processes wanted; 1: one process, no primary. */
  workers: number;
  /** How long a drain may take after SIGTERM. */
  graceMs: number;
  /** The primary, which forks and restarts the workers (only when workers > 1). */
  primary: () => Promise<Closable> | Closable;
  /** One serving process: a worker (given its slot) or the only process. */
  serve: (logger: Logger, worker?: { worker: number }) => Promise<Closable>;
}

/**
 * Runs a daemon as one process or as a primary and its workers sharing the ports (the proxy,
 * the balancer): signals stop the primary, which drains its workers; a supervised one stops
 * when `berth up` goes.
 */
export async function runWorkerProcesses(o: WorkerProcessesOptions): Promise<void> {
  const supervised = process.env.BERTH_SUPERVISED === '1';
  if (o.workers > 1 && cluster.isPrimary) {
    closeOnSignals(await o.primary(), { logger: o.logger, graceMs: o.graceMs + 2000 });
    if (supervised) stopWhenOrphaned({ logger: o.logger });
    return;
  }
  if (cluster.isWorker) {
    // The primary stops its workers (a terminal's Ctrl-C reaches the whole group: the
    // primary's drain request is the one that counts, so one signal never looks like two).
    const worker = Number(process.env[WORKER_SLOT_ENV] ?? cluster.worker?.id ?? 0);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);
    await o.serve(o.logger.child({ worker }), { worker });
    return;
  }
  closeOnSignals(await o.serve(o.logger), { logger: o.logger, graceMs: o.graceMs });
  if (supervised) stopWhenOrphaned({ logger: o.logger });
}
