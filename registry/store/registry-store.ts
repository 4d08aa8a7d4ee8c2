import { randomBytes } from 'node:crypto';
import { BerthError } from '../../common/errors.js';
import { reservedPathProblem } from '../../common/names.js';
import type { RedisClient } from '../../common/redis-connection.js';
import { instanceFromFlat, instanceFromHash, type Attributes, type Instance, type InstanceState } from './instance.js';
import { registryKeys, DEFAULT_KEY_PREFIX, type RegistryKeys } from './keys.js';
import { asBerthError, defineScripts, redisCall } from './lua-scripts.js';
import * as scripts from './script-declarations.js';

export const DEFAULT_LEASE_MS = 15_000;
export const DEFAULT_EVENTS_MAX_LENGTH = 100_000;
export const DEFAULT_REAP_BATCH = 500;
export const DEFAULT_WAIT_TIMEOUT_MS = 1000;
/** More than this share of the machines holding claims silent at once holds lease expiries. */
export const DEFAULT_SILENT_FRACTION = 0.5;
/**
 * A machine holding claims not heard from (markPresent) for this long is silent. Hosters send
 * their presence four times a second, so a live one is never near it.
 */
export const SILENT_AFTER_MS = 2000;

export interface RegistryStoreOptions {
  /** Name inside the key prefix's hash tag. @default 'berth' */
  keyPrefix?: string;
  /** Approximate number of events the stream keeps. @default 100000 */
  eventsMaxLength?: number;
  /** Lease length when a caller gives none. @default 15000 */
  leaseMs?: number;
  /**
   * After each change, wait until this many replicas have it (Redis WAIT), else fail with
   * redis_unavailable: a change the caller was told of then survives a failover. @default 0
   */
  waitReplicas?: number;
  /** How long such a wait may take. @default 1000 */
  waitTimeoutMs?: number;
}

export interface RegisterInput {
  service: string;
  path: string;
  attributes?: Attributes;
  files?: string | null;
  release?: number | null;
  /** Chosen by the store when absent. */
  id?: string;
}

export interface ClaimInput {
  service: string;
  machine: string;
  /** Address the instance listens on, as other machines reach it. @default the machine name */
  host?: string;
  port: number;
  attributes?: Attributes;
  /** Only an instance with this path. */
  path?: string;
  /** Only this unclaimed instance (a hoster that checked its requirements first). */
  instanceId?: string;
  leaseMs?: number;
  /**
   * Names this claim attempt: repeating a request with the same id (after a lost reply)
   * returns the claim it already made instead of making a second one.
   */
  requestId?: string;
}

export interface HolderInput {
  service: string;
  id: string;
  machine: string;
  epoch: number;
}

export interface ReapedInstance {
  id: string;
  service: string;
  machine: string;
  epoch: number;
  /** 'unclaimed' again, or 'removed' when it was being retired. */
  outcome: 'unclaimed' | 'removed';
}

/** Why the reaper holds lease expiries, and for how long (see reapExpired-7.lua). */
export interface ReapHold {
  /** How much longer nothing is expired (0: no hold). */
  msLeft: number;
  /** What started it: 'gap', no reaper ran for over a lease (or Redis's clock went back); 'silence', too many machines silent at once. */
  reason: 'gap' | 'silence' | '';
  /** When it started: the time since the reaper tick before (ms, Redis clock)... */
  gapMs: number;
  /** ...and how many of the machines holding claims were silent. */
  silent: number;
  machines: number;
  /** Leases that had ended and were kept by the hold in this round. */
  held: number;
  /** This round started the hold. */
  started: boolean;
}

/** What hosters read of the reapers' settings: they judge with them whether their silence makes a hold. */
export interface ReaperSettings {
  leaseMs: number;
  silentMs: number;
  fraction: number;
  intervalMs: number;
}

/** Where a retired instance stands after one retire step. */
export type RetireOutcome = 'removed' | 'draining' | 'stopping';

