import { createHash, randomBytes } from 'node:crypto';
import type { RedisClient } from '../../common/redis-connection.js';
import { redisCall } from '../store/index.js';
import type { TokenGrant } from '../store/index.js';
import type { DashboardKeys } from './dashboard-keys.js';

/** How long a dashboard session lasts from sign-in. @default 8 hours */
export const DEFAULT_SESSION_TTL_MS = 8 * 3600_000;

/** What a session remembers: the token's grant and digest (never the token), and its CSRF token. */
export interface DashboardSession extends TokenGrant {
  /** sha256 (hex) of the token signed in with: checked on every request, so a revoke holds. */
  tokenDigest: string;
  /** Sent back by the page in X-Berth-CSRF on every call that changes something. */
  csrf: string;
  createdAt: number;
}

/**
 * Dashboard sessions in Redis. The cookie holds a random id; Redis holds the session under
 * the id's sha256, so that a copy of Redis hands out no live cookie. Each is one SET with an
 * expiry: nothing to race.
 */
export class SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: DashboardKeys,
    private readonly ttlMs: number,
  ) {}

  get ttlSeconds(): number {
    return Math.floor(this.ttlMs / 1000);
  }

  /** Opens a session; returns the id for the cookie. */
  async open(grant: TokenGrant, tokenDigest: string): Promise<{ id: string; session: DashboardSession }> {
    const id = randomBytes(32).toString('base64url');
    const session: DashboardSession = { name: grant.name, app: grant.app, readOnly: grant.readOnly, tokenDigest, csrf: randomBytes(24).toString('base64url'), createdAt: Date.now() };
    await redisCall(() => this.redis.set(this.keys.session(digest(id)), JSON.stringify(session), 'PX', this.ttlMs));
    return { id, session };
  }

  async find(id: string): Promise<DashboardSession | undefined> {
    const json = await redisCall(() => this.redis.get(this.keys.session(digest(id))));
    if (json === null) return undefined;
    try {
      return JSON.parse(json) as DashboardSession;
    } catch {
      return undefined;
    }
  }

  async close(id: string): Promise<void> {
    await redisCall(() => this.redis.del(this.keys.session(digest(id))));
  }
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
