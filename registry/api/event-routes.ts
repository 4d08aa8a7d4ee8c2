import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { RedisClient } from '../../common/redis-connection.js';
import { currentEventId, readEvents, type RegistryKeys } from '../store/index.js';
import { eventsQuery } from './schemas.js';
import { StreamFollowers } from './stream-followers.js';
import { validate } from './validate.js';

export const DEFAULT_MAX_EVENT_CLIENTS = 64;
const BLOCK_MS = 5000;
const KEEPALIVE_MS = 15_000;

export interface EventRoutesOptions {
  keys: RegistryKeys;
  /** Opens a connection for blocking reads; each follower has its own. */
  openBlockingConnection: () => RedisClient;
  maxClients: number;
  logger: Logger;
}

/**
 * `GET /v1/events`: the event stream as server-sent events, from `?from=` or `Last-Event-ID`
 * (or from now). When the client's position is older than the stream keeps, it gets a
 * `resync` event carrying the id to follow from after it reloaded full state.
 */
export function eventRoutes(options: EventRoutesOptions): { router: Router; closeAll: () => void } {
  const r = Router();
  const followers = new StreamFollowers({ openBlockingConnection: options.openBlockingConnection, logger: options.logger, maxClients: options.maxClients });

  r.get('/events', async (req: Request, res: Response) => {
    const query = validate(eventsQuery, req.query, 'query');
    const lastEventId = req.headers['last-event-id'];
    const from = query.from ?? (typeof lastEventId === 'string' ? validate(eventsQuery, { from: lastEventId }, 'query').from : undefined);
    let position = from;
    await followers.follow(res, {
      what: 'event',
      headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' },
      keepalive: { text: ': keep-alive\n\n', everyMs: KEEPALIVE_MS },
      start: async ({ redis }) => {
        position ??= await currentEventId(redis, options.keys);
        res.write(`event: ready\ndata: ${JSON.stringify({ from: position })}\n\n`);
      },
      step: async ({ redis }) => {
        const batch = await readEvents(redis, options.keys, position!, { blockMs: BLOCK_MS, count: 500 });
        if (batch.resync) {
          position = await currentEventId(redis, options.keys);
          res.write(`event: resync\ndata: ${JSON.stringify({ from: position })}\n\n`);
          return false;
        }
        for (const event of batch.events) {
          res.write(`id: ${event.id}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`);
          position = event.id;
        }
        return false;
      },
    });
  });

  return { router: r, closeAll: () => followers.closeAll() };
}