export interface MachineFacts {
  /** Where this machine's proxy listens, as other machines and balancers reach it. */
  proxy?: string;
  cpus?: number;
  memoryMb?: number;
  freeMemoryMb?: number;
  /** 5-minute load average per CPU. */
  load?: number;
  [key: string]: unknown;
}

export interface Machine {
  name: string;
  facts: MachineFacts;
  heartbeatAt: number;
  joinedAt: number;
}

/** Services per pipeline of instancesOfEach: replies of a few MB at most, and other clients' commands go between them. */
const INSTANCES_OF_EACH_CHUNK = 1000;

const SCRIPTS = [
  scripts.registerInstance,
  scripts.registerMissing,
  scripts.claimInstance,
  scripts.markRunning,
  scripts.markUnhealthy,
  scripts.renewLease,
  scripts.releaseInstance,
  scripts.unregisterInstance,
  scripts.retireInstance,
  scripts.markEvacuating,
  scripts.confirmStopped,
  scripts.reapExpired,
  scripts.markPresent,
  scripts.heartbeatMachine,
  scripts.holdLeadership,
];

/**
 * The registry's data in Redis. Every state change is one Lua script, called through one
 * typed method here; reads are plain commands whose cost is bounded by what they return.
 */
export class RegistryStore {
  readonly keys: RegistryKeys;
  readonly leaseMs: number;
  private readonly maxLen: number;
  private readonly waitReplicas: number;
  private readonly waitTimeoutMs: number;
  private readonly redis: RedisClient;

  constructor(redis: RedisClient, options: RegistryStoreOptions = {}) {
    this.keys = registryKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.maxLen = options.eventsMaxLength ?? DEFAULT_EVENTS_MAX_LENGTH;
    this.waitReplicas = options.waitReplicas ?? 0;
    this.waitTimeoutMs = options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
    defineScripts(redis, SCRIPTS);
    this.redis = redis;
  }

  async register(input: RegisterInput): Promise<Instance> {
    const reserved = reservedPathProblem(input.path);
    if (reserved !== undefined) throw new BerthError('reserved_path', reserved);
    const k = this.keys;
    const id = input.id ?? newInstanceId();
    const out = await this.change(() =>
      scripts.registerInstance.run(this.redis, {
        keys: {
          instance: k.instance(id),
          serviceInstances: k.serviceInstances(input.service),
          services: k.services,
          unclaimed: k.unclaimed,
          serviceUnclaimed: k.serviceUnclaimed(input.service),
          events: k.events,
          sequence: k.sequence,
          appPaths: k.appPaths,
          appPathList: k.appPathList,
        },
        args: {
          id,
          service: input.service,
          path: input.path,
          attributes: JSON.stringify(input.attributes ?? {}),
          files: input.files ?? '',
          release: input.release ?? '',
          eventsMaxLength: this.maxLen,
        },
      }),
    );
    return instanceFromFlat(out);
  }

  /**
   * Registers instances of an app's release until `wanted` of them are live (counted and
   * added atomically, so racing callers never exceed it). Returns the new ids.
   */
  async registerMissing(input: {
    service: string;
    path: string;
    release: number;
    wanted: number;
    attributes: Attributes;
    files: string;
    /** Its process type. @default 'web' */
    process?: string;
  }): Promise<string[]> {
    const k = this.keys;
    const ids = Array.from({ length: input.wanted }, newInstanceId);
    return this.change(() =>
      scripts.registerMissing.run(this.redis, {
        keys: {
          serviceInstances: k.serviceInstances(input.service),
          services: k.services,
          unclaimed: k.unclaimed,
          serviceUnclaimed: k.serviceUnclaimed(input.service),
          events: k.events,
          sequence: k.sequence,
        },
        args: {
          instanceFormat: k.formats.instance,
          service: input.service,
          path: input.path,
          release: input.release,
          wanted: input.wanted,
          attributes: JSON.stringify(input.attributes),
          files: input.files,
          eventsMaxLength: this.maxLen,
          process: input.process ?? 'web',
        },
        rest: ids,
      }),
    );
  }

