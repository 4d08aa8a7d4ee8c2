import { Cron } from 'croner';
import { BerthError } from '../../common/errors.js';

/** Most ticks one scheduler pass fires for one job (a schedule of every second, after a slow pass). */
const MAX_TICKS_PER_PASS = 20;

/**
 * A cron expression read by croner (5 fields, or 6 with seconds first; `@hourly` and the like),
 * in UTC so that every registry agrees on the ticks whatever its machine's zone. Throws
 * bad_cron with croner's own words when it does not parse.
 */
export class CronSchedule {
  private readonly cron: Cron;

  constructor(readonly expression: string) {
    try {
      this.cron = new Cron(expression, { paused: true, timezone: 'UTC' });
    } catch (err) {
      const words = (err instanceof Error ? err.message : String(err)).replace(/^CronPattern: /, '');
      throw new BerthError('bad_cron', `The schedule ${JSON.stringify(expression)} does not parse: ${words}. Write five fields (minute hour day month weekday, e.g. "*/5 * * * *"), or six with seconds first.`);
    }
    if (this.cron.nextRun() === null) throw new BerthError('bad_cron', `The schedule ${JSON.stringify(expression)} never fires: give one with a tick in the future.`);
  }

  /** The next tick after `after` (ms), or null when there is none. */
  next(after: number): number | null {
    return this.cron.nextRun(new Date(after))?.getTime() ?? null;
  }

  /** The ticks in (from, to], oldest first. */
  ticksBetween(from: number, to: number): number[] {
    const ticks: number[] = [];
    let at = from;
    while (ticks.length < MAX_TICKS_PER_PASS) {
      const next = this.next(at);
      if (next === null || next > to) break;
      ticks.push(next);
      at = next;
    }
    return ticks;
  }
}
