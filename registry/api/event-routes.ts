import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { BerthError } from '../../common/errors.js';
import { waitForReady, type RedisClient } from '../../common/redis-connection.js';
import { StopSignal, STOPPED } from '../../common/stop-signal.js';
import { currentEventId, readEvents, type RegistryKeys } from '../store/index.js';
import { eventsQuery } from './schemas.js';
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
  const open = new Set<() => void>();

  r.get('/events', async (req: Request, res: Response) => {
    const query = validate(eventsQuery, req.query, 'query');
    const lastEventId = req.headers['last-event-id'];
    const from = query.from ?? (typeof lastEventId === 'string' ? validate(eventsQuery, { from: lastEventId }, 'query').from : undefined);
    if (open.size >= options.maxClients) {
      throw new BerthError('too_many_followers');
    }
    const redis = options.openBlockingConnection();
    try {
      await waitForReady(redis, 3000);
    } catch {
      redis.disconnect();
      throw new BerthError('redis_unavailable');
    }
    let closed = false;
    const stopSignal = new StopSignal();
    const stop = () => {
      if (closed) return;
      closed = true;
      stopSignal.stop();
      open.delete(stop);
      clearInterval(keepalive);
      // A blocked XREAD would hold a polite QUIT for up to BLOCK_MS: cut the connection.
      redis.disconnect();
      // An event stream is never followed by another request on its connection, and a
      // client that stopped reading would hold a graceful end (and a draining server) open.
      res.end();
      res.socket?.destroy();
    };
    open.add(stop);
    res.on('close', stop);
    const keepalive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);

    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();

    let position = from ?? (await currentEventId(redis, options.keys));
    res.write(`event: ready\ndata: ${JSON.stringify({ from: position })}\n\n`);
    let failures = 0;
    while (!closed) {
      try {
        const batch = await stopSignal.race(readEvents(redis, options.keys, position, { blockMs: BLOCK_MS, count: 500 }));
        if (batch === STOPPED) break;
        failures = 0;
        if (batch.resync) {
          position = await currentEventId(redis, options.keys);
          res.write(`event: resync\ndata: ${JSON.stringify({ from: position })}\n\n`);
          continue;
        }
        for (const event of batch.events) {
          res.write(`id: ${event.id}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`);
          position = event.id;
        }
      } catch (err) {
        if (closed) break;
        failures++;
        if (failures === 1) options.logger.warn({ err }, 'event follower cannot read from Redis: retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 2000)));
      }
    }
  });

  return {
    router: r,
    closeAll: () => {
      for (const stop of [...open]) stop();
    },
  };
}
