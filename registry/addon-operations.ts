import { randomBytes } from 'node:crypto';
import { BerthError } from '../common/errors.js';
import { NAME_PATTERN } from '../common/names.js';
import type { Addon, AddonBackup, AddonBackupSchedule, AddonState, AppAddon, CreateAddonRequest } from '../sdk/types.js';
import { DEFAULT_ADDON_BACKUP_MIN_EVERY_MS, formatBackupPeriod, parseBackupPeriod } from './addon-backup-period.js';
import type { AddonBackups } from './addon-backups.js';
import type { AppOperations } from './app-operations.js';
import { ADDON_KINDS, postgresIdentifier, type AddonKind, type AddonStore, type AppStore, type Machine, type RegistryStore, type StoredAddon, type StoredBackupSchedule } from './store/index.js';

/** Ports add-on servers listen on, per machine (outside the hosters' instance ports, 20000-29999 by default). @default [15400, 15599] */
export const DEFAULT_ADDON_PORT_RANGE: readonly [number, number] = [15_400, 15_599];
/** The plan's memory when none is given (MB). @default 256 */
export const DEFAULT_ADDON_MEMORY_MB = 256;
/** A machine not heard from for this long holds its add-ons unavailable. @default 30000 */
export const DEFAULT_ADDON_SILENT_MS = 30_000;
/** How long a moved add-on may take to run on its new machine before the restore gives up (the request's own limit is 5 min). @default 120000 */
export const DEFAULT_ADDON_MOVE_START_MS = 120_000;
/** How often a restore that moves the add-on looks whether it runs on its new machine. */
const MOVE_POLL_MS = 250;

const DEFAULT_VARIABLE: Record<AddonKind, string> = { postgres: 'DATABASE_URL', redis: 'REDIS_URL' };

export interface AddonOperationsOptions {
  addons: AddonStore;
  apps: AppStore;
  appOperations: AppOperations;
  store: RegistryStore;
  /** @default DEFAULT_ADDON_PORT_RANGE */
  portRange?: readonly [number, number];
  /** @default DEFAULT_ADDON_SILENT_MS */
  silentMs?: number;
  /** Backups (registry/addon-backups.ts); absent: refused as unavailable. */
  backups?: AddonBackups;
  /** @default DEFAULT_ADDON_MOVE_START_MS */
  moveStartMs?: number;
  /** The shortest period of scheduled backups. @default DEFAULT_ADDON_BACKUP_MIN_EVERY_MS */
  backupMinEveryMs?: number;
}


/**
 * Add-ons as a user sees them: create (pinned to a machine, credentials made, attached to the
 * app), attach and detach (each a new release of the app that sets or unsets its variable),
 * destroy (confirmed by name). Their hosters run them (hoster/addon-supervisor.ts).
 */
export class AddonOperations {
  private readonly portRange: readonly [number, number];
  private readonly silentMs: number;
  private readonly moveStartMs: number;

  constructor(private readonly o: AddonOperationsOptions) {
    this.portRange = o.portRange ?? DEFAULT_ADDON_PORT_RANGE;
    this.silentMs = o.silentMs ?? DEFAULT_ADDON_SILENT_MS;
    this.moveStartMs = o.moveStartMs ?? DEFAULT_ADDON_MOVE_START_MS;
  }

