import { BerthError } from '../common/errors.js';
import type { AutoscaleRequest, PublishRequest, UpdateRequest } from '../sdk/types.js';
import { WEB_PROCESS, type Procfile } from '../common/procfile.js';
import { releaseProcesses, type ReleaseProcesses } from './release-processes.js';
import { MAX_ENV_BYTES, MAX_ENV_KEYS } from './api/app-schemas.js';
import { appDetails, DEFAULT_AUTOSCALE, DEFAULT_HEALTH_CHECK, type AppDetails, type HealthCheck, type Release, type AppStore, type ReleaseInput, type Attributes, type Instance, type RegistryStore } from './store/index.js';

/** What publish and update take: the SDK's request bodies, validated (api/app-schemas.ts). */
export type PublishInput = PublishRequest;
export type UpdateInput = UpdateRequest;

export interface AppOperationsOptions {
  apps: AppStore;
  store: RegistryStore;
  /** Whether a bundle with this digest is stored. */
  bundleExists: (digest: string) => Promise<boolean>;
  /** The Procfile of a stored bundle (registry/bundle-procfile.ts); absent: bundles have none. */
  bundleProcfile?: (digest: string) => Promise<Procfile>;
  /** Base URL apps are served under (e.g. https://paas.example.com), or null when unknown. */
  publicUrl: string | null;
  /** The add-ons attached to an app, for its details (registry/addon-operations.ts); absent: none are shown. */
  addonsOf?: (app: string) => Promise<NonNullable<AppDetails['addons']>>;
  /** The app's variables that hold an add-on's URL (variable → add-on name); absent: none. */
  addonVariables?: (app: string) => Promise<Record<string, string>>;
}

/** Where a release's code came from when it is not a folder: a pushed commit (registry/git). */
export interface ReleaseOrigin {
  /** The commit id, 40 hex. */
  commit: string;
  /** The release's description, e.g. "Deploy 3f2a9c1: Fix the header". */
  description: string;
}

const RELEASE_RETRIES = 5;

/**
 * The app layer's operations (the seed's PublishApp, UpdateApp, DeleteApp, GetAppDetails,
 * ListApps, ListAppInstances, plus scale, rollback and config). They record what the user
 * wants; the reconciler makes it so.
 */
export class AppOperations {
  constructor(private readonly o: AppOperationsOptions) {}

  async publish(input: PublishInput, user: string, origin?: ReleaseOrigin): Promise<AppDetails> {
    await this.requireBundle(input.bundle);
    const processes = releaseProcesses({ procfile: await this.procfileOf(input.bundle), given: input });
    await this.o.apps.create({
      name: input.name,
      path: input.path,
      instances: input.instances,
      stripPrefix: input.stripPrefix ?? false,
      release: {
        bundle: input.bundle,
        env: input.env ?? {},
        // The Procfile's web: line stays the hoster's to read (start-command.ts), so new code brings its own.
        command: input.command ?? input.processes?.web ?? null,
        ...processFields(processes),
        requirements: input.attributes ?? {},
        healthCheck: { ...DEFAULT_HEALTH_CHECK, ...input.healthCheck },
        description: origin?.description ?? `Deploy ${input.bundle.slice(0, 7)}`,
        createdBy: user,
        ...(origin === undefined ? {} : { commit: origin.commit }),
      },
    });
    return this.details(input.name);
  }

