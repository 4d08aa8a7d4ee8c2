import type { RedisClient } from '../../common/redis-connection.js';
import { addonKeys, type AddonKeys } from './addon-keys.js';
import { attachAddon, claimAddon, claimAddonBackup, createAddon, destroyAddon, detachAddon, moveAddon, recordAddonBackup, reportAddon, reportAddonUsage, setAddonBackupSchedule } from './addon-scripts.js';
import type { RegistryKeys } from './keys.js';
import { redisCall } from './lua-scripts.js';
import { SCRIPT_FAILURE } from './script-errors.js';

export const ADDON_KINDS = ['postgres', 'redis'] as const;
export type AddonKind = (typeof ADDON_KINDS)[number];

/** The role and the database of a PostgreSQL add-on: its name as an identifier that needs no quoting (a-z, 0-9, _). */
export function postgresIdentifier(name: string): string {
  return name.replace(/-/g, '_');
}

/** What the holder of an add-on's lease last said of its server; `unclaimed` before any did, `stopped` once one gave it back. */
export type AddonServerState = 'unclaimed' | 'starting' | 'running' | 'crashed' | 'stopped';

/** What the holder of an add-on last measured of its server (addon-supervisor.ts). */
export interface AddonUsage {
  /** The data on disk: PostgreSQL's pg_database_size of its database; the files of Redis's data folder (append-only file, snapshot). */
  bytes: number;
  /** Clients connected at the measurement (PostgreSQL: client backends of its database), the measuring one not counted. */
  connections: number;
  /** Redis's used_memory (what its maxmemory limits); null for PostgreSQL. */
  memoryBytes: number | null;
  /** When (ms, Redis clock). */
  measuredAt: number;
}

/** An add-on as stored, password included: only the registry and the add-on's hoster read it. */
export interface StoredAddon {
  id: string;
  name: string;
  kind: AddonKind;
  machine: string;
  /** The machine's address the server listens on (apps of every machine reach it there). */
  host: string;
  port: number;
  memoryMb: number;
  password: string;
  createdAt: number;
  createdBy: string;
  /** App → the variable it has the add-on's URL in. */
  attachments: Record<string, string>;
  state: AddonServerState;
  /** The claim's epoch (0 before the first). */
  epoch: number;
  /** When the holder's lease ends (ms, Redis clock; 0 when none holds it). */
  leaseUntil: number;
  pid: number | null;
  detail: string;
  restarts: number;
  /** null before its holder first measured it. */
  usage: AddonUsage | null;
  /** Scheduled backups (setAddonBackupSchedule); null when off. */
  backupSchedule: StoredBackupSchedule | null;
  /** The last scheduled backup tried (kept when the schedule is turned off); null before any. */
  scheduled: { at: number; backup: string; error: string } | null;
}

export interface StoredBackupSchedule {
  everyMs: number;
  /** The last period taken: floor(time / everyMs) of Redis's clock. */
  slot: number;
}

export interface NewAddon {
  id: string;
  name: string;
  kind: AddonKind;
  machine: string;
  host: string;
  portRange: readonly [number, number];
  memoryMb: number;
  password: string;
  createdBy: string;
}

/** Add-ons in Redis: their records, attachments, the leases of the hosters that run them. */
export class AddonStore {
  readonly keys: AddonKeys;

  constructor(
    private readonly redis: RedisClient,
    registry: RegistryKeys,
  ) {
    this.keys = addonKeys(registry);
  }

  async create(input: NewAddon): Promise<StoredAddon> {
    const k = this.keys;
    await createAddon.run(this.redis, {
      keys: { addon: k.addon(input.name), addons: k.addons, machineAddons: k.machineAddons(input.machine), machineAddonPorts: k.machineAddonPorts(input.machine) },
      args: {
        name: input.name,
        id: input.id,
        kind: input.kind,
        machine: input.machine,
        host: input.host,
        portFirst: input.portRange[0],
        portLast: input.portRange[1],
        memoryMb: input.memoryMb,
        password: input.password,
        createdBy: input.createdBy,
      },
    });
    return (await this.get(input.name))!;
  }