  async create(input: CreateAddonRequest, user: string): Promise<Addon> {
    const kind = kindOf(input.kind);
    // Everything is checked before anything is written: bad input changes nothing.
    await this.o.apps.get(input.app);
    const variable = input.as ?? DEFAULT_VARIABLE[kind];
    const attached = await this.o.addons.attachmentsOf(input.app);
    if (attached[variable] !== undefined) {
      throw new BerthError('addon_var_taken', `${input.app} already has the add-on ${attached[variable]} attached as ${variable}: detach it first (berth addons:detach ${attached[variable]} ${input.app}), or choose another variable (--as VAR).`);
    }
    await this.refuseHandSet(input.app, variable);
    const machine = await this.machineFor(input.machine);
    let name = input.name ?? `${input.app}-${kind}`;
    if (input.name === undefined && (await this.o.addons.get(name)) !== undefined) name = `${input.app}-${kind}-${randomBytes(2).toString('hex')}`;
    if (!NAME_PATTERN.test(name)) {
      throw new BerthError('invalid_request', `Invalid body: name: ${name} is not a valid add-on name (a-z, 0-9 and "-", starting with a letter, at most 63 characters): give one with --name.`);
    }
    await this.o.addons.create({
      id: randomBytes(8).toString('hex'),
      name,
      kind,
      machine: machine.name,
      host: hostOf(machine),
      portRange: this.portRange,
      memoryMb: input.memoryMb ?? DEFAULT_ADDON_MEMORY_MB,
      password: randomBytes(24).toString('hex'),
      createdBy: user,
    });
    try {
      await this.attach(name, input.app, variable, user);
    } catch (err) {
      // No release took it (the app changed, or was deleted, meanwhile): it goes as it came, before its server ever ran.
      await this.o.addons.destroy(name, machine.name).catch(() => undefined);
      throw err;
    }
    return this.info(name);
  }

  async info(name: string): Promise<Addon> {
    const stored = await this.stored(name);
    const [machines, now] = await Promise.all([this.o.store.listMachines(), this.o.store.now()]);
    return this.view(stored, machines, now);
  }

  async list(): Promise<Addon[]> {
    const [stored, machines, now] = await Promise.all([this.o.addons.list(), this.o.store.listMachines(), this.o.store.now()]);
    return stored.map((a) => this.view(a, machines, now));
  }

  /** The add-ons attached to an app, for its details (berth info). */
  async ofApp(app: string): Promise<AppAddon[]> {
    const attached = await this.o.addons.attachmentsOf(app);
    if (Object.keys(attached).length === 0) return [];
    const [machines, now] = await Promise.all([this.o.store.listMachines(), this.o.store.now()]);
    const out: AppAddon[] = [];
    for (const [variable, name] of Object.entries(attached).sort()) {
      const stored = await this.o.addons.get(name);
      if (stored === undefined) continue;
      out.push({ name, kind: stored.kind, variable, state: this.view(stored, machines, now).state });
    }
    return out;
  }

  /** Attaches the add-on to an app as `variable` (its kind's default when not given): a new release with the URL set. */
  async attach(name: string, app: string, variable: string | undefined, user: string): Promise<Addon> {
    const stored = await this.stored(name);
    await this.o.apps.get(app);
    const as = variable ?? DEFAULT_VARIABLE[stored.kind];
    await this.refuseHandSet(app, as);
    const before = await this.o.addons.attach(name, app, as);
    try {
      await this.o.appOperations.changeConfig(app, { set: { [as]: connectionUrl(stored, true) }, unset: before !== '' && before !== as ? [before] : [] }, user, `Attach ${name} as ${as}`);
    } catch (err) {
      // The app keeps the variable it had: so does the record.
      await (before === '' ? this.o.addons.detach(name, app) : this.o.addons.attach(name, app, before)).catch(() => undefined);
      throw err;
    }
    return this.info(name);
  }

  /** Detaches the add-on from an app: a new release without its variable. */
  async detach(name: string, app: string, user: string): Promise<Addon> {
    await this.stored(name);
    const variable = await this.o.addons.detach(name, app);
    await this.o.appOperations.changeConfig(app, { unset: [variable] }, user, `Detach ${name} (${variable})`).catch((err: unknown) => {
      // An app deleted meanwhile has no variable left to unset.
      if (!(err instanceof BerthError && err.code === 'app_not_found')) throw err;
    });
    return this.info(name);
  }

