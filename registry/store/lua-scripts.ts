import { readFileSync } from 'node:fs';
import { BerthError } from '../../common/errors.js';
import { isRedisUnavailable, type RedisClient } from '../../common/redis-connection.js';
import { scriptFailure } from './script-errors.js';

type Names = readonly string[];

/** One Lua script as TypeScript sees it: its KEYS and ARGV by name, in the order the script reads them. */
export interface ScriptDeclaration<K extends Names, A extends Names> {
  /** The source is `scripts/<name>-<keys.length>.lua`. */
  name: string;
  keys: K;
  args: A;
  /** Negative replies that are answers the caller handles (returned), not failures (thrown). */
  answers?: readonly number[];
}

/** A call by name: every declared key and argument, plus any number of trailing values (`rest`). */
export interface ScriptInput<K extends Names, A extends Names> {
  keys: { readonly [key in K[number]]: string };
  args: { readonly [arg in A[number]]: string | number };
  rest?: readonly (string | number)[];
}

export interface Script<K extends Names, A extends Names, R> {
  readonly name: string;
  readonly declaration: ScriptDeclaration<K, A>;
  /** Runs the script; a negative reply (or `{-5, …}`) not among its answers is thrown as its BerthError (script-errors.ts). */
  run(redis: RedisClient, input: ScriptInput<K, A>): Promise<R>;
}

/**
 * Declares a script once; `R` is what it replies on success (and any declared answers).
 * `defineScript<string[]>()({ name: 'claimInstance', keys: [...], args: [...] })`: the positional
 * order of KEYS and ARGV lives only in the declaration.
 */
export function defineScript<R>() {
  return <const K extends Names, const A extends Names>(declaration: ScriptDeclaration<K, A>): Script<K, A, R> => new LuaScript<K, A, R>(declaration);
}

/** Defines each script on `redis` now, so that a missing or misnamed source fails at construction, not at the first call. */
export function defineScripts(redis: RedisClient, scripts: readonly Script<Names, Names, unknown>[]): void {
  for (const script of scripts) (script as LuaScript<Names, Names, unknown>).defineOn(redis);
}

class LuaScript<K extends Names, A extends Names, R> implements Script<K, A, R> {
  readonly name: string;
  private readonly defined = new WeakSet<RedisClient>();
  private lua: string | undefined;

  constructor(readonly declaration: ScriptDeclaration<K, A>) {
    this.name = declaration.name;
  }

  defineOn(redis: RedisClient): void {
    if (this.defined.has(redis)) return;
    this.lua ??= loadScript(this.name, this.declaration.keys.length);
    // ioredis sends EVALSHA and falls back to EVAL when Redis forgot the script (after a restart).
    redis.defineCommand(this.name, { numberOfKeys: this.declaration.keys.length, lua: this.lua });
    this.defined.add(redis);
  }

  async run(redis: RedisClient, input: ScriptInput<K, A>): Promise<R> {
    this.defineOn(redis);
    const { keys, args } = this.declaration;
    const flat: (string | number)[] = [];
    for (const key of keys) flat.push(present(this.name, key, (input.keys as Record<string, string>)[key]));
    for (const arg of args) flat.push(present(this.name, arg, (input.args as Record<string, string | number>)[arg]));
    if (input.rest !== undefined) flat.push(...input.rest);
    const call = (redis as unknown as Record<string, (...values: (string | number)[]) => Promise<unknown>>)[this.name]!;
    const out = await call.apply(redis, flat);
    const code = typeof out === 'number' ? out : Array.isArray(out) && typeof out[0] === 'number' ? (out[0] as number) : 0;
    if (code < 0 && !this.declaration.answers?.includes(code)) {
      throw scriptFailure(code, input.args as Record<string, string | number>, out);
    }
    return out as R;
  }
}

function present<T>(script: string, name: string, value: T | undefined): T {
  if (value === undefined) throw new TypeError(`The ${script} script was called without its "${name}".`);
  return value;
}

/**
 * A line `--- @include "name"` is replaced by `scripts/include/name.lua` (a function several
 * scripts share), as bullmq's `includes/`: includes may include others, each one only once.
 */
const INCLUDE = /^--- @include "([A-Za-z]+)"$/gm;

function loadScript(name: string, keys: number): string {
  const seen = new Set<string>();
  const expand = (lua: string): string =>
    lua.replace(INCLUDE, (_line, included: string) => {
      if (seen.has(included)) return '';
      seen.add(included);
      return expand(readFileSync(new URL(`./scripts/include/${included}.lua`, import.meta.url), 'utf8'));
    });
  return expand(readFileSync(new URL(`./scripts/${name}-${keys}.lua`, import.meta.url), 'utf8'));
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