  /** Changes code and/or configuration (a new release, rolled out) and/or settings. */
  async update(name: string, input: UpdateInput, user: string, origin?: ReleaseOrigin): Promise<AppDetails> {
    if (Object.values(input).every((v) => v === undefined)) throw new BerthError('nothing_to_change');
    if (input.bundle !== undefined) await this.requireBundle(input.bundle);
    // Read (and checked) before anything changes: a bad Procfile line leaves the app as it was.
    const procfile = input.bundle === undefined ? undefined : await this.procfileOf(input.bundle);
    // Back to the Procfile's release: line of the code that stays.
    const keptProcfile = input.bundle === undefined && input.releaseCommand === null ? await this.currentProcfile(name) : undefined;
    // Refused before any release is made: an update must not deploy and then answer 409. (The
    // settings script checks again, atomically, for a policy set meanwhile.)
    if (input.instances !== undefined && (await this.o.apps.get(name)).autoscale) {
      throw new BerthError('autoscale_on', `${name} scales automatically: leave out instances, change its policy (berth scale ${name} --min N --max N) or turn it off (berth scale ${name} --off).`);
    }
    const changesRelease =
      input.bundle !== undefined ||
      input.env !== undefined ||
      input.attributes !== undefined ||
      input.command !== undefined ||
      input.healthCheck !== undefined ||
      input.processes !== undefined ||
      input.releaseCommand !== undefined ||
      input.releaseTimeoutMs !== undefined;
    if (changesRelease) {
      await this.newRelease(name, user, (base) => {
        // New code has the origin it is given (none from a folder); the same code keeps its commit.
        const commit = input.bundle === undefined ? base.commit : origin?.commit;
        // New code brings its own Procfile; the same code keeps the types it had.
        const processes = releaseProcesses({ procfile, keptProcfile, base, given: input });
        const next: ReleaseInput = {
          bundle: input.bundle ?? base.bundle,
          env: input.env ?? base.env,
          command: input.command !== undefined ? input.command : input.processes?.web !== undefined ? input.processes.web : base.command,
          ...processFields(processes),
          requirements: input.attributes ?? base.requirements,
          healthCheck: input.healthCheck === undefined ? base.healthCheck : { ...DEFAULT_HEALTH_CHECK, ...input.healthCheck },
          description: origin?.description ?? describeChange(base, input),
          createdBy: user,
          ...(commit === undefined ? {} : { commit }),
        };
        return next;
      });
    }
    if (input.instances !== undefined || input.stripPrefix !== undefined) {
      await this.o.apps.updateSettings(name, { instances: input.instances, stripPrefix: input.stripPrefix });
    } else if (!changesRelease) {
      throw new BerthError('nothing_to_change');
    }
    return this.details(name);
  }

  /**
   * Sets instances wanted: `instances` is web's; `formation` names counts per process type
   * (`{"web":3,"worker":2}`), each a type of the current release (checked before anything changes).
   */
  async scale(name: string, settings: { instances?: number; stripPrefix?: boolean; formation?: Record<string, number> }): Promise<AppDetails> {
    if (settings.instances === undefined && settings.stripPrefix === undefined && settings.formation === undefined) throw new BerthError('nothing_to_change');
    const formation = { ...settings.formation };
    let instances = settings.instances;
    if (formation.web !== undefined) {
      if (instances !== undefined && instances !== formation.web) throw new BerthError('invalid_request', 'Invalid body: give web\'s count once, as instances or as formation.web.');
      instances = formation.web;
      delete formation.web;
    }
    if (Object.keys(formation).length > 0) await this.requireTypes(name, Object.keys(formation));
    await this.o.apps.updateSettings(name, { instances, stripPrefix: settings.stripPrefix, formation });
    return this.details(name);
  }

  /**
   * Turns automatic scaling of one process type on (or changes its policy): `type`, default
   * web, must be a type of the current release. The unset fields take their defaults.
   */
  async setAutoscale(name: string, request: AutoscaleRequest): Promise<AppDetails> {
    const { type = WEB_PROCESS, ...policy } = request;
    if (type !== WEB_PROCESS) {
      // Only web is routed: another type's instances have no requests in flight to aim for.
      if (policy.targetInFlight !== undefined) {
        throw new BerthError('invalid_request', `Invalid body: targetInFlight is web's only (a ${type} serves no requests): leave it out, the scaler aims for targetCpu.`);
      }
      await this.requireTypes(name, [type]);
    }
    await this.o.apps.setAutoscale(name, { ...DEFAULT_AUTOSCALE, ...policy }, type);
    return this.details(name);
  }

