import { BerthError } from '../../common/errors.js';
import { reservedPathProblem } from '../../common/names.js';
import type { RedisClient } from '../../common/redis-connection.js';
import { appFromHash, releaseFromJson, type App, type AutoscalePolicy, type HealthCheck, type Release } from './app.js';
import type { Attributes } from './instance.js';
import { DEFAULT_KEY_PREFIX, KEY_NAME_SLOT, registryKeys, type RegistryKeys } from './keys.js';
import { addonKeys } from './addon-keys.js';
import { defineScripts, redisCall } from './lua-scripts.js';
import { DEFAULT_EVENTS_MAX_LENGTH } from './registry-store.js';
import * as scripts from './script-declarations.js';
import { SCRIPT_FAILURE } from './script-errors.js';

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
  /** Process types other than web, by name, with their commands. */
  processes?: Record<string, string>;
  /** Run once before the release's instances start; null: none. */
  releaseCommand?: string | null;
  releaseTimeoutMs?: number;
}

export interface CreateAppInput {
  name: string;
  path: string;
  instances: number;
  stripPrefix: boolean;
  release: ReleaseInput;
}

/** What the scaler remembers of an app, for its cool-downs (kept in Redis, so a new leader keeps them). */
/** What the scaler remembers of an app: of web, and of each other type it scaled (`types`). */
export interface ScalerMemory {
  changeAt?: number;
  noticeAt?: number;
  types?: Record<string, { changeAt?: number; noticeAt?: number }>;
}

/** What became of a scaler decision sent to Redis. */
export type ScaleOutcome = { applied: true; at: number } | { applied: false; why: 'not_leader' | 'app_changed' | 'app_not_found' };

const SCRIPTS = [
  scripts.createApp,
  scripts.createRelease,
  scripts.updateAppSettings,
  scripts.markAppDeleting,
  scripts.removeApp,
  scripts.setReleaseStatus,
  scripts.setAutoscale,
  scripts.applyScaleDecision,
];

/**
 * Apps and their releases in Redis: the desired state that the reconciler converges to.
 * Every change is one Lua script; releases are immutable except for their status.
 */
export class AppStore {
  readonly keys: RegistryKeys;
  private readonly redis: RedisClient;
  private readonly maxLen: number;

  constructor(redis: RedisClient, options: { keyPrefix?: string; eventsMaxLength?: number } = {}) {
    this.keys = registryKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.maxLen = options.eventsMaxLength ?? DEFAULT_EVENTS_MAX_LENGTH;
    defineScripts(redis, SCRIPTS);
    this.redis = redis;
  }

  async create(input: CreateAppInput): Promise<number> {
    const reserved = reservedPathProblem(input.path);
    if (reserved !== undefined) throw new BerthError('reserved_path', reserved);
    const k = this.keys;
    return redisCall(() =>
      scripts.createApp.run(this.redis, {
        keys: {
          app: k.app(input.name),
          apps: k.apps,
          appPaths: k.appPaths,
          appReleases: k.appReleases(input.name),
          appReleaseSequence: k.appReleaseSequence(input.name),
          events: k.events,
          appPathList: k.appPathList,
        },
        args: {
          app: input.name,
          path: input.path,
          instances: input.instances,
          stripPrefix: input.stripPrefix ? '1' : '0',
          release: JSON.stringify(input.release),
          eventsMaxLength: this.maxLen,
        },
      }),
    );
  }

  /**
   * Adds a release and makes it current. `basedOn` is the current version the caller read;
   * when the app moved on meanwhile, this throws `release_conflict` (read again and retry).
   */
  async createRelease(name: string, release: ReleaseInput, basedOn: number | null): Promise<number> {
    const k = this.keys;
    return redisCall(() =>
      scripts.createRelease.run(this.redis, {
        keys: { app: k.app(name), appReleases: k.appReleases(name), appReleaseSequence: k.appReleaseSequence(name), events: k.events },
        args: { app: name, release: JSON.stringify(release), basedOn: basedOn === null ? '' : String(basedOn), eventsMaxLength: this.maxLen },
      }),
    );
  }

