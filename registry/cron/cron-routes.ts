import { Router } from 'express';
import { z } from 'zod';
import { BerthError } from '../../common/errors.js';
import { nameSchema } from '../../common/names.js';
import type { CronJob } from '../../sdk/types.js';
import type { AppOperations } from '../app-operations.js';
import { validate } from '../api/validate.js';
import { runCommandSchema, runTimeoutSchema } from '../runs/index.js';
import { DEFAULT_RUN_TIMEOUT_MS, type CronStore, type RunStore, type StoredCron } from '../store/index.js';
import { CronSchedule } from './cron-schedule.js';

export interface CronRoutesOptions {
  crons: CronStore;
  runs: RunStore;
  apps: AppOperations;
}

/** Most cron jobs one app may have. */
export const MAX_CRONS_PER_APP = 50;

const schemas = {
  params: z.strictObject({ name: nameSchema }),
  cronParams: z.strictObject({ name: nameSchema, id: z.string().regex(/^[0-9a-f]{12}$/, 'is a cron job id: 12 hex digits (berth cron:list NAME lists them)') }),
  add: z.strictObject({ schedule: z.string().min(1).max(256), command: runCommandSchema, timeoutMs: runTimeoutSchema.optional() }),
  noQuery: z.strictObject({}),
};

/** Scheduled jobs: /v1/apps/:name/cron… */
export function cronRoutes(options: CronRoutesOptions): Router {
  const r = Router();

  async function jobOf(job: StoredCron): Promise<CronJob> {
    const last = job.lastRun === null ? undefined : await options.runs.get(job.lastRun);
    return {
      id: job.id,
      app: job.app,
      schedule: job.schedule,
      command: job.command,
      timeoutMs: job.timeoutMs,
      createdAt: job.createdAt,
      nextAt: new CronSchedule(job.schedule).next(Date.now()),
      lastRun: last === undefined ? null : { id: last.id, state: last.state, exitCode: last.exitCode, createdAt: last.createdAt, finishedAt: last.finishedAt },
    };
  }

  r.post('/apps/:name/cron', async (req, res) => {
    const { name } = validate(schemas.params, req.params, 'path');
    validate(schemas.noQuery, req.query, 'query');
    const body = validate(schemas.add, req.body, 'body');
    new CronSchedule(body.schedule); // bad_cron, before anything is written
    await options.apps.details(name); // 404 for an unknown app
    if ((await options.crons.list(name)).length >= MAX_CRONS_PER_APP) {
      throw new BerthError('invalid_request', `${name} has ${MAX_CRONS_PER_APP} cron jobs, the most an app may have: remove one first (berth cron:remove).`);
    }
    const job = await options.crons.add({ app: name, schedule: body.schedule, command: body.command, timeoutMs: body.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS });
    res.status(201).json(await jobOf(job));
  });

  r.get('/apps/:name/cron', async (req, res) => {
    const { name } = validate(schemas.params, req.params, 'path');
    validate(schemas.noQuery, req.query, 'query');
    await options.apps.details(name);
    res.json({ jobs: await Promise.all((await options.crons.list(name)).map(jobOf)) });
  });

  r.delete('/apps/:name/cron/:id', async (req, res) => {
    const { name, id } = validate(schemas.cronParams, req.params, 'path');
    validate(schemas.noQuery, req.query, 'query');
    const job = await options.crons.get(id);
    if (job === undefined || job.app !== name || !(await options.crons.remove(name, id))) {
      throw new BerthError('cron_not_found', `${name} has no cron job ${id}: list them with berth cron:list ${name}.`);
    }
    res.json(await jobOf(job));
  });

  return r;
}
