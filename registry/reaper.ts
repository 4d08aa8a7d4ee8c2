import type { Logger } from 'pino';
import { DEFAULT_REAP_BATCH, type RegistryStore } from './registry-store.js';

export const DEFAULT_REAP_INTERVAL_MS = 1000;

export interface ReaperOptions {
  store: RegistryStore;
  logger: Logger;
  /** @default 1000 */
  intervalMs?: number;
}

/**
 * Returns instances whose lease expired to unclaimed, every `intervalMs`. Every registry
 * process runs one; the Lua script makes concurrent reapers safe. Logs each reaped instance,
 * and an outage of Redis once when it starts and once when it ends.
 */
export function startReaper(options: ReaperOptions): { close: () => Promise<void> } {
  const { store, logger } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_REAP_INTERVAL_MS;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let failing = false;

  const tick = async () => {
    try {
      let batch;
      do {
        batch = await store.reapExpired(DEFAULT_REAP_BATCH);
        for (const r of batch) {
          logger.warn(
            { instance: r.id, service: r.service, machine: r.machine, epoch: r.epoch, outcome: r.outcome },
            r.outcome === 'unclaimed'
              ? `lease of ${r.service}/${r.id} held by ${r.machine} (epoch ${r.epoch}) expired: returned to unclaimed`
              : `lease of retiring ${r.service}/${r.id} held by ${r.machine} (epoch ${r.epoch}) expired: removed`,
          );
        }
      } while (batch.length === DEFAULT_REAP_BATCH && !stopped);
      if (failing) logger.info('reaper reaches Redis again');
      failing = false;
    } catch (err) {
      if (!failing) logger.warn({ err }, 'reaper cannot reach Redis: will keep trying');
      failing = true;
    }
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().finally(schedule);
    }, intervalMs);
  };
  schedule();

  return {
    close: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