  async updateSettings(name: string, settings: { instances?: number; stripPrefix?: boolean; formation?: Record<string, number> }): Promise<void> {
    await redisCall(() =>
      scripts.updateAppSettings.run(this.redis, {
        keys: { app: this.keys.app(name), events: this.keys.events },
        args: {
          app: name,
          instances: settings.instances === undefined ? '' : settings.instances,
          stripPrefix: settings.stripPrefix === undefined ? '' : settings.stripPrefix ? '1' : '0',
          eventsMaxLength: this.maxLen,
          formation: settings.formation === undefined || Object.keys(settings.formation).length === 0 ? '' : JSON.stringify(settings.formation),
        },
      }),
    );
  }

  /** Sets the scaling policy of one process type of the app, or removes it (null): its instances stay as they are. */
  async setAutoscale(name: string, policy: AutoscalePolicy | null, process = 'web'): Promise<void> {
    await redisCall(() =>
      scripts.setAutoscale.run(this.redis, {
        keys: { app: this.keys.app(name), events: this.keys.events },
        args: { app: name, policy: policy === null ? '' : JSON.stringify(policy), eventsMaxLength: this.maxLen, process },
      }),
    );
  }

  /**
   * Applies and records one scaler decision in one script, fenced by the scaler lease held by
   * `holder` and by the instance count the decision started from, of its process type (default web).
   */
  async applyScaleDecision(
    decision: { app: string; process?: string; from: number; to: number; cause: string },
    record: object,
    holder: string,
    logLength: number,
  ): Promise<ScaleOutcome> {
    const k = this.keys;
    const out = await redisCall(() =>
      scripts.applyScaleDecision.run(this.redis, {
        keys: { app: k.app(decision.app), scalerLease: k.scalerLease, events: k.events, scalerLog: k.scalerLog, scalerMemory: k.scalerMemory },
        args: {
          app: decision.app,
          holder,
          from: decision.from,
          to: decision.to,
          record: JSON.stringify(record),
          logLength,
          eventsMaxLength: this.maxLen,
          cause: decision.cause,
          process: decision.process ?? 'web',
        },
      }),
    );
    if (out === SCRIPT_FAILURE.notLeader) return { applied: false, why: 'not_leader' };
    if (out === SCRIPT_FAILURE.appChanged) return { applied: false, why: 'app_changed' };
    if (out === SCRIPT_FAILURE.appNotFound) return { applied: false, why: 'app_not_found' };
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
    await redisCall(() =>
      scripts.markAppDeleting.run(this.redis, { keys: { app: this.keys.app(name), events: this.keys.events }, args: { app: name, eventsMaxLength: this.maxLen } }),
    );
  }

  /** Removes a deleting app that has no instances left; false when it still has some. */
  async remove(name: string): Promise<boolean> {
    const k = this.keys;
    const addons = addonKeys(k);
    const out = await redisCall(() =>
      scripts.removeApp.run(this.redis, {
        keys: {
          app: k.app(name),
          apps: k.apps,
          appPaths: k.appPaths,
          appReleases: k.appReleases(name),
          appReleaseSequence: k.appReleaseSequence(name),
          appLogs: k.appLogs(name),
          events: k.events,
          scalerMemory: k.scalerMemory,
          appPathList: k.appPathList,
          serviceInstances: k.serviceInstances(name),
          domains: k.domains,
          appDomains: k.appDomains(name),
          appAddons: addons.appAddons(name),
        },
        args: { app: name, eventsMaxLength: this.maxLen, addonFormat: addons.addon(KEY_NAME_SLOT) },
      }),
    );
    if (out === SCRIPT_FAILURE.appNotFound) return true;
    return out === 1;
  }

  async setReleaseStatus(name: string, version: number, status: 'active' | 'failed', reason = '', fallback: number | null = null): Promise<boolean> {
    const k = this.keys;
    const out = await redisCall(() =>
      scripts.setReleaseStatus.run(this.redis, {
        keys: { app: k.app(name), appReleases: k.appReleases(name), events: k.events },
        args: { app: name, version, status, reason, fallback: fallback === null ? '' : fallback, eventsMaxLength: this.maxLen },
      }),
    );
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