  /** Detaches every app, then removes the record; its machine's hoster stops the server and removes its data. */
  async destroy(name: string, confirm: string | undefined, user: string): Promise<Addon> {
    if (confirm !== name) {
      throw new BerthError('confirmation_required', `Destroying ${name} removes its data for good: repeat its name to confirm (berth addons:destroy ${name} --confirm ${name}).`);
    }
    let addon = await this.info(name);
    for (const { app } of addon.attachments) addon = await this.detach(name, app, user);
    const stored = await this.stored(name);
    await this.o.addons.destroy(name, stored.machine);
    return { ...addon, attachments: [] };
  }

  /** Takes a backup now (the add-on must be running). */
  async backup(name: string): Promise<AddonBackup> {
    const stored = await this.runningOne(name);
    return this.backupsOrThrow().take(stored);
  }

  /** Backs the add-on up once per period (`every`: 24h, 30m…, or off), across every registry (addon-backup-scheduler.ts). */
  async scheduleBackups(name: string, every: string): Promise<Addon> {
    const everyMs = parseBackupPeriod(every, this.o.backupMinEveryMs ?? DEFAULT_ADDON_BACKUP_MIN_EVERY_MS);
    this.backupsOrThrow();
    await this.o.addons.setBackupSchedule(name, everyMs);
    return this.info(name);
  }

  async backups(name: string): Promise<AddonBackup[]> {
    // The backups of a destroyed add-on stay listed under its name, for a new one to restore.
    return this.backupsOrThrow().list(name);
  }

  /**
   * Replaces the add-on's data with a backup of its name and kind; `confirm` repeats the name.
   * With `toMachine` (another machine than its own: its own is a plain restore) the add-on
   * moves there first, the way out when its machine died: see move.
   */
  async restore(name: string, backup: string, confirm: string | undefined, options: { toMachine?: string; user?: string } = {}): Promise<AddonBackup> {
    if (confirm !== name) {
      throw new BerthError('confirmation_required', `Restoring replaces every row or key ${name} holds now: repeat its name to confirm (berth addons:restore ${name} ${backup}${options.toMachine === undefined ? '' : ` --to-machine ${options.toMachine}`} --confirm ${name}).`);
    }
    // A backup that is not this add-on's, or of the other kind, is refused before its state matters.
    const stored = await this.stored(name);
    this.backupsOrThrow().check(stored, backup);
    if (options.toMachine !== undefined && options.toMachine !== stored.machine) return this.move(stored, backup, options.toMachine, options.user ?? 'berth');
    return this.backupsOrThrow().restore(await this.runningOne(name), backup);
  }

  /**
   * Moves the add-on to `to` and loads the backup there: its record is re-pinned in one script
   * (a new id, so that the old machine's hoster, if it returns, neither runs it nor keeps its old
   * data), `to`'s hoster starts it with fresh data, the backup is loaded once it runs, and every
   * attached app gets the new address in its variable as a new release, as attach does.
   */
  private async move(stored: StoredAddon, backup: string, to: string, user: string): Promise<AddonBackup> {
    const machine = await this.liveMachine(to);
    const moved = await this.o.addons.move(stored, { machine: machine.name, host: hostOf(machine), newId: randomBytes(8).toString('hex'), portRange: this.portRange, silentMs: this.silentMs });
    let restored: AddonBackup | undefined;
    let failure: unknown;
    try {
      await this.runningOn(moved);
      restored = await this.backupsOrThrow().restore(moved, backup);
    } catch (err) {
      failure = err;
    }
    // The apps follow the record whatever came of the load: their old address is of a machine it left.
    const unreleased: string[] = [];
    for (const [app, variable] of Object.entries(moved.attachments).sort()) {
      await this.o.appOperations.changeConfig(app, { set: { [variable]: connectionUrl(moved, true) } }, user, `Move ${moved.name} to ${machine.name} (restored from ${backup})`).catch((err: unknown) => {
        // An app deleted meanwhile has no variable left to set.
        if (!(err instanceof BerthError && err.code === 'app_not_found')) unreleased.push(`${app} (${err instanceof Error ? err.message : String(err)})`);
      });
    }
    const again = `berth addons:restore ${moved.name} ${backup} --confirm ${moved.name}`;
    if (failure !== undefined) {
      const words = failure instanceof Error ? failure.message : String(failure);
      throw new BerthError(failure instanceof BerthError ? failure.code : 'addon_backup_failed', `${moved.name} moved to ${machine.name}, but the backup was not loaded: ${words} Once it runs there, load it again (${again}).`);
    }
    if (unreleased.length > 0) {
      throw new BerthError('release_conflict', `${moved.name} moved to ${machine.name} and holds the backup ${backup}, but these apps did not get its new address: ${unreleased.join('; ')}. Attach it again (berth addons:attach ${moved.name} APP).`);
    }
    return restored!;
  }

