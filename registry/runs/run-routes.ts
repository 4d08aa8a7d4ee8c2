import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { BerthError } from '../../common/errors.js';
import { nameSchema } from '../../common/names.js';
import type { RedisClient } from '../../common/redis-connection.js';
import type { Run } from '../../sdk/types.js';
import type { AppOperations } from '../app-operations.js';
import { grantOf } from '../api/authenticate.js';
import { StreamFollowers } from '../api/stream-followers.js';
import { validate } from '../api/validate.js';
import { DEFAULT_RUN_TIMEOUT_MS, MAX_RUN_TIMEOUT_MS, runOutputOf, type RunStore } from '../store/index.js';

export interface RunRoutesOptions {
  runs: RunStore;
  apps: AppOperations;
  redis: RedisClient;
  openBlockingConnection: () => RedisClient;
  logger: Logger;
}

/** How long one blocking read of a run's output waits before it looks again. */
const OUTPUT_BLOCK_MS = 5000;

export const runCommandSchema = z
  .array(z.string().min(1).max(4096).regex(/^[^\0]*$/, 'must not contain a NUL character'))
  .min(1, 'give the program to run (berth run NAME -- node jobs/report.js)')
  .max(256)
  .refine((argv) => argv.reduce((n, a) => n + a.length, 0) <= 64 * 1024, 'at most 64 KiB of command in all');

export const runTimeoutSchema = z.number().int().min(1000, 'at least 1000 ms').max(MAX_RUN_TIMEOUT_MS, `at most ${MAX_RUN_TIMEOUT_MS} ms (a day)`);

const schemas = {
  params: z.strictObject({ name: nameSchema }),
  runParams: z.strictObject({ name: nameSchema, id: z.string().regex(/^[0-9a-f]{16}$/, 'is a run id: 16 hex digits (berth runs NAME lists them)') }),
  create: z.strictObject({
    command: runCommandSchema,
    interactive: z.boolean().optional(),
    detached: z.boolean().optional(),
    timeoutMs: runTimeoutSchema.optional(),
  }),
  outputQuery: z.strictObject({ follow: z.enum(['0', '1', 'true', 'false']).optional() }),
  noQuery: z.strictObject({}),
};

/**
 * The release a new run of `app` runs: its current one, or while that one has failed the newest
 * that still serves (a failed deploy leaves the one before active). no_release when there is
 * none (the app's only release failed) or the app is being deleted.
 */
export async function currentRelease(apps: AppOperations, app: string): Promise<number> {
  const details = await apps.details(app);
  if (details.state === 'deleting') throw new BerthError('no_release', `${app} is being deleted: nothing of it runs any more.`);
  if (details.current !== null && details.current.status !== 'failed') return details.current.version;
  const serving = (await apps.releases(app)).find((r) => r.status === 'active');
  if (serving !== undefined) return serving.version;
  throw new BerthError(
    'no_release',
    `${app} has no release to run${details.current ? ` (v${details.current.version} failed: ${details.current.reason ?? 'see berth releases'})` : ''}: publish a working one first (berth publish), then run again.`,
  );
}

/** One-off runs: /v1/apps/:name/runs… (the interactive WebSocket is run-terminal.ts). */
export function runRoutes(options: RunRoutesOptions): { router: Router; closeAll: () => void } {
  const { runs } = options;
  const r = Router();
  const followers = new StreamFollowers({ openBlockingConnection: options.openBlockingConnection, logger: options.logger });

  async function runOf(req: Request): Promise<Run> {
    const { name, id } = validate(schemas.runParams, req.params, 'path');
    const run = await runs.get(id);
    if (run === undefined || run.app !== name) throw new BerthError('run_not_found', `${name} has no run ${id}: list them with berth runs ${name}.`);
    return run;
  }

  r.post('/apps/:name/runs', async (req, res) => {
    const { name } = validate(schemas.params, req.params, 'path');
    validate(schemas.noQuery, req.query, 'query');
    const body = validate(schemas.create, req.body, 'body');
    const release = await currentRelease(options.apps, name);
    const run = await runs.create({
      app: name,
      release,
      command: body.command,
      interactive: body.interactive ?? false,
      // An interactive run ends with its terminal: detaching it would leave a shell nobody can reach.
      detached: (body.detached ?? false) && !(body.interactive ?? false),
      timeoutMs: body.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS,
    });
    res.status(201).location(`/v1/apps/${name}/runs/${run.id}`).json(run);
  });

  r.get('/apps/:name/runs', async (req, res) => {
    const { name } = validate(schemas.params, req.params, 'path');
    validate(schemas.noQuery, req.query, 'query');
    await options.apps.details(name); // 404 for an unknown app
    res.json({ runs: await runs.list(name) });
  });

  r.get('/apps/:name/runs/:id', async (req, res) => {
    validate(schemas.noQuery, req.query, 'query');
    res.json(await runOf(req));
  });

  r.post('/apps/:name/runs/:id/stop', async (req, res) => {
    validate(schemas.noQuery, req.query, 'query');
    const run = await runOf(req);
    await runs.stop(run.id, 'stopped');
    res.json(await runs.get(run.id));
  });

  /**
   * The run's output from its start: JSON, or with ?follow=1 newline-delimited JSON until its
   * end (the last object has `exit`). A client that leaves a run it did not detach stops it.
   */
  r.get('/apps/:name/runs/:id/output', async (req: Request, res: Response) => {
    const query = validate(schemas.outputQuery, req.query, 'query');
    const run = await runOf(req);
    if (query.follow !== '1' && query.follow !== 'true') {
      const output = [];
      for (let from = '0'; ; ) {
        const entries = await runs.readOutput(options.redis, run.id, from, 0);
        // A terminal's bytes are for its WebSocket only (run-terminal.ts).
        output.push(...entries.filter((e) => e.stream !== 'tty').map(runOutputOf));
        if (entries.length === 0) break;
        from = entries.at(-1)!.id;
      }
      res.json({ output });
      return;
    }
    // Only a token that could stop the run stops it by leaving (a read-only one just watches).
    await follow(res, run, !grantOf(res).readOnly);
  });

  async function follow(res: Response, run: Run, stopsOnLeaving: boolean): Promise<void> {
    let position = '0';
    await followers.follow(res, {
      what: `run ${run.id}'s output`,
      headers: { 'Content-Type': 'application/x-ndjson; charset=utf-8' },
      step: async ({ redis }) => {
        const entries = await runs.readOutput(redis, run.id, position, OUTPUT_BLOCK_MS);
        for (const entry of entries) {
          position = entry.id;
          if (entry.stream === 'exit') {
            res.write(`${JSON.stringify(runOutputOf(entry))}\n`);
            return true;
          }
          // A terminal's bytes are for its WebSocket only (run-terminal.ts).
          if (entry.stream !== 'tty') res.write(`${JSON.stringify(runOutputOf(entry))}\n`);
        }
        // A run that ended without an entry (expired with its keys) must not hold the client for ever.
        if (entries.length === 0 && (await runs.get(run.id)) === undefined) {
          res.write(`${JSON.stringify({ exit: { state: 'lost', exitCode: null, signal: null, reason: 'expired' } })}\n`);
          return true;
        }
        return false;
      },
      onLeft: () => {
        // The CLI went away (Ctrl-C, a closed laptop): the run it waited for stops too.
        if (run.detached || !stopsOnLeaving) return;
        void runs.stop(run.id, 'client_gone').catch((err) => options.logger.warn({ err: String(err), run: run.id }, 'could not ask the run to stop (its time limit still ends it)'));
      },
    });
  }

  return { router: r, closeAll: () => followers.closeAll() };
}
