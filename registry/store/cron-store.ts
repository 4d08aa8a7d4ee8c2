import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../../common/redis-connection.js';
import type { RegistryKeys } from './keys.js';
import { redisCall } from './lua-scripts.js';
import { runKeys, type RunKeys } from './run-keys.js';
import { RUNS_KEPT } from './run-store.js';
import { addCron, fireCronTick, removeCron } from './run-scripts.js';

/** A cron job as stored (its next tick and last result are the caller's to add). */
export interface StoredCron {
  id: string;
  app: string;
  schedule: string;
  command: string[];
  timeoutMs: number;
  createdAt: number;
  /** The run of the last tick fired, if any. */
  lastRun: string | null;
  lastTickAt: number | null;
}

/** Cron jobs in Redis, and the one-per-tick firing of their runs. */
export class CronStore {
  readonly keys: RunKeys;

  constructor(
    private readonly redis: RedisClient,
    registry: RegistryKeys,
  ) {
    this.keys = runKeys(registry);
  }

  async add(input: { app: string; schedule: string; command: readonly string[]; timeoutMs: number }): Promise<StoredCron> {
    const id = randomBytes(6).toString('hex');
    await addCron.run(this.redis, {
      keys: { cron: this.keys.cron(id), appCrons: this.keys.appCrons(input.app), crons: this.keys.crons },
      args: { id, app: input.app, schedule: input.schedule, command: JSON.stringify(input.command), timeoutMs: input.timeoutMs },
    });
    return (await this.get(id))!;
  }

  async get(id: string): Promise<StoredCron | undefined> {
    const f = await redisCall(() => this.redis.hgetall(this.keys.cron(id)));
    return f.id === undefined ? undefined : cronOf(f);
  }

  /** One app's jobs, or with no app every job of the platform (the scheduler's pass). */
  async list(app?: string): Promise<StoredCron[]> {
    const ids = await redisCall(() => this.redis.smembers(app === undefined ? this.keys.crons : this.keys.appCrons(app)));
    const pipeline = this.redis.pipeline();
    for (const id of ids.sort()) pipeline.hgetall(this.keys.cron(id));
    const replies = (await redisCall(() => pipeline.exec())) ?? [];
    return replies.map(([, f]) => f as Record<string, string>).filter((f) => f.id !== undefined).map(cronOf);
  }

  /** Removes the job; false when the app has no such job. */
  async remove(app: string, id: string): Promise<boolean> {
    const reply = await removeCron.run(this.redis, { keys: { cron: this.keys.cron(id), appCrons: this.keys.appCrons(app), crons: this.keys.crons }, args: { id, app } });
    return reply === 1;
  }

  /** Fires the job's tick at `tickMs` as a detached run of `release`, unless another scheduler did: the run's id, or undefined. */
  async fire(job: StoredCron, tickMs: number, release: number, tickTtlMs: number): Promise<string | undefined> {
    const runId = randomBytes(8).toString('hex');
    const fired = await fireCronTick.run(this.redis, {
      keys: {
        tick: this.keys.cronTick(job.id, tickMs),
        cron: this.keys.cron(job.id),
        run: this.keys.run(runId),
        appRuns: this.keys.appRuns(job.app),
        pendingRuns: this.keys.pendingRuns,
      },
      args: { tickMs, tickTtlMs, runId, app: job.app, release, command: JSON.stringify(job.command), timeoutMs: job.timeoutMs, cronId: job.id, keep: RUNS_KEPT },
    });
    return fired === 1 ? runId : undefined;
  }
}

function cronOf(f: Record<string, string>): StoredCron {
  return {
    id: f.id!,
    app: f.app ?? '',
    schedule: f.schedule ?? '',
    command: JSON.parse(f.command ?? '[]') as string[],
    timeoutMs: Number(f.timeoutMs),
    createdAt: Number(f.createdAt),
    lastRun: f.lastRun || null,
    lastTickAt: f.lastTickAt ? Number(f.lastTickAt) : null,
  };
}
