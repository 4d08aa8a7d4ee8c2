import { readFileSync } from 'node:fs';
import { BerthError } from '../../common/errors.js';
import { isRedisUnavailable, type RedisClient } from '../../common/redis-connection.js';

const sources = new Map<string, string>();

/** A line `--- @include "name"` is replaced by `scripts/include/name.lua` (a function several scripts share). */
const INCLUDE = /^--- @include "([A-Za-z]+)"$/gm;

function loadScript(name: string, keys: number): string {
  const file = `${name}-${keys}.lua`;
  let lua = sources.get(file);
  if (lua === undefined) {
    lua = readFileSync(new URL(`./scripts/${file}`, import.meta.url), 'utf8').replace(INCLUDE, (_line, included: string) =>
      readFileSync(new URL(`./scripts/include/${included}.lua`, import.meta.url), 'utf8'),
    );
    sources.set(file, lua);
  }
  return lua;
}

/**
 * Defines each script (`registry/scripts/<name>-<keys>.lua`) as an ioredis command. ioredis
 * sends EVALSHA and falls back to EVAL when Redis forgot the script (after a restart).
 * Defining again on a shared client is harmless: same name, same source.
 */
export function defineScripts(redis: RedisClient, scripts: Record<string, number>): void {
  for (const [name, numberOfKeys] of Object.entries(scripts)) {
    redis.defineCommand(name, { numberOfKeys, lua: loadScript(name, numberOfKeys) });
  }
}

/** Runs a Redis call, turning "Redis is away or too slow" into the typed redis_unavailable. */
export async function redisCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asBerthError(err);
  }
}

export function asBerthError(err: unknown): unknown {
  if (err instanceof BerthError) return err;
  if (isRedisUnavailable(err)) return new BerthError('redis_unavailable', undefined, { cause: err });
  return err;
}
