import type { RedisClient } from '../../common/redis-connection.js';
import type { RegistryKeys } from './keys.js';
import { redisCall } from './lua-scripts.js';

export const DEFAULT_LOG_LINES_KEPT = 10_000;
export const MAX_LOG_LINE = 8 * 1024;

/** One line an app instance printed. */
export interface LogLine {
  /** Stream entry id: pass it as `from` to read what follows. */
  id: string;
  /** When the hoster read it (ms since 1970). */
  time: number;
  instance: string;
  /** The app's stdout or stderr, or its build's output (npm's, with berth's "----->" lines). */
  stream: LogStream;
  line: string;
  /** The process type of the instance that printed it; absent: web. */
  process?: string;
}

export type LogStream = 'out' | 'err' | 'build';

/** Appends lines to an app's log, kept to about `keep` lines; over-long lines are cut. */
export async function appendLogs(
  redis: RedisClient,
  keys: RegistryKeys,
  app: string,
  lines: ReadonlyArray<Pick<LogLine, 'instance' | 'stream' | 'line' | 'process'>>,
  keep = DEFAULT_LOG_LINES_KEPT,
): Promise<void> {
  if (lines.length === 0) return;
  await redisCall(async () => {
    const pipeline = redis.pipeline();
    for (const l of lines) {
      const typed = l.process !== undefined && l.process !== 'web' ? ['process', l.process] : [];
      pipeline.xadd(keys.appLogs(app), 'MAXLEN', '~', keep, '*', 'instance', l.instance, 'stream', l.stream, 'line', l.line.slice(0, MAX_LOG_LINE), ...typed);
    }
    const results = (await pipeline.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
  });
}

/** The last `count` lines, oldest first. */
export async function recentLogs(redis: RedisClient, keys: RegistryKeys, app: string, count: number): Promise<LogLine[]> {
  const entries = (await redisCall(() => redis.xrevrange(keys.appLogs(app), '+', '-', 'COUNT', count))) as [string, string[]][];
  return entries.reverse().map(([id, fields]) => logLine(id, fields));
}

/** Lines after `fromId`, waiting up to `blockMs` for some (use a blocking connection). */
export async function followLogs(redis: RedisClient, keys: RegistryKeys, app: string, fromId: string, blockMs: number): Promise<LogLine[]> {
  const reply = (await redis.xread('COUNT', 500, 'BLOCK', blockMs, 'STREAMS', keys.appLogs(app), fromId)) as
    | [string, [string, string[]][]][]
    | null;
  return (reply?.[0]?.[1] ?? []).map(([id, fields]) => logLine(id, fields));
}

function logLine(id: string, fields: string[]): LogLine {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return {
    id,
    time: Number(id.split('-')[0]),
    instance: f.instance ?? '',
    stream: f.stream === 'err' || f.stream === 'build' ? f.stream : 'out',
    line: f.line ?? '',
    ...(f.process ? { process: f.process } : {}),
  };
}