  /** Turns automatic scaling of one process type (default web) off: it keeps the instances it has. */
  async removeAutoscale(name: string, type = WEB_PROCESS): Promise<AppDetails> {
    await this.o.apps.setAutoscale(name, null, type);
    return this.details(name);
  }

  /** Refuses process types the app's current release does not have (web it always has). */
  private async requireTypes(name: string, wanted: string[]): Promise<void> {
    const app = await this.o.apps.get(name);
    const types = Object.keys((await this.o.apps.release(name, app.release))?.processes ?? {});
    const unknown = wanted.filter((t) => t !== WEB_PROCESS && !types.includes(t));
    if (unknown.length > 0) {
      const known = [WEB_PROCESS, ...types].join(', ');
      throw new BerthError('unknown_process_type', `${name} has no process type ${unknown.map((t) => `"${t}"`).join(', ')}: its types are ${known} (from its Procfile or --process).`);
    }
  }

  /** The scaler's recent decisions, newest first. */
  async scalerLog(limit: number, app?: string): Promise<Record<string, unknown>[]> {
    if (app !== undefined) await this.o.apps.get(app);
    return this.o.apps.scalerLog(limit, app);
  }

  async delete(name: string): Promise<AppDetails> {
    await this.o.apps.markDeleting(name);
    return this.details(name);
  }

  /** A new release with the code and configuration of `version` (default: the one before the current). */
  async rollback(name: string, version: number | undefined, user: string): Promise<Release> {
    const releases = await this.o.apps.releases(name);
    const app = await this.o.apps.get(name);
    let target: Release | undefined;
    if (version !== undefined) {
      target = releases.find((r) => r.version === version);
      if (target === undefined) throw new BerthError('release_not_found', `${name} has no release v${version}: list them with berth releases ${name}.`);
    } else {
      target = releases.find((r) => r.version < app.release && r.status !== 'failed');
      if (target === undefined) throw new BerthError('release_not_found', `${name} has no earlier working release to roll back to.`);
    }
    const rolledTo = target;
    const version2 = await this.newRelease(name, user, () => ({
      bundle: rolledTo.bundle,
      env: rolledTo.env,
      command: rolledTo.command,
      requirements: rolledTo.requirements,
      healthCheck: rolledTo.healthCheck,
      ...copiedProcesses(rolledTo),
      description: `Rollback to v${rolledTo.version}`,
      createdBy: user,
      ...(rolledTo.commit === undefined ? {} : { commit: rolledTo.commit }),
    }));
    return (await this.o.apps.release(name, version2))!;
  }

  /**
   * Restarts every instance without downtime: a new release with the current one's code and
   * configuration, rolled out like any other (the new instances pass their health check before
   * the old ones drain). A failed release cannot be restarted into: roll back instead.
   */
  async restart(name: string, user: string): Promise<Release> {
    const version = await this.newRelease(name, user, (base) => {
      if (base.status === 'failed') throw new BerthError('release_not_found', `${name}'s current release v${base.version} failed: fix it and publish again, or roll back (berth rollback ${name}).`);
      return { ...baseContent(base), description: `Restart (v${base.version})`, createdBy: user };
    });
    return (await this.o.apps.release(name, version))!;
  }

