import type { RedisClient } from '../../common/redis-connection.js';
import type { EventKind, RegistryEvent } from '../../sdk/types.js';
import type { RegistryKeys } from './keys.js';

/** An event's shape is the SDK's (sdk/types.ts is the one source of the wire types). */
export type { RegistryEvent };

export interface EventBatch {
  events: RegistryEvent[];
  /**
   * True when events after the caller's id may have been lost (trimmed from the stream, or
   * Redis was wiped): reload full state, then follow from `currentEventId()` taken before it.
   */
  resync: boolean;
}

/** The id a fresh follower starts after: the newest event now, or '0-0' when there is none. */
export async function currentEventId(redis: RedisClient, keys: RegistryKeys): Promise<string> {
  const last = (await redis.xrevrange(keys.events, '+', '-', 'COUNT', 1)) as [string, string[]][];
  return last[0]?.[0] ?? '0-0';
}

/**
 * Reads the events after `fromId` (an id the caller saw, or '0-0'), waiting up to `blockMs`
 * when there are none. Use a connection made for blocking reads. Detects a gap after the
 * read (conservatively: a trim after the read only causes a needless resync, never a
 * missed one).
 */
export async function readEvents(
  redis: RedisClient,
  keys: RegistryKeys,
  fromId: string,
  options: { blockMs: number; count: number },
): Promise<EventBatch> {
  const reply = (await redis.xread('COUNT', options.count, 'BLOCK', options.blockMs, 'STREAMS', keys.events, fromId)) as
    | [string, [string, string[]][]][]
    | null;
  const entries = reply?.[0]?.[1] ?? [];
  const events = entries.map(([id, fields]) => eventFromFields(id, fields));
  return { events, resync: await hasGapAfter(redis, keys, fromId) };
}

/**
 * The entry the follower saw last is gone: the stream was trimmed past it (trimming removes
 * the oldest first, so while it exists nothing after it was lost) or Redis lost its data.
 */
async function hasGapAfter(redis: RedisClient, keys: RegistryKeys, fromId: string): Promise<boolean> {
  if (fromId === '0-0' || fromId === '0') return false;
  const seen = (await redis.xrange(keys.events, fromId, fromId, 'COUNT', 1)) as unknown[];
  return seen.length === 0;
}

/** Orders two stream ids ("ms-seq"). */
export function compareEventIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm);
  if (d !== 0n) return d < 0n ? -1 : 1;
  const e = BigInt(as) - BigInt(bs);
  return e === 0n ? 0 : e < 0n ? -1 : 1;
}

function eventFromFields(id: string, fields: string[]): RegistryEvent {
  // The scripts only append EVENT_KINDS (test/unit/wire-vocabulary.test.ts checks them).
  const event: RegistryEvent = { id, kind: '' as EventKind };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name === 'epoch' || name === 'release') event[name] = Number(value);
    else if (name === 'kind') event.kind = value as EventKind;
    else if (name === 'instance' || name === 'service' || name === 'machine' || name === 'reason' || name === 'domain') {
      if (value !== '') event[name] = value;
    }
  }
  return event;
}