  /** Takes, keeps (`hold`) or gives up (`drop`) a leadership lease; true while the caller holds it. */
  async holdLeadership(key: string, holder: string, leaseMs: number, mode: 'hold' | 'drop'): Promise<boolean> {
    return (await this.change(() => scripts.holdLeadership.run(this.redis, { keys: { lease: key }, args: { holder, leaseMs, mode } }))) === 1;
  }

  /** Now on Redis's clock (ms): the clock leases and drains are measured with. */
  async now(): Promise<number> {
    const [seconds, micros] = await this.call(() => this.redis.time());
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /** Every instance of `service`, or none (where getService would throw). */
  async instancesOf(service: string): Promise<Instance[]> {
    const ids = await this.call(() => this.redis.zrange(this.keys.serviceInstances(service), 0, -1));
    return ids.length === 0 ? [] : this.instancesById(ids);
  }

  /**
   * Every instance of each of `services`, oldest first, in two pipelined round trips per
   * thousand services (a route table's full load: one `instancesOf` after another took 20,000
   * round trips with 10,000 apps, seconds during which no event was applied).
   */
  async instancesOfEach(services: readonly string[]): Promise<Map<string, Instance[]>> {
    const out = new Map<string, Instance[]>();
    for (let from = 0; from < services.length; from += INSTANCES_OF_EACH_CHUNK) {
      const chunk = services.slice(from, from + INSTANCES_OF_EACH_CHUNK);
      const idRows = await this.call(() => {
        const pipeline = this.redis.pipeline();
        for (const service of chunk) pipeline.zrange(this.keys.serviceInstances(service), 0, -1);
        return pipeline.exec();
      });
      const ids: string[][] = (idRows ?? []).map(([err, list]) => {
        if (err) throw this.wrap(err);
        return list as string[];
      });
      const instances = await this.instancesById(ids.flat());
      const byId = new Map(instances.map((i) => [i.id, i]));
      chunk.forEach((service, n) => out.set(service, ids[n]!.flatMap((id) => byId.get(id) ?? [])));
    }
    return out;
  }

  /** The keys of every script that may remove an instance (the removeInstance include touches them all). */
  private removalKeys(service: string, id: string) {
    const k = this.keys;
    return {
      instance: k.instance(id),
      serviceInstances: k.serviceInstances(service),
      services: k.services,
      unclaimed: k.unclaimed,
      serviceUnclaimed: k.serviceUnclaimed(service),
      leases: k.leases,
      events: k.events,
    };
  }

  /** Removes one instance of `service` by id. */
  async unregister(service: string, id: string): Promise<Instance> {
    const out = await this.change(() =>
      scripts.unregisterInstance.run(this.redis, {
        keys: {
          ...this.removalKeys(service, id),
        },
        args: { service, eventsMaxLength: this.maxLen },
      }),
    );
    return instanceFromFlat(out);
  }

  /**
   * Removes a single instance of `service` matching the given path, host and port (the seed's
   * UnregisterInstance(service, path, [host], [port])). Prefers an unclaimed one, then the newest.
   */
  async unregisterMatching(service: string, match: { path?: string; host?: string; port?: number }): Promise<Instance> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const candidates = (await this.getService(service))
        .filter(
          (i) =>
            (match.path === undefined || i.path === match.path) &&
            (match.host === undefined || i.host === match.host) &&
            (match.port === undefined || i.port === match.port),
        )
        .sort((a, b) => Number(b.state === 'unclaimed') - Number(a.state === 'unclaimed') || b.createdAt - a.createdAt);
      const victim = candidates[0];
      if (victim === undefined) throw new BerthError('instance_not_found', `No instance of "${service}" matches ${JSON.stringify(match)}.`);
      try {
        return await this.unregister(service, victim.id);
      } catch (err) {
        // Someone else removed it between our read and our delete: look again.
        if (!(err instanceof BerthError && err.code === 'instance_not_found')) throw err;
      }
    }
    throw new BerthError('instance_not_found', `No instance of "${service}" matches ${JSON.stringify(match)}.`);
  }

  /** Claims the oldest unclaimed instance of `service`; throws nothing_to_claim or service_not_found. */
  async claim(input: ClaimInput): Promise<Instance> {
    const k = this.keys;
    const requestId = input.requestId ?? '';
    const out = await this.change(() =>
      scripts.claimInstance.run(this.redis, {
        keys: {
          serviceUnclaimed: k.serviceUnclaimed(input.service),
          unclaimed: k.unclaimed,
          leases: k.leases,
          epoch: k.epoch,
          events: k.events,
          serviceInstances: k.serviceInstances(input.service),
          claimRequest: k.claimRequest(requestId),
        },
        args: {
          instanceFormat: k.formats.instance,
          service: input.service,
          machine: input.machine,
          host: input.host ?? input.machine,
          port: input.port,
          claimAttributes: JSON.stringify(input.attributes ?? {}),
          leaseMs: input.leaseMs ?? this.leaseMs,
          requestId,
          path: input.path ?? '',
          eventsMaxLength: this.maxLen,
          instanceId: input.instanceId ?? '',
        },
      }),
    );
    return instanceFromFlat(out);
  }

  /**
   * Reports that the holder's instance passed its health check and may be routed; `restarts`:
   * how many times the holder started it again in place under this claim (absent: unchanged).
   */
  async markRunning(input: HolderInput & { pid: number; restarts?: number }): Promise<Instance> {
    const out = await this.change(() =>
      scripts.markRunning.run(this.redis, {
        keys: { instance: this.keys.instance(input.id), events: this.keys.events },
        args: { machine: input.machine, epoch: input.epoch, pid: input.pid, eventsMaxLength: this.maxLen, service: input.service, restarts: input.restarts ?? '' },
      }),
    );
    return instanceFromFlat(out);
  }

  /**
   * Takes the holder's running instance out of routing: it failed its health check while it
   * ran (`detail` says how). It is claimed again, not running, until the holder's restart
   * passes the check and reports it running.
   */
  async markUnhealthy(input: HolderInput & { detail: string }): Promise<Instance> {
    const out = await this.change(() =>
      scripts.markUnhealthy.run(this.redis, {
        keys: { instance: this.keys.instance(input.id), events: this.keys.events },
        args: {
          machine: input.machine,
          epoch: input.epoch,
          detail: input.detail.slice(0, MAX_REASON_DETAIL_CHARS),
          eventsMaxLength: this.maxLen,
          service: input.service,
        },
      }),
    );
    return instanceFromFlat(out);
  }

  /** Extends the holder's lease; returns the new expiry (ms, Redis clock) and the instance's state. */
  async renew(input: HolderInput & { leaseMs?: number }): Promise<{ leaseUntil: number; state: InstanceState }> {
    const out = await this.change(() =>
      scripts.renewLease.run(this.redis, {
        keys: { instance: this.keys.instance(input.id), leases: this.keys.leases },
        args: { machine: input.machine, epoch: input.epoch, leaseMs: input.leaseMs ?? this.leaseMs, service: input.service },
      }),
    );
    return { leaseUntil: Number(out[0]), state: out[1] as InstanceState };
  }

  /**
   * Gives the holder's claim back, so another machine may claim the instance; returns null
   * when the instance was being retired and so was removed instead.
   */
  async release(input: HolderInput & { reason: string; detail?: string }): Promise<Instance | null> {
    const flat = await this.change(() =>
      scripts.releaseInstance.run(this.redis, {
        keys: {
          ...this.removalKeys(input.service, input.id),
        },
        args: {
          machine: input.machine,
          epoch: input.epoch,
          reason: input.reason,
          eventsMaxLength: this.maxLen,
          service: input.service,
          detail: boundedDetail(input.detail),
        },
      }),
    );
    return flat.length === 0 ? null : instanceFromFlat(flat);
  }

  /**
   * One step of retiring an instance (see retireInstance-7.lua): removed if it never ran,
   * else draining for `drainMs` (unroutable), then stopping for its hoster to stop.
   */
  async retire(service: string, id: string, drainMs: number, reason: string): Promise<RetireOutcome> {
    const out = await this.change(() =>
      scripts.retireInstance.run(this.redis, {
        keys: {
          ...this.removalKeys(service, id),
        },
        args: { service, drainMs, reason, eventsMaxLength: this.maxLen },
      }),
    );
    return out as RetireOutcome;
  }

  /**
   * The holder is leaving (evacuation): the reconciler starts a replacement and then retires
   * this one through draining, so that no request fails. Idempotent.
   */
  async markEvacuating(input: HolderInput): Promise<void> {
    await this.change(() =>
      scripts.markEvacuating.run(this.redis, {
        keys: { instance: this.keys.instance(input.id), events: this.keys.events },
        args: { machine: input.machine, epoch: input.epoch, service: input.service, eventsMaxLength: this.maxLen },
      }),
    );
  }

  /** The holder stopped a `stopping` instance: remove its record. */
  async confirmStopped(input: HolderInput): Promise<void> {
    await this.change(() =>
      scripts.confirmStopped.run(this.redis, {
        keys: {
          ...this.removalKeys(input.service, input.id),
        },
        args: { service: input.service, machine: input.machine, epoch: input.epoch, eventsMaxLength: this.maxLen },
      }),
    );
  }

  /**
   * The holder of a release task reports its outcome (finishReleaseTask-8.lua): recorded on the
   * release once, and the task removed. False when an outcome was recorded already.
   */
  async finishReleaseTask(input: HolderInput & { release: number; status: 'succeeded' | 'failed'; detail: string }): Promise<boolean> {
    const k = this.keys;
    const out = await this.change(() =>
      scripts.finishReleaseTask.run(this.redis, {
        keys: {
          ...this.removalKeys(input.service, input.id),
          appReleases: k.appReleases(input.service),
        },
        args: {
          service: input.service,
          machine: input.machine,
          epoch: input.epoch,
          release: input.release,
          status: input.status,
          detail: input.detail,
          eventsMaxLength: this.maxLen,
        },
      }),
    );
    return out === 1;
  }

  /** Handles up to `limit` instances whose lease expired (see reapExpired-7.lua). */
  async reapExpired(limit = DEFAULT_REAP_BATCH): Promise<ReapedInstance[]> {
    return (await this.reapRound({ limit })).reaped;
  }

  /**
   * One reaper round (reapExpired-7.lua): expires up to `limit` ended leases, unless the
   * evidence says the control plane itself was away (then it holds them for a lease).
   */
  async reapRound(options: { limit?: number; fraction?: number; intervalMs?: number } = {}): Promise<{ reaped: ReapedInstance[]; hold: ReapHold }> {
    const k = this.keys;
    const [reaped, hold] = await this.change(() =>
      scripts.reapExpired.run(this.redis, {
        keys: {
          leases: k.leases,
          unclaimed: k.unclaimed,
          events: k.events,
          reaperState: k.reaperState,
          presence: k.presence,
          presenceGrace: k.presenceGrace,
          services: k.services,
        },
        args: {
          instanceFormat: k.formats.instance,
          limit: options.limit ?? DEFAULT_REAP_BATCH,
          eventsMaxLength: this.maxLen,
          leaseMs: this.leaseMs,
          silentMs: SILENT_AFTER_MS,
          fraction: options.fraction ?? DEFAULT_SILENT_FRACTION,
          intervalMs: options.intervalMs ?? 1000,
          serviceInstancesFormat: k.formats.serviceInstances,
          serviceUnclaimedFormat: k.formats.serviceUnclaimed,
        },
      }),
    );
    return {
      reaped: reaped.map(([id, service, machine, epoch, outcome]) => ({
        id,
        service,
        machine,
        epoch: Number(epoch),
        outcome: outcome as ReapedInstance['outcome'],
      })),
      hold: {
        msLeft: Number(hold[0]),
        reason: hold[1] as ReapHold['reason'],
        gapMs: Number(hold[2]),
        silent: Number(hold[3]),
        machines: Number(hold[4]),
        held: Number(hold[5]),
        started: Number(hold[6]) === 1,
      },
    };
  }

  /**
   * A hoster's sign of life while it `holding` claims (markPresent-2.lua), with its control-plane
   * grace and lease length; returns now on Redis's clock and how many machines hold claims now.
   * Not waited on by replicas: it is evidence, not state.
   */
  async markPresent(machine: string, graceMs: number, holding: boolean, leaseMs = this.leaseMs): Promise<{ now: number; holders: number }> {
    const k = this.keys;
    const [now, holders] = await this.call(() =>
      scripts.markPresent.run(this.redis, {
        keys: { presence: k.presence, presenceGrace: k.presenceGrace },
        args: { machine, graceMs, holding: holding ? '1' : '0', leaseMs },
      }),
    );
    return { now: Number(now), holders: Number(holders) };
  }

  /** The machines holding claims, as their presence says (the reapers count their silence). */
  async presentMachines(): Promise<string[]> {
    return this.call(() => this.redis.zrange(this.keys.presence, 0, -1));
  }

  /** The settings the reapers last ran with, or undefined before any reaper ran. */
  async reaperSettings(): Promise<ReaperSettings | undefined> {
    const [leaseMs, silentMs, fraction, intervalMs] = await this.call(() => this.redis.hmget(this.keys.reaperState, 'leaseMs', 'silentMs', 'fraction', 'intervalMs'));
    if (leaseMs == null || silentMs == null || fraction == null || intervalMs == null) return undefined;
    return { leaseMs: Number(leaseMs), silentMs: Number(silentMs), fraction: Number(fraction), intervalMs: Number(intervalMs) };
  }

  async heartbeat(name: string, facts: MachineFacts): Promise<number> {
    const k = this.keys;
    return this.change(() =>
      scripts.heartbeatMachine.run(this.redis, {
        keys: { machine: k.machine(name), machines: k.machines, events: k.events },
        args: { machine: name, facts: JSON.stringify(facts), eventsMaxLength: this.maxLen },
      }),
    );
  }

  async getInstance(id: string): Promise<Instance> {
    const h = await this.call(() => this.redis.hgetall(this.keys.instance(id)));
    if (!h.id) throw new BerthError('instance_not_found', `No instance with id "${id}".`);
    return instanceFromHash(h);
  }

  /** Every instance of `service`, oldest first: O(instances of the service). */
  async getService(service: string): Promise<Instance[]> {
    const ids = await this.call(() => this.redis.zrange(this.keys.serviceInstances(service), 0, -1));
    if (ids.length === 0) throw new BerthError('service_not_found', `No service named "${service}": list them with GET /v1/services.`);
    return this.instancesById(ids);
  }

  /** Names of every service that has instances, sorted. */
  async listServices(): Promise<string[]> {
    const names = await this.call(() => this.redis.smembers(this.keys.services));
    return names.sort();
  }

  /** A service name for each unclaimed instance, oldest first: O(unclaimed). */
  async listUnclaimed(): Promise<string[]> {
    const ids = await this.call(() => this.redis.zrange(this.keys.unclaimed, 0, -1));
    if (ids.length === 0) return [];
    const services = await this.call(() => {
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hget(this.keys.instance(id), 'service');
      return pipeline.exec();
    });
    const out: string[] = [];
    for (const [err, service] of services ?? []) {
      if (err) throw this.wrap(err);
      if (typeof service === 'string') out.push(service);
    }
    return out;
  }

  /**
   * Services of a bounded sample of the unclaimed instances, for a hoster's claim round: the
   * oldest `window`, and when more wait, `window` more from a random place. O(log n + window)
   * however many wait (listUnclaimed is O(unclaimed), which stalls 50 hosters once 20,000 wait);
   * the random part keeps instances no machine can take, at the head, from hiding the rest.
   * Distinct names in random order: in the same order, every hoster would race for the same
   * app's instances while the others wait.
   */
  async unclaimedServicesSample(window: number, random: () => number = Math.random): Promise<string[]> {
    const k = this.keys;
    const ids = await this.call(async () => {
      const [head, size] = (await this.redis.pipeline().zrange(k.unclaimed, 0, window - 1).zcard(k.unclaimed).exec()) ?? [];
      if (!head || !size) throw new Error('Redis answered a pipeline of two commands with fewer replies');
      if (head[0] || size[0]) throw head[0] ?? size[0];
      const out = head[1] as string[];
      const n = size[1] as number;
      if (n > window) {
        const start = window + Math.floor(random() * (n - window));
        out.push(...(await this.redis.zrange(k.unclaimed, start, start + window - 1)));
      }
      return out;
    });
    if (ids.length === 0) return [];
    const rows = await this.call(() => {
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hget(this.keys.instance(id), 'service');
      return pipeline.exec();
    });
    const out = new Set<string>();
    for (const [err, service] of rows ?? []) {
      if (err) throw this.wrap(err);
      if (typeof service === 'string') out.add(service);
    }
    const names = [...out];
    for (let i = names.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [names[i], names[j]] = [names[j]!, names[i]!];
    }
    return names;
  }

  /** Every machine that ever sent a heartbeat, most recent first. */
  async listMachines(): Promise<Machine[]> {
    const names = await this.call(() => this.redis.zrevrange(this.keys.machines, 0, -1));
    if (names.length === 0) return [];
    const rows = await this.call(() => {
      const pipeline = this.redis.pipeline();
      for (const name of names) pipeline.hgetall(this.keys.machine(name));
      return pipeline.exec();
    });
    const out: Machine[] = [];
    for (const [err, h] of rows ?? []) {
      if (err) throw this.wrap(err);
      const m = h as Record<string, string>;
      if (!m.name) continue;
      out.push({
        name: m.name,
        facts: safeJson(m.facts) as MachineFacts,
        heartbeatAt: Number(m.heartbeatAt ?? 0),
        joinedAt: Number(m.joinedAt ?? 0),
      });
    }
    return out;
  }

  private async instancesById(ids: string[]): Promise<Instance[]> {
    const rows = await this.call(() => {
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hgetall(this.keys.instance(id));
      return pipeline.exec();
    });
    const out: Instance[] = [];
    for (const [err, h] of rows ?? []) {
      if (err) throw this.wrap(err);
      const hash = h as Record<string, string>;
      if (hash.id) out.push(instanceFromHash(hash));
    }
    return out;
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return redisCall(fn);
  }

  /**
   * Runs a script that changes state; with `waitReplicas`, only returns once that many replicas
   * have the change (WAIT covers every earlier write of this connection), so that a failover to
   * one of them keeps it. Without enough of them the caller must treat the change as failed.
   */
  private async change<T>(fn: () => Promise<T>): Promise<T> {
    const out = await redisCall(fn);
    if (this.waitReplicas > 0) {
      const acked = await redisCall(() => this.redis.wait(this.waitReplicas, this.waitTimeoutMs));
      if (acked < this.waitReplicas) {
        throw new BerthError(
          'redis_unavailable',
          `Redis made the change but only ${acked} of ${this.waitReplicas} replicas confirmed it within ${this.waitTimeoutMs} ms: retry shortly; if it persists, check the replicas or lower BERTH_REDIS_WAIT_REPLICAS.`,
        );
      }
    }
    return out;
  }

  private wrap(err: unknown): unknown {
    return asBerthError(err);
  }
}

function newInstanceId(): string {
  return randomBytes(8).toString('hex');
}

function safeJson(s: string | undefined): unknown {
  if (!s) return {};
  try {
    return JSON.parse(s);
  } catch {
    return {};
  }
}

/** The most of a failure's detail kept on an instance: the last lines of its output, not a whole log. */
export const MAX_REASON_DETAIL_CHARS = 4000;

function boundedDetail(detail: string | undefined): string {
  if (detail === undefined) return '';
  return detail.length <= MAX_REASON_DETAIL_CHARS ? detail : detail.slice(detail.length - MAX_REASON_DETAIL_CHARS);
}
