import type { Logger } from 'pino';
import type { RunStore } from '../store/index.js';

export interface RunSweeperOptions {
  runs: RunStore;
  logger: Logger;
  /** @default 1000 */
  intervalMs: number;
}

export const DEFAULT_RUN_SWEEP_MS = 1000;

/**
 * Ends as lost the runs whose hoster stopped renewing (its machine died): every registry runs
 * one, and the script handles each expiry once. A lost run is not started again elsewhere: a
 * one-off command may have had its effect, so running it twice is the worse failure.
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
      const lost = await this.o.runs.reap();
      for (const id of lost) this.o.logger.warn({ run: id }, `run ${id} lost its machine (its lease expired): marked lost, not started again`);
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