  /** Waits until the moved add-on runs on its new machine (its hoster takes it at its next look, and a PostgreSQL first makes its data folder). */
  private async runningOn(moved: StoredAddon): Promise<void> {
    const deadline = Date.now() + this.moveStartMs;
    for (;;) {
      const now = await this.o.addons.get(moved.name);
      if (now === undefined || now.id !== moved.id) throw new BerthError('addon_changed', `${moved.name} was destroyed or moved again meanwhile.`);
      const view = await this.info(moved.name);
      if (view.state === 'running') return;
      if (Date.now() > deadline) throw new BerthError('addon_unavailable', `it did not run on ${moved.machine} within ${Math.round(this.moveStartMs / 1000)} s (${view.state}${view.detail === '' ? '' : `: ${view.detail}`}).`);
      await new Promise((resolve) => setTimeout(resolve, MOVE_POLL_MS));
    }
  }

  /** A machine to move an add-on to: known, and its hoster heard from lately (moveAddon checks again, atomically). */
  private async liveMachine(name: string): Promise<Machine> {
    const [machines, now] = await Promise.all([this.o.store.listMachines(), this.o.store.now()]);
    const machine = machines.find((m) => m.name === name);
    if (machine === undefined) throw new BerthError('machine_not_found', `No machine is named ${name}: berth machines lists them.`);
    if (now - machine.heartbeatAt > this.silentMs) {
      throw new BerthError('machine_unavailable', `The hoster of ${name} has not been heard from for ${Math.round((now - machine.heartbeatAt) / 1000)} s: start it there (berth hoster), or choose a machine whose hoster runs (berth machines).`);
    }
    return machine;
  }

  /** A variable the app has from config:set is the user's: attach never overwrites it. */
  private async refuseHandSet(app: string, variable: string): Promise<void> {
    const [config, attached] = await Promise.all([this.o.appOperations.config(app), this.o.addons.attachmentsOf(app)]);
    if (config[variable] !== undefined && attached[variable] === undefined) {
      throw new BerthError('addon_var_taken', `${app} has ${variable} set by config:set: unset it first (berth config:unset ${app} ${variable}), or attach as another variable (--as VAR).`);
    }
  }

  private backupsOrThrow(): AddonBackups {
    if (this.o.backups === undefined) throw new BerthError('addon_unavailable', 'This registry keeps no add-on backups.');
    return this.o.backups;
  }

  private async runningOne(name: string): Promise<StoredAddon> {
    const stored = await this.stored(name);
    const view = await this.info(name);
    if (view.state !== 'running') throw new BerthError('addon_unavailable', `${name} is ${view.state}${view.detail === '' ? '' : ` (${view.detail})`}: retry once it runs (berth addons:info ${name}).`);
    return stored;
  }

  private async stored(name: string): Promise<StoredAddon> {
    const stored = await this.o.addons.get(name);
    if (stored === undefined) throw new BerthError('addon_not_found', `No add-on is named ${name}: list them with berth addons:list.`);
    return stored;
  }

