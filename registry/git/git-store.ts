import { randomBytes } from 'node:crypto';
import { BerthError } from '../../common/errors.js';
import type { RedisClient } from '../../common/redis-connection.js';
import { holdLeadership, redisCall, SCRIPT_FAILURE, setGitBranch, type RegistryKeys } from '../store/index.js';

/** The push lock is a lease of this length, renewed a third of the way through while a push deploys. */
export const DEFAULT_PUSH_LEASE_MS = 30_000;

/** A push's hold on its app: pushes of one app take turns, whichever registry serves them. */
export interface PushLock {
  /** Gives the lock up (idempotent); the lease would expire by itself otherwise. */
  release(): Promise<void>;
}

/**
 * What the git remotes keep in Redis: each app's deploy branch (a field of the app's hash, so
 * that deleting the app forgets it) and the lease of the push deploying it now. The lease is
 * the leadership script's: a holder id with an expiry, renewed by its holder only.
 */
export class GitStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RegistryKeys,
    private readonly leaseMs = DEFAULT_PUSH_LEASE_MS,
  ) {}

  /** The branch set for `app`, or null for main/master. */
  async branch(app: string): Promise<string | null> {
    const value = await redisCall(() => this.redis.hget(this.keys.app(app), 'gitBranch'));
    return value === null || value === '' ? null : value;
  }

  /** Sets the deploy branch (null: main/master again); app_not_found when there is no such app. */
  async setBranch(app: string, branch: string | null): Promise<void> {
    const out = await redisCall(() => setGitBranch.run(this.redis, { keys: { app: this.keys.app(app) }, args: { branch: branch ?? '' } }));
    if (out === SCRIPT_FAILURE.appNotFound) throw new BerthError('app_not_found', `No app ${app}: push to it once (it is made on the first push), or publish it with berth publish.`);
  }

  /** Takes the push lock of `app`, or returns undefined when another push holds it. Renews it until released. */
  async tryLock(app: string, onLost: () => void): Promise<PushLock | undefined> {
    const key = this.keys.gitPushLock(app);
    const holder = randomBytes(12).toString('hex');
    if ((await redisCall(() => hold(this.redis, key, holder, this.leaseMs, 'hold'))) !== 1) return undefined;
    let released = false;
    const timer = setInterval(() => {
      redisCall(() => hold(this.redis, key, holder, this.leaseMs, 'hold')).then(
        (held) => {
          if (held !== 1 && !released) onLost();
        },
        // Redis away for a moment: the next renewal tries again; the lease outlasts two misses.
        () => undefined,
      );
    }, Math.floor(this.leaseMs / 3));
    timer.unref();
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await redisCall(() => hold(this.redis, key, holder, this.leaseMs, 'drop')).catch(() => undefined);
      },
    };
  }
}

function hold(redis: RedisClient, lease: string, holder: string, leaseMs: number, mode: 'hold' | 'drop'): Promise<number> {
  return holdLeadership.run(redis, { keys: { lease }, args: { holder, leaseMs, mode } });
}
