import type { Logger } from 'pino';
import type { RunStore } from '../store/index.js';

export interface RunSweeperOptions {
  runs: RunStore;
  logger: Logger;
  /** @default 1000 */
  intervalMs: number;
  /** BERTH_RUN_START_TIMEOUT_MS: a run no hoster claimed this long after it was asked for fails (not_started); 0: never. */
  startTimeoutMs: number;
}

export const DEFAULT_RUN_SWEEP_MS = 1000;
/** Long enough for a hoster to come back from a restart, short enough that nobody waits in vain for long. */
export const DEFAULT_RUN_START_TIMEOUT_MS = 120_000;

/**
 * Ends as lost the runs whose hoster stopped renewing (its machine died): every registry runs
 * one, and the script handles each expiry once. A lost run is not started again elsewhere: a
 * one-off command may have had its effect, so running it twice is the worse failure. Ends as
 * failed the runs that no hoster took within the start timeout.
 */
export class RunSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: RunSweeperOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.sweep());
    }, this.o.intervalMs);
    this.timer.unref();
  }

  async sweep(): Promise<void> {
    if (this.closed) return;
    try {
      const { lost, notStarted } = await this.o.runs.reap(this.o.startTimeoutMs);
      for (const id of lost) this.o.logger.warn({ run: id }, `run ${id} lost its machine (its lease expired): marked lost, not started again`);
      for (const id of notStarted) {
        this.o.logger.warn({ run: id }, `run ${id} was not taken by any hoster within ${this.o.startTimeoutMs} ms (every machine busy, or no hoster running): marked failed (not_started)`);
      }
    } catch (err) {
      this.o.logger.debug({ err: String(err) }, 'run sweep failed: trying again next tick');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
  }
}
