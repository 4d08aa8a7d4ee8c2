import { join } from 'node:path';
import { BerthError } from '../common/errors.js';
import { RELEASE_PROCESS, WEB_PROCESS, RUN_PROCESS } from '../common/procfile.js';
import type { Release } from '../registry/store/index.js';
import { DEFAULT_HEALTH_CHECK, type HealthCheck } from '../registry/store/index.js';
import type { AppStore } from '../registry/store/index.js';
import type { AppUser, AppUsers } from './app-users.js';
import { cgroupLimitsOf, makeInstanceCgroup, type CgroupSupport, type InstanceCgroup } from './cgroup-limits.js';
import { instanceHome, makeInstanceDir } from './instance-dir.js';
import { instanceEnv } from './instance-env.js';
import { canLimitMemoryByRlimit, withResourceLimits } from './resource-limits.js';
import type { ShimSpec } from './shim-protocol.js';
import { DEFAULT_RELEASE_TIMEOUT_MS } from './release-task.js';
import { NoStartCommandError, type StartCommand } from './start-command.js';

/** What an install needs from the hoster. */
export interface InstallContext {
  machine: string;
  apps: AppStore;
  /** When the hoster runs as root: each app's own users (instances run as one, builds as another). */
  appUsers?: AppUsers;
  /** SIGTERM → SIGKILL grace when an app is stopped (its shim is told). */
  stopGraceMs: number;
  /** Installs the bundle (fetch, verify, unpack, build) once per digest (and app user); returns the app's directory. */
  prepare: (digest: string, user: AppUser | undefined, onBuildLine: (line: string) => void) => Promise<string>;
  /** The command that starts the app in `appDir`. */
  startCommand: (appDir: string, releaseCommand: string | null) => StartCommand;
  /** Where this machine's cgroups are, for apps with memory or CPU limits. */
  cgroups: CgroupSupport;
}

/** The claim being installed. */
export interface InstallClaim {
  id: string;
  app: string;
  epoch: number;
  /** Its release's version; null: an instance registered by hand, with `files`. */
  release: number | null;
  files: string | null;
  /** 0 for a process without a port. */
  port: number;
  /** Its process type: web, a Procfile type, or release (the release command). */
  process: string;
  /** Its directory on this machine (instance-dir.ts). */
  dir: string;
}

/** An installed instance, ready to start under a shim. */
export interface Installed {
  /** What its shim is told at each start (leaseValidForMs is set then). */
  spec: ShimSpec;
  health: HealthCheck;
  /** The app's own user (the hoster is root), or undefined: it runs as the hoster's. */
  user: AppUser | undefined;
  /** Its cgroup, when the app has memory or CPU limits (removed when the instance ends). */
  cgroup: InstanceCgroup | undefined;
  /** Its memory limit, when RLIMIT_DATA holds it (this machine has no cgroups). */
  memoryByRlimitMb: number | undefined;
  /** How long a release command may run. */
  releaseTimeoutMs: number;
}

/**
 * Installs a claimed instance: its release's bundle, fetched, unpacked and built (the build's
 * lines go to `lines.build` as they come, the hoster's own `----->` line to `lines.hoster`: berth
 * publish shows them), its start command, its environment and its directory. Undefined when `stopped()` turned true during the build.
 * Throws a coded error (bundle_rejected, build_failed, no_start_command, invalid_env) when the
 * release is at fault, anything else when the machine is.
 */
export async function installInstance(
  ctx: InstallContext,
  claim: InstallClaim,
  lines: { build: (line: string) => void; hoster: (line: string) => void },
  stopped: () => boolean,
): Promise<Installed | undefined> {
  const release = claim.release === null ? undefined : await ctx.apps.release(claim.app, claim.release);
  const digest = release?.bundle ?? claim.files;
  if (!digest) throw new BerthError('bundle_rejected', 'the instance names no bundle');
  // Releases made before a field existed get its default.
  const health = { ...DEFAULT_HEALTH_CHECK, ...release?.healthCheck };
  const user = ctx.appUsers?.forApp(claim.app);
  const appDir = await ctx.prepare(digest, user, lines.build);
  if (stopped()) return undefined;
  const typed = processCommand(claim.process, release);
  if (claim.process === RELEASE_PROCESS) lines.hoster(`-----> Running release command: ${typed!.shell} (v${release?.version ?? '?'} on ${ctx.machine})`);
  else lines.hoster(`-----> Starting ${claim.process === WEB_PROCESS ? 'instance' : `${claim.process} instance`} ${claim.id.slice(0, 8)} of v${release?.version ?? '?'} on ${ctx.machine}`);
  const limits = cgroupLimitsOf(release?.requirements ?? {});
  // Without cgroups, a memory limit is held by RLIMIT_DATA (resource-limits.ts); a CPU weight cannot be.
  const memoryByRlimitMb = ctx.cgroups.kind === 'none' && limits?.memoryMb !== undefined && limits.cpuWeight === undefined && canLimitMemoryByRlimit() ? limits.memoryMb : undefined;
  const command = withResourceLimits(typed ?? ctx.startCommand(appDir, release?.command ?? null), release?.requirements ?? {}, { memoryByRlimitMb });
  let cgroup: InstanceCgroup | undefined;
  if (limits !== undefined && memoryByRlimitMb === undefined) {
    try {
      cgroup = makeInstanceCgroup(ctx.cgroups, `${claim.id}-${claim.epoch}`, limits);
    } catch (err) {
      throw new BerthError('limits_unavailable', `${ctx.machine} cannot enforce the app's memory or CPU limit: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const env = instanceEnv({
    releaseEnv: release?.env ?? {},
    app: claim.app,
    path: (await ctx.apps.get(claim.app).catch(() => undefined))?.path ?? '',
    instance: claim.id,
    epoch: claim.epoch,
    machine: ctx.machine,
    version: release?.version,
    port: claim.port,
    process: claim.process,
    home: instanceHome(claim.dir),
    hostPath: process.env.PATH,
  });
  makeInstanceDir(claim.dir, user);
  const spec: ShimSpec = {
    instance: claim.id,
    // The shim protocol's word for the app (a shim may outlive this hoster: see adoption.ts).
    service: claim.app,
    epoch: claim.epoch,
    release: release?.version ?? 0,
    port: claim.port,
    socketPath: join(claim.dir, 'shim.sock'),
    logFile: join(claim.dir, 'app.log'),
    cwd: appDir,
    env,
    command,
    uid: user?.uid,
    gid: user?.gid,
    cgroups: cgroup?.dirs,
    oomFile: cgroup?.oomFile,
    leaseValidForMs: 0,
    stopGraceMs: ctx.stopGraceMs,
  };
  return { spec, health, user, cgroup, memoryByRlimitMb, releaseTimeoutMs: release?.releaseTimeoutMs ?? DEFAULT_RELEASE_TIMEOUT_MS };
}

/**
 * The command of a process type other than web: the release's command for it (from its
 * Procfile or --process), or its release command. Undefined for web, whose command the start
 * command rules choose (start-command.ts).
 */
function processCommand(process: string, release: Release | undefined): { shell: string } | undefined {
  // A run's command is the caller's start command (one-off-runs.ts), as web's is the start rules'.
  if (process === WEB_PROCESS || process === RUN_PROCESS) return undefined;
  const command = process === RELEASE_PROCESS ? release?.releaseCommand : release?.processes?.[process];
  if (!command) throw new NoStartCommandError(`release v${release?.version ?? '?'} has no "${process}" process: add a "${process}:" line to the Procfile, or publish with --process ${process}=COMMAND.`);
  return { shell: command };
}
