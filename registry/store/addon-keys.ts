import type { RegistryKeys } from './keys.js';

/**
 * The keys of add-ons (databases for apps: a PostgreSQL or a Redis pinned to one machine), under
 * the registry's prefix (and its hash tag), kept beside keys.ts so that add-ons stay an entity
 * of their own as runs do.
 */
export interface AddonKeys {
  /**
   * Hash of one add-on: id, name, addonKind, machine, host, port, memoryMb, password, createdAt,
   * createdBy, and `attach:<app>` → the variable it is attached as; once its machine's hoster
   * holds it: epoch, leaseUntil (ms, Redis clock), state, pid, detail, restarts, startedAt; once it
   * measured its server: usageBytes, usageConnections, usageMemoryBytes ('' for PostgreSQL), usageAt;
   * with scheduled backups: backupEveryMs, backupSlot (the last period taken); once one was tried:
   * scheduledAt, scheduledBackup (the last taken), scheduledError ('' when the last worked).
   */
  addon(name: string): string;
  /** Set of every add-on's name. */
  readonly addons: string;
  /** Set of the add-on names pinned to a machine (its hoster's whole list). */
  machineAddons(machine: string): string;
  /** Hash of port → add-on name of a machine: two add-ons of one machine never share a port. */
  machineAddonPorts(machine: string): string;
  /** Hash of an app's attached variables → add-on name. */
  appAddons(app: string): string;
  /** Hash of add-on id → kind of the destroyed add-ons whose data a machine's hoster still has to remove. */
  machineAddonTrash(machine: string): string;
  /** Hash of a machine (its heartbeat: keys.ts's machine). */
  machine(name: string): string;
  /** The epoch counter shared with instance claims: a later claim has a higher epoch. */
  readonly epoch: string;
}

export function addonKeys(keys: RegistryKeys): AddonKeys {
  const p = keys.prefix;
  return {
    addon: (name) => `${p}addon:${name}`,
    addons: `${p}addons`,
    machineAddons: (machine) => `${p}machine:${machine}:addons`,
    machineAddonPorts: (machine) => `${p}machine:${machine}:addon-ports`,
    appAddons: (app) => `${p}app:${app}:addons`,
    machineAddonTrash: (machine) => `${p}machine:${machine}:addon-trash`,
    machine: (name) => keys.machine(name),
    epoch: keys.epoch,
  };
}
