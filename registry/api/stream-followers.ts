import type { Response } from 'express';
import type { Logger } from 'pino';
import { BerthError } from '../../common/errors.js';
import { waitForReady, type RedisClient } from '../../common/redis-connection.js';
import { StopSignal, STOPPED } from '../../common/stop-signal.js';

/** One client following a Redis stream over a long HTTP response (events, logs, a run's output). */
export interface Following {
  /** Its own connection for blocking reads: a blocked XREAD holds the connection it runs on. */
  readonly redis: RedisClient;
  /** The client left or the server closes: stop reading, write nothing more. */
  readonly closed: boolean;
  /** `read`'s result, or STOPPED as soon as the client leaves (the read is left to settle alone). */
  race<T>(read: Promise<T>): Promise<T | typeof STOPPED>;
}

export interface FollowSpec {
  /** What is followed, in the log line of a failed read. */
  what: string;
  /** Response headers, written before `start`. */
  headers: Record<string, string>;
  /** Written once the headers are out (a backlog, a `ready` event). */
  start?: (f: Following) => Promise<void>;
  /** One blocking read and what it writes; resolves true when the stream has ended for this client. */
  step: (f: Following) => Promise<boolean>;
  /** Keeps proxies from closing an idle response: this text every `everyMs`. */
  keepalive?: { text: string; everyMs: number };
  /** The client left (or the server closes) before `step` said the stream ended. */
  onLeft?: () => void;
}

/**
 * Followers of one route: each gets its own blocking connection, a read loop that retries with
 * backoff while Redis is away, and an end when the client leaves; `closeAll` ends them all
 * (the server is closing).
 */
export class StreamFollowers {
  private readonly open = new Set<() => void>();

  constructor(private readonly o: { openBlockingConnection: () => RedisClient; logger: Logger; maxClients?: number }) {}

  get size(): number {
    return this.open.size;
  }

  closeAll(): void {
    for (const stop of [...this.open]) stop();
  }

  async follow(res: Response, spec: FollowSpec): Promise<void> {
    if (this.o.maxClients !== undefined && this.open.size >= this.o.maxClients) throw new BerthError('too_many_followers');
    const redis = this.o.openBlockingConnection();
    try {
      await waitForReady(redis, 3000);
    } catch {
      redis.disconnect();
      throw new BerthError('redis_unavailable');
    }
    const stopSignal = new StopSignal();
    let closed = false;
    let ended = false;
    let keepalive: NodeJS.Timeout | undefined;
    const following: Following = {
      redis,
      get closed() {
        return closed;
      },
      race: (read) => stopSignal.race(read),
    };
    const stop = () => {
      if (closed) return;
      closed = true;
      stopSignal.stop();
      this.open.delete(stop);
      clearInterval(keepalive);
      // A blocked XREAD would hold a polite QUIT for up to its block time: cut the connection.
      redis.disconnect();
      // A followed response is never followed by another request on its connection, and a
      // client that stopped reading would hold a graceful end (and a draining server) open.
      res.end();
      res.socket?.destroy();
      if (!ended) spec.onLeft?.();
    };
    this.open.add(stop);
    res.on('close', stop);
    res.status(200);
    for (const [name, value] of Object.entries(spec.headers)) res.setHeader(name, value);
    res.setHeader('Cache-Control', 'no-store');
    res.flushHeaders();
    if (spec.keepalive) {
      const { text, everyMs } = spec.keepalive;
      keepalive = setInterval(() => res.write(text), everyMs);
    }
    let failures = 0;
    try {
      await spec.start?.(following);
      while (!closed) {
        try {
          const done = await stopSignal.race(spec.step(following));
          if (done === STOPPED) break;
          failures = 0;
          if (done) {
            ended = true;
            break;
          }
        } catch (err) {
          if (closed) break;
          failures++;
          if (failures === 1) this.o.logger.warn({ err: String(err) }, `${spec.what} follower cannot read from Redis: retrying`);
          await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 2000)));
        }
      }
    } finally {
      stop();
    }
  }
}
