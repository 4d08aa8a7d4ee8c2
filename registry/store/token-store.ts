import { createHash, randomBytes } from 'node:crypto';
import { BerthError } from '../../common/errors.js';
import type { RedisClient } from '../../common/redis-connection.js';
import type { RegistryKeys } from './keys.js';
import { defineScripts, redisCall } from './lua-scripts.js';
import * as scripts from './script-declarations.js';

/** What a token may do. The admin token(s) of BERTH_TOKEN may do everything. */
export interface TokenGrant {
  name: string;
  /** Only this app (and publishing it), or every app when null. */
  app: string | null;
  /** Reads only: every change is refused with 403 forbidden. */
  readOnly: boolean;
}

export interface TokenRecord extends TokenGrant {
  /** ms since the epoch. */
  createdAt: number;
  /** The name of the token that made it. */
  createdBy: string;
}

/** The name BERTH_TOKEN's tokens go by (in releases and the audit log). */
export const ADMIN_TOKEN_NAME = 'admin';

/** Most audit entries kept (the oldest go first). */
export const AUDIT_MAX_ENTRIES = 10_000;

export interface AuditEntry {
  id: string;
  /** ms since the epoch. */
  at: number;
  token: string;
  method: string;
  path: string;
  app: string | null;
  status: number;
}

const SCRIPTS = [scripts.createToken, scripts.revokeToken];

/**
 * Named API tokens, kept in Redis as their sha256 only: a token is shown once, when it is
 * made, and can then only be checked or revoked. Every registry checks tokens here, so a
 * revoke holds for all of them from the next request on.
 */
export class TokenStore {
  private readonly redis: RedisClient;

  constructor(redis: RedisClient, private readonly keys: RegistryKeys) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis;
  }

  /** Makes a token; returns it (the only time it is seen) with its record. */
  async create(grant: TokenGrant, createdBy: string): Promise<{ token: string; record: TokenRecord }> {
    if (grant.name === ADMIN_TOKEN_NAME) throw new BerthError('token_exists', `"${ADMIN_TOKEN_NAME}" is the name of the BERTH_TOKEN tokens: choose another name.`);
    // berth_ + 40 hex: recognisable in a leaked log, as GitHub's and Stripe's tokens are.
    const token = `berth_${randomBytes(20).toString('hex')}`;
    const record: TokenRecord = { ...grant, createdAt: Date.now(), createdBy };
    await redisCall(() =>
      scripts.createToken.run(this.redis, {
        keys: { tokens: this.keys.tokens, tokenNames: this.keys.tokenNames },
        args: { tokenName: grant.name, digest: digest(token), record: JSON.stringify(record) },
      }),
    );
    return { token, record };
  }

  /** Every named token's record, by name (never the tokens). */
  async list(): Promise<TokenRecord[]> {
    const all = await redisCall(() => this.redis.hvals(this.keys.tokens));
    return all.map((json) => JSON.parse(json) as TokenRecord).sort((a, b) => a.name.localeCompare(b.name));
  }

  async revoke(name: string): Promise<TokenRecord> {
    const record = await redisCall(() =>
      scripts.revokeToken.run(this.redis, { keys: { tokens: this.keys.tokens, tokenNames: this.keys.tokenNames }, args: { tokenName: name } }),
    );
    return JSON.parse(record) as TokenRecord;
  }

  /** The grant of a named token, or undefined when no such token exists (any more). */
  async lookup(token: string): Promise<TokenGrant | undefined> {
    const json = await redisCall(() => this.redis.hget(this.keys.tokens, digest(token)));
    if (json === null) return undefined;
    const { name, app, readOnly } = JSON.parse(json) as TokenRecord;
    return { name, app, readOnly };
  }

  /** Whether a named token with this sha256 (hex) exists: for those that check tokens without holding them (the balancer). */
  async hasDigest(digestHex: string): Promise<boolean> {
    return (await redisCall(() => this.redis.hexists(this.keys.tokens, digestHex))) === 1;
  }

  /** Appends one mutating call to the audit log (capped at AUDIT_MAX_ENTRIES). */
  async audit(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    await redisCall(() =>
      this.redis.xadd(this.keys.audit, 'MAXLEN', '~', String(AUDIT_MAX_ENTRIES), '*', 'entry', JSON.stringify({ ...entry, at: Date.now() })),
    );
  }

  /** The newest `limit` audit entries, newest first. */
  async recentAudit(limit: number): Promise<AuditEntry[]> {
    const rows = await redisCall(() => this.redis.xrevrange(this.keys.audit, '+', '-', 'COUNT', limit));
    return rows.map(([id, fields]) => ({ id, ...(JSON.parse(fields[1] ?? '{}') as Omit<AuditEntry, 'id'>) }));
  }
}

export function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