  /**
   * Replaces one running instance, make before break: it is flagged as its hoster flags an
   * evacuating one (with the claim read now), so the reconciler starts a replacement, waits for
   * it to run, then retires this one. The app's release does not change.
   */
  async restartInstance(name: string, id: string): Promise<Instance> {
    await this.o.apps.get(name);
    const instance = await this.o.store.getInstance(id).catch((err: unknown) => {
      if (err instanceof BerthError && err.code === 'instance_not_found') throw new BerthError('instance_not_found', `${name} has no instance ${id}: berth instances ${name} lists them.`);
      throw err;
    });
    if (instance.service !== name) throw new BerthError('instance_not_found', `${name} has no instance ${id}: berth instances ${name} lists them.`);
    if (instance.state !== 'running' || instance.machine === null) {
      throw new BerthError('invalid_state', `Instance ${id} of ${name} is ${instance.state}, not running: only a running instance is restarted (a starting one is replaced when it fails).`);
    }
    if (!instance.evacuating) await this.o.store.markEvacuating({ service: name, id, machine: instance.machine, epoch: instance.epoch });
    return this.o.store.getInstance(id);
  }

  async config(name: string): Promise<Record<string, string>> {
    const app = await this.o.apps.get(name);
    return (await this.o.apps.release(name, app.release))?.env ?? {};
  }

  /**
   * What config:set and config:unset do: changeConfig, but a variable that holds an add-on's URL
   * is the add-on's to set (attach) and unset (detach), as Heroku has it, so that the record of
   * what is attached never says other than the app's variables.
   */
  async configure(name: string, change: { set?: Record<string, string>; unset?: string[] }, user: string): Promise<Release> {
    const held = (await this.o.addonVariables?.(name)) ?? {};
    for (const key of [...Object.keys(change.set ?? {}), ...(change.unset ?? [])]) {
      const addon = held[key];
      if (addon !== undefined) {
        throw new BerthError('addon_var_taken', `${key} of ${name} holds the URL of the add-on ${addon}: detach it first (berth addons:detach ${addon} ${name}), or set another variable.`);
      }
    }
    return this.changeConfig(name, change, user);
  }

  /** Sets and unsets variables in one new release. */
  async changeConfig(name: string, change: { set?: Record<string, string>; unset?: string[] }, user: string, description?: string): Promise<Release> {
    const set = change.set ?? {};
    const unset = change.unset ?? [];
    if (Object.keys(set).length === 0 && unset.length === 0) throw new BerthError('nothing_to_change');
    const version = await this.newRelease(name, user, (base) => {
      const env = { ...base.env, ...set };
      for (const key of unset) delete env[key];
      // The request's own variables are checked on their own: the limits are on what the app ends up with.
      const count = Object.keys(env).length;
      if (count > MAX_ENV_KEYS) {
        throw new BerthError('invalid_request', `Invalid body: set: ${name} would have ${count} variables, over the limit of ${MAX_ENV_KEYS}: unset some.`);
      }
      const bytes = Buffer.byteLength(JSON.stringify(env));
      if (bytes > MAX_ENV_BYTES) {
        throw new BerthError('invalid_request', `Invalid body: set: ${name} would have ${bytes} bytes of variables, over the limit of ${MAX_ENV_BYTES}: unset some or send smaller values.`);
      }
      const parts = [];
      if (Object.keys(set).length > 0) parts.push(`Set ${Object.keys(set).join(', ')}`);
      if (unset.length > 0) parts.push(`Unset ${unset.join(', ')}`);
      return { ...baseContent(base), env, description: description ?? parts.join('; '), createdBy: user };
    });
    return (await this.o.apps.release(name, version))!;
  }

  async details(name: string): Promise<AppDetails> {
    const app = await this.o.apps.get(name);
    const [current, instances] = await Promise.all([this.o.apps.release(name, app.release), this.o.store.instancesOf(name)]);
    const details = appDetails(app, current ?? null, instances, this.o.publicUrl);
    if (this.o.addonsOf !== undefined) details.addons = await this.o.addonsOf(name);
    return details;
  }

  async list(): Promise<AppDetails[]> {
    const details = await Promise.all(
      (await this.o.apps.list()).map((app) =>
        // Deleted between the listing and this read: it is simply no longer listed.
        this.details(app.name).catch((err: unknown) => {
          if (err instanceof BerthError && err.code === 'app_not_found') return undefined;
          throw err;
        }),
      ),
    );
    return details.filter((d): d is AppDetails => d !== undefined);
  }