  async get(name: string): Promise<StoredAddon | undefined> {
    const f = await redisCall(() => this.redis.hgetall(this.keys.addon(name)));
    return f.id === undefined ? undefined : addonOf(f);
  }

  /** Every add-on, or those pinned to one machine (its hoster's list). */
  async list(machine?: string): Promise<StoredAddon[]> {
    const names = await redisCall(() => this.redis.smembers(machine === undefined ? this.keys.addons : this.keys.machineAddons(machine)));
    const pipeline = this.redis.pipeline();
    for (const name of names.sort()) pipeline.hgetall(this.keys.addon(name));
    const replies = (await redisCall(() => pipeline.exec())) ?? [];
    return replies.map(([, f]) => f as Record<string, string>).filter((f) => f.id !== undefined).map(addonOf);
  }

  /** An app's attached variables → add-on name. */
  async attachmentsOf(app: string): Promise<Record<string, string>> {
    return redisCall(() => this.redis.hgetall(this.keys.appAddons(app)));
  }

  /** Records the attachment; replies the variable the app had the add-on as before ('' when none). */
  async attach(name: string, app: string, variable: string): Promise<string> {
    const [, before] = await attachAddon.run(this.redis, { keys: { addon: this.keys.addon(name), appAddons: this.keys.appAddons(app) }, args: { name, app, variable } });
    return before;
  }

  /** Forgets the attachment; replies the variable it was. */
  async detach(name: string, app: string): Promise<string> {
    return detachAddon.run(this.redis, { keys: { addon: this.keys.addon(name), appAddons: this.keys.appAddons(app) }, args: { name, app } });
  }

  async destroy(name: string, machine: string): Promise<void> {
    const k = this.keys;
    await destroyAddon.run(this.redis, {
      keys: { addon: k.addon(name), addons: k.addons, machineAddons: k.machineAddons(machine), machineAddonPorts: k.machineAddonPorts(machine), machineAddonTrash: k.machineAddonTrash(machine) },
      args: { name, machine },
    });
  }

  /**
   * Re-pins the add-on, as read, to another machine (moveAddon-7.lua): a new id, a port there,
   * no claim; the old machine's copy goes to its trash. Refused (addon_changed) when it moved or
   * was re-created since `addon` was read, (machine_unavailable) when `to` is silent.
   */
  async move(addon: Pick<StoredAddon, 'name' | 'id' | 'machine'>, to: { machine: string; host: string; newId: string; portRange: readonly [number, number]; silentMs: number }): Promise<StoredAddon> {
    const k = this.keys;
    const from = addon.machine;
    await moveAddon.run(this.redis, {
      keys: {
        addon: k.addon(addon.name),
        fromAddons: k.machineAddons(from),
        fromPorts: k.machineAddonPorts(from),
        fromTrash: k.machineAddonTrash(from),
        toAddons: k.machineAddons(to.machine),
        toPorts: k.machineAddonPorts(to.machine),
        toMachine: k.machine(to.machine),
      },
      args: { name: addon.name, id: addon.id, from, machine: to.machine, newId: to.newId, host: to.host, portFirst: to.portRange[0], portLast: to.portRange[1], silentMs: to.silentMs },
    });
    return (await this.get(addon.name))!;
  }

  /** Takes the add-on's lease for this machine: its epoch and lease end, or undefined while another claim's lease runs. */
  async claim(addon: Pick<StoredAddon, 'name' | 'id'>, machine: string, leaseMs: number): Promise<{ epoch: number; leaseUntil: number } | undefined> {
    const reply = await claimAddon.run(this.redis, { keys: { addon: this.keys.addon(addon.name), epoch: this.keys.epoch }, args: { machine, leaseMs, id: addon.id } });
    if (reply === SCRIPT_FAILURE.addonHeld || typeof reply === 'number') return undefined;
    return { epoch: Number(reply[0]), leaseUntil: Number(reply[1]) };
  }

  /** Renews the lease with the server's state (fenced by the epoch: stale_epoch once lost); 'released' gives it back. */
  async report(name: string, holder: { machine: string; epoch: number; leaseMs: number }, server: { state: AddonServerState | 'released'; pid: number | null; detail: string; restarts: number }): Promise<number> {
    return reportAddon.run(this.redis, {
      keys: { addon: this.keys.addon(name) },
      args: { machine: holder.machine, epoch: holder.epoch, leaseMs: holder.leaseMs, state: server.state, pid: server.pid ?? '', detail: server.detail.slice(0, 500), restarts: server.restarts },
    });
  }

