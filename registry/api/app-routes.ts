import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { RedisClient } from '../../common/redis-connection.js';
import { followLogs, recentLogs, type RegistryKeys } from '../store/index.js';
import type { AppOperations } from '../app-operations.js';
import { appSchemas } from './app-schemas.js';
import { grantOf } from './authenticate.js';
import { forbidden, publishRefusal } from './authorize.js';
import { emptyQuery } from './schemas.js';
import { StreamFollowers } from './stream-followers.js';
import { validate } from './validate.js';

export interface AppRoutesOptions {
  operations: AppOperations;
  keys: RegistryKeys;
  redis: RedisClient;
  openBlockingConnection: () => RedisClient;
  maxInstances: number;
  logger: Logger;
}

const LOG_BLOCK_MS = 5000;

/** The app layer's REST API: /v1/apps… */
export function appRoutes(options: AppRoutesOptions): { router: Router; closeAll: () => void } {
  const { operations } = options;
  const s = appSchemas(options.maxInstances);
  const r = Router();
  const followers = new StreamFollowers({ openBlockingConnection: options.openBlockingConnection, logger: options.logger });

  const params = (req: Request) => validate(s.appParams, req.params, 'path').name;
  const noQuery = (req: Request) => validate(emptyQuery, req.query, 'query');
  // Who made a change: the name of the token that made it, never a header the caller asserts.
  const user = (res: Response) => grantOf(res).name;

  // PublishApp
  r.post('/apps', async (req, res) => {
    noQuery(req);
    const body = validate(s.publish, req.body, 'body');
    const why = publishRefusal(grantOf(res), body.name);
    if (why !== undefined) throw forbidden(why);
    const app = await operations.publish(body, user(res));
    res.status(201).location(`/v1/apps/${app.name}`).json(app);
  });

  // ListApps
  r.get('/apps', async (req, res) => {
    noQuery(req);
    const scope = grantOf(res).app;
    const apps = await operations.list();
    // An app's token sees that app only.
    res.json({ apps: scope === null ? apps : apps.filter((a) => a.name === scope) });
  });

  // GetAppDetails
  r.get('/apps/:name', async (req, res) => {
    const name = params(req);
    noQuery(req);
    res.json(await operations.details(name));
  });

  // UpdateApp
  r.put('/apps/:name', async (req, res) => {
    const name = params(req);
    noQuery(req);
    res.json(await operations.update(name, validate(s.update, req.body, 'body'), user(res)));
  });

  // Scale (and prefix stripping)
  r.patch('/apps/:name', async (req, res) => {
    const name = params(req);
    noQuery(req);
    res.json(await operations.scale(name, validate(s.scale, req.body, 'body')));
  });

  // Automatic scaling: the scaler keeps each policed process type's instances within its policy.
  r.put('/apps/:name/autoscale', async (req, res) => {
    const name = params(req);
    noQuery(req);
    res.json(await operations.setAutoscale(name, validate(s.autoscale, req.body, 'body')));
  });

  r.delete('/apps/:name/autoscale', async (req, res) => {
    const name = params(req);
    const query = validate(s.autoscaleQuery, req.query, 'query');
    res.json(await operations.removeAutoscale(name, query.type));
  });

  // The scaler's decisions with their inputs, newest first.
  r.get('/scaler/log', async (req, res) => {
    const query = validate(s.scalerLogQuery, req.query, 'query');
    res.json({ decisions: await operations.scalerLog(query.limit ?? 50, query.app) });
  });

  // DeleteApp: accepted; the reconciler retires the instances, then removes the app.
  r.delete('/apps/:name', async (req, res) => {
    const name = params(req);
    noQuery(req);
    res.status(202).json(await operations.delete(name));
  });

  // ListAppInstances
  r.get('/apps/:name/instances', async (req, res) => {
    const name = params(req);
    noQuery(req);
    res.json({ instances: await operations.instances(name) });
  });

  r.get('/apps/:name/releases', async (req, res) => {
    const name = params(req);
    noQuery(req);
    res.json({ releases: await operations.releases(name) });
  });

  r.post('/apps/:name/rollback', async (req, res) => {
    const name = params(req);
    noQuery(req);
    const body = validate(s.rollback, req.body ?? {}, 'body');
    res.status(201).json(await operations.rollback(name, body.version, user(res)));
  });

  // RestartInstance: one running instance replaced (make before break), not a new release.
  r.post('/apps/:name/instances/:id/restart', async (req, res) => {
    const { name, id } = validate(s.instanceParams, req.params, 'path');
    noQuery(req);
    validate(s.restart, req.body ?? {}, 'body');
    res.status(202).json(await operations.restartInstance(name, id));
  });

  // RestartApp: a rolling restart, as a release with the same code and configuration.
  r.post('/apps/:name/restart', async (req, res) => {
    const name = params(req);
    noQuery(req);
    validate(s.restart, req.body ?? {}, 'body');
    res.status(201).json(await operations.restart(name, user(res)));
  });

  r.get('/apps/:name/config', async (req, res) => {
    const name = params(req);
    noQuery(req);
    res.json({ env: await operations.config(name) });
  });

  r.patch('/apps/:name/config', async (req, res) => {
    const name = params(req);
    noQuery(req);
    const release = await operations.configure(name, validate(s.config, req.body, 'body'), user(res));
    res.status(201).json(release);
  });

  r.get('/apps/:name/logs', async (req: Request, res: Response) => {
    const name = params(req);
    const query = validate(s.logsQuery, req.query, 'query');
    await operations.details(name); // 404 for an unknown app
    const lines = await recentLogs(options.redis, options.keys, name, query.lines ?? 100);
    if (query.follow !== '1' && query.follow !== 'true') {
      res.json({ lines });
      return;
    }
    await streamLogs(res, name, lines.at(-1)?.id ?? '$', lines);
  });

  /** `?follow=1`: newline-delimited JSON, one line object per line, until the client leaves. */
  async function streamLogs(res: Response, app: string, from: string, backlog: unknown[]): Promise<void> {
    let position = from;
    await followers.follow(res, {
      what: `${app}'s log`,
      headers: { 'Content-Type': 'application/x-ndjson; charset=utf-8' },
      start: async () => {
        for (const line of backlog) res.write(`${JSON.stringify(line)}\n`);
        // '$' means "after whatever is there now": pin it to a real id before the first read.
        if (position === '$') position = (await options.redis.xrevrange(options.keys.appLogs(app), '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
      },
      step: async ({ redis }) => {
        for (const line of await followLogs(redis, options.keys, app, position, LOG_BLOCK_MS)) {
          res.write(`${JSON.stringify(line)}\n`);
          position = line.id;
        }
        return false;
      },
    });
  }

  return { router: r, closeAll: () => followers.closeAll() };
}
