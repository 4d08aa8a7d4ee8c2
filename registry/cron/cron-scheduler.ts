import type { Logger } from 'pino';
import { isBerthError } from '../../common/errors.js';
import type { AppOperations } from '../app-operations.js';
import { currentRelease } from '../runs/index.js';
import type { CronStore, StoredCron } from '../store/index.js';
import { CronSchedule } from './cron-schedule.js';

export interface CronSchedulerOptions {
  crons: CronStore;
  apps: AppOperations;
  logger: Logger;
  /** A pass over every job this often. @default 250 */
  passMs: number;
  /**
   * A tick up to this long ago still fires (a slow pass, a registry restarting); an older one
   * missed while no registry ran is skipped. @default 10000
   */
  lateMs: number;
}

export const DEFAULT_CRON_PASS_MS = 250;
export const DEFAULT_CRON_LATE_MS = 10_000;

/**
 * Fires cron jobs' ticks. Every registry runs one; none keeps a timer per job: each pass reads
 * every job, works out its ticks in the last `lateMs` (never before it was added) and fires each
 * with one script that sets the tick's key NX and creates its run, so a tick fires exactly once
 * across the cluster, whichever registry sees it first. Ticks older than `lateMs` are skipped,
 * not run late: after an outage of every registry a job runs at its next tick, not in a burst.
 */
export class CronScheduler {
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly schedules = new Map<string, CronSchedule>();
  /** The last tick each job was said to skip (said once, not at every pass). */
  private readonly warned = new Map<string, number>();

  constructor(private readonly o: CronSchedulerOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.pass = this.pass.then(() => this.runPass());
    }, this.o.passMs);
  }

  /** One pass: fires the ticks due. */
  async runPass(now = Date.now()): Promise<void> {
    if (this.closed) return;
    let jobs: StoredCron[];
    try {
      jobs = await this.o.crons.list();
    } catch (err) {
      this.o.logger.debug({ err: String(err) }, 'cron pass could not read the jobs: trying again next pass');
      return;
    }
    for (const job of jobs) {
      if (this.closed) return;
      await this.fireDue(job, now).catch((err) => this.o.logger.warn({ err: String(err), cron: job.id, app: job.app }, `cron job ${job.id} of ${job.app}: could not fire its tick (the next pass tries again)`));
    }
  }

  private async fireDue(job: StoredCron, now: number): Promise<void> {
    const schedule = this.scheduleOf(job);
    const from = Math.max(now - this.o.lateMs, job.createdAt, job.lastTickAt ?? 0);
    const ticks = schedule.ticksBetween(from, now);
    if (ticks.length === 0) return;
    let release: number;
    try {
      release = await currentRelease(this.o.apps, job.app);
    } catch (err) {
      if (isBerthError(err) && err.code === 'app_not_found') {
        // The app was deleted: its jobs go with it.
        if (await this.o.crons.remove(job.app, job.id)) this.o.logger.info({ cron: job.id, app: job.app }, `cron job ${job.id} removed: its app ${job.app} is gone`);
        return;
      }
      const last = ticks.at(-1)!;
      if (this.warned.get(job.id) !== last) {
        this.warned.set(job.id, last);
        this.o.logger.warn({ err: String(err), cron: job.id, app: job.app }, `cron job ${job.id} of ${job.app} is due but the app has nothing to run: tick skipped`);
      }
      return;
    }
    for (const tick of ticks) {
      const run = await this.o.crons.fire(job, tick, release, this.o.lateMs * 2 + 60_000);
      if (run !== undefined) this.o.logger.info({ cron: job.id, app: job.app, tick, run }, `cron job ${job.id} of ${job.app} fired its tick of ${new Date(tick).toISOString()} as run ${run}`);
    }
  }

  private scheduleOf(job: StoredCron): CronSchedule {
    let schedule = this.schedules.get(job.id);
    if (schedule?.expression !== job.schedule) {
      schedule = new CronSchedule(job.schedule);
      this.schedules.set(job.id, schedule);
    }
    return schedule;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.pass;
  }
}
