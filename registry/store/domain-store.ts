import { BerthError } from '../../common/errors.js';
import type { RedisClient } from '../../common/redis-connection.js';
import { DEFAULT_KEY_PREFIX, registryKeys, type RegistryKeys } from './keys.js';
import { defineScripts, redisCall } from './lua-scripts.js';
import { DEFAULT_EVENTS_MAX_LENGTH } from './registry-store.js';
import * as scripts from './script-declarations.js';

/** A domain's record in Redis: the app it belongs to and the prefix inside it. */
export interface DomainRecord {
  domain: string;
  app: string;
  path: string;
  createdAt: number;
}

const SCRIPTS = [scripts.addDomain, scripts.removeDomain];

/**
 * Apps' own domains in Redis: one hash of domain → record, so that a domain has one owner
 * (checked and written in one script), and a set per app. Names come in checked and in their
 * stored form (common/domain-names.ts).
 */
export class DomainStore {
  readonly keys: RegistryKeys;
  private readonly redis: RedisClient;
  private readonly maxLen: number;

  constructor(redis: RedisClient, options: { keyPrefix?: string; eventsMaxLength?: number } = {}) {
    this.keys = registryKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.maxLen = options.eventsMaxLength ?? DEFAULT_EVENTS_MAX_LENGTH;
    defineScripts(redis, SCRIPTS);
    this.redis = redis;
  }

  /** Adds `domain` to `app` (or sets its path when the app has it); true when it is new. */
  async add(app: string, domain: string, path: string): Promise<boolean> {
    const k = this.keys;
    const out = await redisCall(() =>
      scripts.addDomain.run(this.redis, {
        keys: { app: k.app(app), domains: k.domains, appDomains: k.appDomains(app), events: k.events },
        args: { app, domain, path, eventsMaxLength: this.maxLen },
      }),
    );
    return out === 1;
  }

  async remove(app: string, domain: string): Promise<void> {
    const k = this.keys;
    await redisCall(() =>
      scripts.removeDomain.run(this.redis, {
        keys: { domains: k.domains, appDomains: k.appDomains(app), events: k.events },
        args: { app, domain, eventsMaxLength: this.maxLen },
      }),
    );
  }

  async get(domain: string): Promise<DomainRecord | undefined> {
    const json = await redisCall(() => this.redis.hget(this.keys.domains, domain));
    return json === null ? undefined : recordFrom(domain, json);
  }

  /** Every domain (of one app, with `app`), sorted by name. */
  async list(app?: string): Promise<DomainRecord[]> {
    const all = await redisCall(() => this.redis.hgetall(this.keys.domains));
    const out = Object.entries(all).map(([domain, json]) => recordFrom(domain, json));
    return out.filter((d) => app === undefined || d.app === app).sort((a, b) => a.domain.localeCompare(b.domain));
  }
}

function recordFrom(domain: string, json: string): DomainRecord {
  const r = JSON.parse(json) as { app?: unknown; path?: unknown; createdAt?: unknown };
  if (typeof r.app !== 'string' || typeof r.path !== 'string') throw new BerthError('internal_error', `The record of the domain ${domain} in Redis is malformed: remove it and add it again.`);
  return { domain, app: r.app, path: r.path, createdAt: Number(r.createdAt ?? 0) };
}
