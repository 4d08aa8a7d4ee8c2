import { BerthError } from '../common/errors.js';
import { reservedPathProblem } from '../common/names.js';
import type { RedisClient } from '../common/redis-connection.js';
import { appFromHash, releaseFromJson, type App, type AutoscalePolicy, type HealthCheck, type Release } from './app.js';
import type { Attributes } from './instance.js';
import { DEFAULT_KEY_PREFIX, registryKeys, type RegistryKeys } from './keys.js';
import { defineScripts, redisCall } from './lua-scripts.js';
import { DEFAULT_EVENTS_MAX_LENGTH } from './registry-store.js';
import { pathTakenFailure, scriptFailure } from './script-errors.js';

/** What a new release is made of; version, time and status are set by the store. */
export interface ReleaseInput {
  bundle: string;
  env: Record<string, string>;
  command: string | null;
  requirements: Attributes;
  healthCheck: HealthCheck;
  description: string;
  createdBy: string;
  /** The git commit the code came from (a push), kept by releases that keep the code. */
  commit?: string;
}

export interface CreateAppInput {
  name: string;
  path: string;
  instances: number;
  stripPrefix: boolean;
  release: ReleaseInput;
}

interface AppScripts {
  createApp(...args: (string | number)[]): Promise<number | [number, string, string]>;
  createRelease(...args: (string | number)[]): Promise<number>;
  updateAppSettings(...args: (string | number)[]): Promise<number>;
  markAppDeleting(...args: (string | number)[]): Promise<number>;
  removeApp(...args: (string | number)[]): Promise<number>;
  setReleaseStatus(...args: (string | number)[]): Promise<number>;
  setAutoscale(...args: (string | number)[]): Promise<number>;
  applyScaleDecision(...args: (string | number)[]): Promise<number>;
}

/** What the scaler remembers of an app, for its cool-downs (kept in Redis, so a new leader keeps them). */
export interface ScalerMemory {
  changeAt?: number;
  noticeAt?: number;
}

/** What became of a scaler decision sent to Redis. */
export type ScaleOutcome = { applied: true; at: number } | { applied: false; why: 'not_leader' | 'app_changed' | 'app_not_found' };

const SCRIPTS: Record<keyof AppScripts, number> = {
  createApp: 7,
  createRelease: 4,
  updateAppSettings: 2,
  markAppDeleting: 2,
  removeApp: 9,
  setReleaseStatus: 3,
  setAutoscale: 2,
  applyScaleDecision: 5,
};

/**
 * Apps and their releases in Redis: the desired state that the reconciler converges to.
 * Every change is one Lua script; releases are immutable except for their status.
 */
export class AppStore {
  readonly keys: RegistryKeys;
  private readonly redis: RedisClient & AppScripts;
  private readonly maxLen: number;

  constructor(redis: RedisClient, options: { keyPrefix?: string; eventsMaxLength?: number } = {}) {
    this.keys = registryKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.maxLen = options.eventsMaxLength ?? DEFAULT_EVENTS_MAX_LENGTH;
    defineScripts(redis, SCRIPTS);
    this.redis = redis as RedisClient & AppScripts;
  }

  async create(input: CreateAppInput): Promise<number> {
    const reserved = reservedPathProblem(input.path);
    if (reserved !== undefined) throw new BerthError('reserved_path', reserved);
    const k = this.keys;
    const out = await redisCall(() =>
      this.redis.createApp(
        k.app(input.name),
        k.apps,
        k.appPaths,
        k.appReleases(input.name),
        k.appReleaseSequence(input.name),
        k.events,
        k.appPathList,
        input.name,
        input.path,
        input.instances,
        input.stripPrefix ? '1' : '0',
        JSON.stringify(input.release),
        this.maxLen,
      ),
    );
    if (out === -3) throw new BerthError('app_exists', `An app named "${input.name}" exists: update it with PUT /v1/apps/${input.name}, or choose another name.`);
    const taken = pathTakenFailure(out, input.path);
    if (taken !== undefined) throw taken;
    return out as number;
  }

  /**
   * Adds a release and makes it current. `basedOn` is the current version the caller read;
   * when the app moved on meanwhile, this throws `release_conflict` (read again and retry).
   */
  async createRelease(name: string, release: ReleaseInput, basedOn: number | null): Promise<number> {
    const k = this.keys;
    const out = await redisCall(() =>
      this.redis.createRelease(
        k.app(name),
        k.appReleases(name),
        k.appReleaseSequence(name),
        k.events,
        name,
        JSON.stringify(release),
        basedOn === null ? '' : String(basedOn),
        this.maxLen,
      ),
    );
    if (out === -1) throw appNotFound(name);
    if (out === -6) throw new BerthError('release_conflict');
    return out;
  }

  async updateSettings(name: string, settings: { instances?: number; stripPrefix?: boolean }): Promise<void> {
    const out = await redisCall(() =>
      this.redis.updateAppSettings(
        this.keys.app(name),
        this.keys.events,
        name,
        settings.instances === undefined ? '' : settings.instances,
        settings.stripPrefix === undefined ? '' : settings.stripPrefix ? '1' : '0',
        this.maxLen,
      ),
    );
    if (out === -1) throw appNotFound(name);
    if (out === -9) throw new BerthError('autoscale_on', `${name} scales automatically: change its policy (berth scale ${name} --min N --max N) or turn it off (berth scale ${name} --off) before setting its instances.`);
  }