  private async machineFor(name: string | undefined): Promise<Machine> {
    const [machines, now] = await Promise.all([this.o.store.listMachines(), this.o.store.now()]);
    if (name !== undefined) {
      const machine = machines.find((m) => m.name === name);
      if (machine === undefined) throw new BerthError('machine_not_found', `No machine is named ${name}: berth machines lists them.`);
      return machine;
    }
    // Chosen by room: the live machine with the most free memory.
    const live = machines.filter((m) => now - m.heartbeatAt <= this.silentMs);
    const best = live.sort((a, b) => (b.facts.freeMemoryMb ?? 0) - (a.facts.freeMemoryMb ?? 0))[0];
    if (best === undefined) throw new BerthError('machine_not_found', 'No machine has been heard from lately to run the add-on: start a hoster (berth hoster), or name a machine (--machine).');
    return best;
  }

  private view(a: StoredAddon, machines: Machine[], now: number): Addon {
    const machine = machines.find((m) => m.name === a.machine);
    let state: AddonState = a.state;
    let detail = a.detail;
    if (machine === undefined || now - machine.heartbeatAt > this.silentMs) {
      state = 'unavailable';
      detail = machine === undefined ? `its machine ${a.machine} is not known` : `its machine ${a.machine} has not been heard from for ${Math.round((now - machine.heartbeatAt) / 1000)} s`;
    } else if (a.epoch > 0 && a.state !== 'stopped' && a.leaseUntil < now) {
      state = 'unavailable';
      detail = `the hoster of ${a.machine} stopped renewing its hold ${Math.round((now - a.leaseUntil) / 1000)} s ago`;
    }
    return {
      name: a.name,
      kind: a.kind,
      machine: a.machine,
      host: a.host,
      port: a.port,
      memoryMb: a.memoryMb,
      state,
      detail,
      restarts: a.restarts,
      url: connectionUrl(a, false),
      attachments: Object.entries(a.attachments).sort().map(([app, variable]) => ({ app, variable })),
      createdAt: a.createdAt,
      createdBy: a.createdBy,
      usage: a.usage === null ? null : { ...a.usage },
      backupSchedule: a.backupSchedule === null ? null : scheduleView(a.backupSchedule, now),
      lastScheduledBackup: a.scheduled === null ? null : { at: a.scheduled.at, backup: a.scheduled.backup === '' ? null : a.scheduled.backup, error: a.scheduled.error === '' ? null : a.scheduled.error },
    };
  }
}

/** The next period's start, or now when the current one is due and not yet taken. */
function scheduleView(s: StoredBackupSchedule, now: number): AddonBackupSchedule {
  const current = Math.floor(now / s.everyMs);
  return { every: formatBackupPeriod(s.everyMs), everyMs: s.everyMs, nextAt: s.slot >= current ? (current + 1) * s.everyMs : now };
}

function kindOf(kind: string): AddonKind {
  if ((ADDON_KINDS as readonly string[]).includes(kind)) return kind as AddonKind;
  throw new BerthError('addon_kind_unknown', `berth has no add-on of kind ${JSON.stringify(kind.slice(0, 40))}: give postgres or redis.`);
}

/** The URL an app connects with; without the password, as addons:info shows it. */
export function connectionUrl(a: Pick<StoredAddon, 'kind' | 'name' | 'host' | 'port' | 'password'>, withPassword: boolean): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  if (a.kind === 'postgres') {
    const id = postgresIdentifier(a.name);
    return `postgres://${id}${withPassword ? `:${a.password}` : ''}@${host}:${a.port}/${id}`;
  }
  return `redis://${withPassword ? `:${a.password}@` : ''}${host}:${a.port}`;
}

/** The address of the machine apps reach: its proxy's host (the address other machines reach it at). */
function hostOf(machine: Machine): string {
  const proxy = machine.facts.proxy;
  if (typeof proxy === 'string' && proxy !== '') {
    try {
      const host = new URL(proxy).hostname.replace(/^\[|\]$/g, '');
      if (host !== '' && host !== '0.0.0.0' && host !== '::') return host;
    } catch {
      // Not a URL: loopback below.
    }
  }
  return '127.0.0.1';
}
