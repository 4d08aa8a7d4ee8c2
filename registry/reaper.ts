import type { Logger } from 'pino';
import { DEFAULT_REAP_BATCH, DEFAULT_SILENT_FRACTION, SILENT_AFTER_MS, type ReapHold, type RegistryStore } from './store/index.js';

export const DEFAULT_REAP_INTERVAL_MS = 1000;

export interface ReaperOptions {
  store: RegistryStore;
  logger: Logger;
  /** @default 1000 */
  intervalMs?: number;
  /** More than this share of the machines holding claims silent at once holds expiries. @default 0.5 */
  silentFraction?: number;
}

/**
 * Returns instances whose lease expired to unclaimed, every `intervalMs`. Every registry
 * process runs one; the Lua script makes concurrent reapers safe. Logs each reaped instance,
 * each hold on expiries (the control plane was away, not the holders) when it starts and ends,
 * and an outage of Redis once when it starts and once when it ends.
 */
export function startReaper(options: ReaperOptions): { close: () => Promise<void> } {
  const { store, logger } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_REAP_INTERVAL_MS;
  const fraction = options.silentFraction ?? DEFAULT_SILENT_FRACTION;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let failing = false;
  let holding = false;

  const tick = async () => {
    try {
      let round;
      do {
        round = await store.reapRound({ limit: DEFAULT_REAP_BATCH, fraction, intervalMs });
        noteHold(round.hold);
        for (const r of round.reaped) {
          logger.warn(
            { instance: r.id, service: r.service, machine: r.machine, epoch: r.epoch, outcome: r.outcome },
            r.outcome === 'unclaimed'
              ? `lease of ${r.service}/${r.id} held by ${r.machine} (epoch ${r.epoch}) expired: returned to unclaimed`
              : `lease of retiring ${r.service}/${r.id} held by ${r.machine} (epoch ${r.epoch}) expired: removed`,
          );
        }
      } while (round.reaped.length === DEFAULT_REAP_BATCH && !stopped);
      if (failing) logger.info('reaper reaches Redis again');
      failing = false;
    } catch (err) {
      if (!failing) logger.warn({ err }, 'reaper cannot reach Redis: will keep trying');
      failing = true;
    }
  };

  const noteHold = (hold: ReapHold) => {
    if (hold.msLeft > 0 && (hold.started || !holding)) {
      const why =
        hold.reason === 'gap'
          ? hold.gapMs < 0
            ? `Redis's clock went back ${-hold.gapMs} ms`
            : `the reaper did not run for ${hold.gapMs} ms (Redis was away, or every registry was)`
          : `${hold.silent} of ${hold.machines} machines holding claims have not been heard from for over ${SILENT_AFTER_MS} ms (the control plane is the likelier fault than the machines)`;
      logger.warn({ holdMs: hold.msLeft, reason: hold.reason, gapMs: hold.gapMs, silent: hold.silent, machines: hold.machines, held: hold.held }, `holding lease expiries for ${hold.msLeft} ms: ${why}`);
    } else if (hold.msLeft === 0 && holding) {
      logger.info('lease expiries resume: the hold on them ended');
    }
    holding = hold.msLeft > 0;
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