  /** Records a measurement of its server, fenced by the epoch as report is (stale_epoch once lost); touches nothing of its state. */
  async reportUsage(name: string, holder: { machine: string; epoch: number }, usage: Omit<AddonUsage, 'measuredAt'>): Promise<number> {
    return reportAddonUsage.run(this.redis, {
      keys: { addon: this.keys.addon(name) },
      args: { machine: holder.machine, epoch: holder.epoch, bytes: usage.bytes, connections: usage.connections, memoryBytes: usage.memoryBytes ?? '' },
    });
  }

  /** Sets the period of its scheduled backups (0: off); replies when the next is due (0 when off). */
  async setBackupSchedule(name: string, everyMs: number): Promise<number> {
    return setAddonBackupSchedule.run(this.redis, { keys: { addon: this.keys.addon(name) }, args: { name, everyMs } });
  }

  /** Claims the current period's scheduled backup of the add-on as read: its slot and the claim's time (Redis clock), or undefined when not this caller's to take. */
  async claimScheduledBackup(addon: Pick<StoredAddon, 'name' | 'id'>): Promise<{ slot: number; at: number } | undefined> {
    const reply = await claimAddonBackup.run(this.redis, { keys: { addon: this.keys.addon(addon.name) }, args: { name: addon.name, id: addon.id } });
    return Array.isArray(reply) ? { slot: Number(reply[0]), at: Number(reply[1]) } : undefined;
  }

  /** Records how a scheduled backup went: its id, or why it failed. */
  async recordScheduledBackup(addon: Pick<StoredAddon, 'name' | 'id'>, at: number, outcome: { backup: string } | { error: string }): Promise<void> {
    await recordAddonBackup.run(this.redis, {
      keys: { addon: this.keys.addon(addon.name) },
      args: { name: addon.name, id: addon.id, at, backup: 'backup' in outcome ? outcome.backup : '', error: 'error' in outcome ? outcome.error.slice(0, 500) : '' },
    });
  }

  /** Destroyed add-ons whose data this machine still holds: id → kind. */
  async trash(machine: string): Promise<Record<string, string>> {
    return redisCall(() => this.redis.hgetall(this.keys.machineAddonTrash(machine)));
  }

  async emptyTrash(machine: string, id: string): Promise<void> {
    await redisCall(() => this.redis.hdel(this.keys.machineAddonTrash(machine), id));
  }
}

function addonOf(f: Record<string, string>): StoredAddon {
  const attachments: Record<string, string> = {};
  for (const [field, value] of Object.entries(f)) if (field.startsWith('attach:')) attachments[field.slice(7)] = value;
  return {
    id: f.id!,
    name: f.name ?? '',
    kind: (f.addonKind ?? 'redis') as AddonKind,
    machine: f.machine ?? '',
    host: f.host ?? '',
    port: Number(f.port),
    memoryMb: Number(f.memoryMb),
    password: f.password ?? '',
    createdAt: Number(f.createdAt),
    createdBy: f.createdBy ?? '',
    attachments,
    state: (f.state || 'unclaimed') as AddonServerState,
    epoch: Number(f.epoch ?? 0),
    leaseUntil: Number(f.leaseUntil ?? 0),
    pid: f.pid ? Number(f.pid) : null,
    detail: f.detail ?? '',
    restarts: Number(f.restarts ?? 0),
    usage: f.usageAt
      ? { bytes: Number(f.usageBytes), connections: Number(f.usageConnections), memoryBytes: f.usageMemoryBytes ? Number(f.usageMemoryBytes) : null, measuredAt: Number(f.usageAt) }
      : null,
    backupSchedule: Number(f.backupEveryMs ?? 0) > 0 ? { everyMs: Number(f.backupEveryMs), slot: Number(f.backupSlot ?? 0) } : null,
    scheduled: f.scheduledAt ? { at: Number(f.scheduledAt), backup: f.scheduledBackup ?? '', error: f.scheduledError ?? '' } : null,
  };
}
