import type { RedisClient } from '../common/redis-connection.js';
import { appendLogs, type LogStream } from '../registry/store/index.js';
import type { RegistryKeys } from '../registry/store/index.js';

/** Queued lines are written this often. */
const FLUSH_EVERY_MS = 200;
/** Most lines queued per app: a runaway app must not grow the hoster's memory while Redis is away. */
const MAX_QUEUED_PER_APP = 10_000;

/**
 * Ships the apps' output (and their builds') to each app's log stream in Redis: lines are
 * queued as they come and written in batches, per app; lines that cannot be written (Redis
 * away) are dropped rather than kept without bound.
 */
export class LogShipper {
  private pending = new Map<string, { instance: string; stream: LogStream; line: string; process?: string }[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: { redis: RedisClient; keys: RegistryKeys }) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), FLUSH_EVERY_MS);
  }

  queue(app: string, instance: string, stream: LogStream, line: string, process?: string): void {
    let list = this.pending.get(app);
    if (list === undefined) this.pending.set(app, (list = []));
    if (list.length < MAX_QUEUED_PER_APP) list.push({ instance, stream, line, ...(process === undefined ? {} : { process }) });
  }

  /** Writes what is queued now. */
  async flush(): Promise<void> {
    const batches = this.pending;
    this.pending = new Map();
    for (const [app, lines] of batches) {
      await appendLogs(this.o.redis, this.o.keys, app, lines).catch(() => undefined);
    }
  }

  /** Stops the timer (the caller flushes last, once nothing logs any more). */
  stop(): void {
    clearInterval(this.timer);
  }
}