  async instances(name: string): Promise<Instance[]> {
    await this.o.apps.get(name);
    return this.o.store.instancesOf(name);
  }

  async releases(name: string): Promise<Release[]> {
    await this.o.apps.get(name);
    return this.o.apps.releases(name);
  }

  /** Makes a release from the current one, retrying when another change landed meanwhile. */
  private async newRelease(name: string, user: string, make: (base: Release) => ReleaseInput): Promise<number> {
    for (let attempt = 0; attempt < RELEASE_RETRIES; attempt++) {
      const app = await this.o.apps.get(name);
      const base = await this.o.apps.release(name, app.release);
      if (base === undefined) throw new BerthError('release_not_found', `${name} has no current release: publish it again.`);
      try {
        return await this.o.apps.createRelease(name, make(base), app.release);
      } catch (err) {
        if (!(err instanceof BerthError && err.code === 'release_conflict')) throw err;
      }
    }
    throw new BerthError('release_conflict');
  }

  private async currentProcfile(name: string): Promise<Procfile> {
    const app = await this.o.apps.get(name);
    const current = await this.o.apps.release(name, app.release);
    return current === undefined ? {} : this.procfileOf(current.bundle);
  }

  private async procfileOf(digest: string): Promise<Procfile> {
    return this.o.bundleProcfile === undefined ? {} : this.o.bundleProcfile(digest);
  }

  private async requireBundle(digest: string): Promise<void> {
    if (!(await this.o.bundleExists(digest))) {
      throw new BerthError('bundle_not_found', `No bundle ${digest} is stored: upload it first with PUT /v1/bundles/${digest}.`);
    }
  }
}

function baseContent(base: Release): Omit<ReleaseInput, 'description' | 'createdBy'> {
  return {
    bundle: base.bundle,
    env: base.env,
    command: base.command,
    requirements: base.requirements,
    healthCheck: base.healthCheck,
    ...copiedProcesses(base),
    ...(base.commit === undefined ? {} : { commit: base.commit }),
  };
}

function processFields(p: ReleaseProcesses): Pick<ReleaseInput, 'processes' | 'releaseCommand' | 'releaseTimeoutMs'> {
  return { processes: p.processes, releaseCommand: p.releaseCommand, ...(p.releaseTimeoutMs === undefined ? {} : { releaseTimeoutMs: p.releaseTimeoutMs }) };
}

/** A release's process types and release command, as a release that keeps its code keeps them. */
function copiedProcesses(base: Release): Pick<ReleaseInput, 'processes' | 'releaseCommand' | 'releaseTimeoutMs'> {
  return {
    processes: base.processes ?? {},
    releaseCommand: base.releaseCommand ?? null,
    ...(base.releaseTimeoutMs === undefined ? {} : { releaseTimeoutMs: base.releaseTimeoutMs }),
  };
}

function describeChange(base: Release, input: UpdateInput): string {
  const parts: string[] = [];
  if (input.bundle !== undefined && input.bundle !== base.bundle) parts.push(`Deploy ${input.bundle.slice(0, 7)}`);
  if (input.env !== undefined) parts.push('Replace environment');
  if (input.command !== undefined) parts.push(input.command === null ? 'Default command' : `Command ${input.command}`);
  if (input.attributes !== undefined) parts.push('Change requirements');
  if (input.healthCheck !== undefined) parts.push('Change health check');
  if (input.processes !== undefined) parts.push(`Processes ${Object.keys(input.processes).join(', ')}`);
  if (input.releaseCommand !== undefined) parts.push(input.releaseCommand === null ? 'Procfile release command' : `Release command ${input.releaseCommand}`);
  return parts.length > 0 ? parts.join('; ') : 'Redeploy';
}