  /** Sets the app's scaling policy, or removes it (null): its instances stay as they are. */
  async setAutoscale(name: string, policy: AutoscalePolicy | null): Promise<void> {
    const out = await redisCall(() => this.redis.setAutoscale(this.keys.app(name), this.keys.events, name, policy === null ? '' : JSON.stringify(policy), this.maxLen));
    if (out === -1) throw appNotFound(name);
  }

  /**
   * Applies and records one scaler decision in one script, fenced by the scaler lease held by
   * `holder` and by the instance count the decision started from.
   */
  async applyScaleDecision(
    decision: { app: string; from: number; to: number; cause: string },
    record: object,
    holder: string,
    logLength: number,
  ): Promise<ScaleOutcome> {
    const k = this.keys;
    const out = await redisCall(() =>
      this.redis.applyScaleDecision(
        k.app(decision.app),
        k.scalerLease,
        k.events,
        k.scalerLog,
        k.scalerMemory,
        decision.app,
        holder,
        decision.from,
        decision.to,
        JSON.stringify(record),
        logLength,
        this.maxLen,
        decision.cause,
      ),
    );
    if (out === -7) return { applied: false, why: 'not_leader' };
    if (out === -8) return { applied: false, why: 'app_changed' };
    if (out === -1) return { applied: false, why: 'app_not_found' };
    return { applied: true, at: out };
  }

  /** The scaler's most recent decisions, newest first (optionally of one app). */
  async scalerLog(limit: number, app?: string): Promise<Record<string, unknown>[]> {
    const raw = await redisCall(() => this.redis.lrange(this.keys.scalerLog, 0, -1));
    const out: Record<string, unknown>[] = [];
    for (const line of raw) {
      const d = JSON.parse(line) as Record<string, unknown>;
      if (app !== undefined && d.app !== app) continue;
      out.push(d);
      if (out.length >= limit) break;
    }
    return out;
  }

  async scalerMemory(): Promise<Map<string, ScalerMemory>> {
    const h = await redisCall(() => this.redis.hgetall(this.keys.scalerMemory));
    return new Map(Object.entries(h).map(([name, json]) => [name, JSON.parse(json) as ScalerMemory]));
  }

  async markDeleting(name: string): Promise<void> {
    const out = await redisCall(() => this.redis.markAppDeleting(this.keys.app(name), this.keys.events, name, this.maxLen));
    if (out === -1) throw appNotFound(name);
  }

  /** Removes a deleting app that has no instances left; false when it still has some. */
  async remove(name: string): Promise<boolean> {
    const k = this.keys;
    const out = await redisCall(() =>
      this.redis.removeApp(
        k.app(name),
        k.apps,
        k.appPaths,
        k.appReleases(name),
        k.appReleaseSequence(name),
        k.appLogs(name),
        k.events,
        k.scalerMemory,
        k.appPathList,
        name,
        k.serviceInstances(name),
        this.maxLen,
      ),
    );
    if (out === -1) return true;
    return out === 1;
  }

  async setReleaseStatus(name: string, version: number, status: 'active' | 'failed', reason = '', fallback: number | null = null): Promise<boolean> {
    const k = this.keys;
    const out = await redisCall(() =>
      this.redis.setReleaseStatus(k.app(name), k.appReleases(name), k.events, name, version, status, reason, fallback === null ? '' : fallback, this.maxLen),
    );
    if (out < 0) throw scriptFailure(out, 'app_not_found');
    return out === 1;
  }

  async get(name: string): Promise<App> {
    const app = appFromHash(await redisCall(() => this.redis.hgetall(this.keys.app(name))));
    if (app === undefined) throw appNotFound(name);
    return app;
  }

  async list(): Promise<App[]> {
    const names = (await redisCall(() => this.redis.smembers(this.keys.apps))).sort();
    if (names.length === 0) return [];
    const rows = await redisCall(async () => {
      const pipeline = this.redis.pipeline();
      for (const name of names) pipeline.hgetall(this.keys.app(name));
      return (await pipeline.exec()) ?? [];
    });
    const apps: App[] = [];
    for (const [err, h] of rows) {
      if (err) throw err;
      const app = appFromHash(h as Record<string, string>);
      if (app) apps.push(app);
    }
    return apps;
  }

  async release(name: string, version: number): Promise<Release | undefined> {
    const json = await redisCall(() => this.redis.hget(this.keys.appReleases(name), String(version)));
    return json === null ? undefined : releaseFromJson(json);
  }

  /** Every release of the app, newest first. */
  async releases(name: string): Promise<Release[]> {
    const all = await redisCall(() => this.redis.hvals(this.keys.appReleases(name)));
    return all.map(releaseFromJson).sort((a, b) => b.version - a.version);
  }

  /** Bundle digests that some release of some app still uses. */
  async referencedBundles(): Promise<Set<string>> {
    const used = new Set<string>();
    for (const name of await redisCall(() => this.redis.smembers(this.keys.apps))) {
      for (const r of await this.releases(name)) used.add(r.bundle);
    }
    return used;
  }
}

function appNotFound(name: string): BerthError {
  return new BerthError('app_not_found', `No app named "${name}": list them with GET /v1/apps (berth apps).`);
}
