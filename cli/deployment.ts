import { Command } from 'commander';
import { collectProcess } from './process-flags.js';
import { BerthApiError } from '../sdk/api-error.js';
import { shipFolder } from '../sdk/bundle-packer.js';
import type { BerthClient } from '../sdk/berth-client.js';
import type { AppDetails, Attributes, HealthCheck, UpdateRequest } from '../sdk/types.js';
import { connect } from './api-client.js';
import { defaultAppName } from './app-name.js';
import { JSON_FLAG, type CliContext } from './cli-context.js';
import { collectAttribute, collectEnv, cpuWeight, healthTimeout, instanceCount, memorySize, positiveCount, seconds } from './flag-values.js';
import { bytes, type Output } from './output.js';
import { DEFAULT_WAIT_SECONDS, waitForInstances, waitForRelease } from './rollout-watch.js';

/** The flags `publish` and `update` share, as commander hands them over. */
export interface DeployFlags {
  name?: string;
  path?: string;
  instances?: number;
  env?: Record<string, string>;
  attr?: Attributes;
  memory?: number;
  cpuWeight?: number;
  command?: string;
  healthPath?: string;
  healthAttempts?: number;
  healthInterval?: number;
  healthTimeout?: number;
  healthFailures?: number;
  stripPrefix?: boolean;
  process?: Record<string, string>;
  releaseCommand?: string;
  releaseTimeout?: number;
  wait: boolean;
  timeout: number;
  json?: boolean;
}

/** Declares the flags `publish` and `update` share. */
export function addDeployFlags(command: Command): Command {
  return command
    .option('--name <name>', 'the app (default: package.json "name", else the folder\'s name, made valid)')
    .option('--path <path>', 'URL path prefix it is served on (default /<name>; fixed once published)')
    .option('--instances <n>', 'how many instances run (default 1 when publishing)', instanceCount)
    .option('--env <KEY=VALUE>', 'an environment variable (repeat for more; added to those set already)', collectEnv)
    .option('--attr <KEY=VALUE>', 'a requirement on machines, e.g. minMemoryMb=256 or zone=a (repeatable)', collectAttribute)
    .option('--memory <size>', 'memory limit per instance, e.g. 512M or 1G: over it the kernel stops the app (out_of_memory); sets the maxMemoryMb attribute', memorySize)
    .option('--cpu-weight <n>', 'CPU share against other instances on a machine, 1 to 10000 (default 100); sets the cpuWeight attribute', cpuWeight)
    .option('--command <command>', 'start command (default: Procfile web:, npm start, node server.js or index.js)')
    .option('--process <NAME=COMMAND>', 'a process type, e.g. worker="node worker.js" (repeatable; wins over the Procfile\'s line of that name)', collectProcess)
    .option('--release-command <command>', 'run once per release, before its instances start (default: the Procfile\'s release: line)')
    .option('--release-timeout <seconds>', 'how long the release command may run (default 600)', seconds)
    .option('--health-path <path>', 'HTTP path that answers 200 when an instance is ready (default: a TCP connect)')
    .option('--health-attempts <n>', 'checks (with backoff) a new instance gets to pass before it fails as not_listening or unhealthy (default 30, about 26 s)', positiveCount)
    .option('--health-interval <seconds>', 'how often a running instance is checked (default 5)', seconds)
    .option('--health-timeout <seconds>', 'how long one check waits for a connection or an answer, 0.1 to 60 (default 2)', healthTimeout)
    .option('--health-failures <n>', 'failed checks in a row that make a running instance unroutable and replaced (default 3)', positiveCount)
    .option('--strip-prefix', 'send the app /x for <path>/x (the prefix goes in X-Forwarded-Prefix)')
    .option('--no-strip-prefix', 'send the app the whole path')
    .option('--no-wait', 'return once the change is recorded, without waiting for instances to run')
    .option('--timeout <seconds>', 'how long to wait for the instances', seconds, DEFAULT_WAIT_SECONDS)
    .option(...JSON_FLAG);
}

/**
 * Ships a folder (when given) and records the change: a new app, or a new release of an
 * existing one with only what the flags give changed. Then waits until it runs, and prints
 * the outcome.
 */
export async function deploy(ctx: CliContext, mode: 'publish' | 'update', dir: string | undefined, flags: DeployFlags): Promise<void> {
  const { output } = ctx;
  const client = connect(ctx.env);
  const folder = dir ?? (mode === 'publish' ? '.' : undefined);
  if (folder === undefined && !changesSomething(flags)) {
    throw new Error('Nothing to change: give a folder for new code, or flags such as --instances or --env (see berth update --help).');
  }
  const name = flags.name ?? defaultAppName(folder ?? '.');
  const bundle = folder === undefined ? undefined : await shipAndReport(client, output, folder);

  let details: AppDetails | undefined;
  if (mode === 'publish') {
    try {
      details = await client.publishApp({
        name,
        path: flags.path ?? `/${name}`,
        instances: flags.instances ?? 1,
        bundle: bundle!,
        env: flags.env,
        attributes: limitAttributes(flags, flags.attr),
        command: flags.command,
        healthCheck: healthCheckFlags(flags),
        stripPrefix: flags.stripPrefix,
        ...processRequest(flags),
      });
      output.note(`published ${name} on ${details.path}`);
    } catch (err) {
      if (!(err instanceof BerthApiError && err.code === 'app_exists')) throw err;
      output.note(`${name} exists: deploying a new release`);
    }
  }
  let newRelease = details !== undefined;
  if (details === undefined) {
    const change = await updateRequest(client, name, bundle, flags);
    newRelease =
      change.bundle !== undefined ||
      change.env !== undefined ||
      change.attributes !== undefined ||
      change.command !== undefined ||
      change.healthCheck !== undefined ||
      change.processes !== undefined ||
      change.releaseCommand !== undefined ||
      change.releaseTimeoutMs !== undefined;
    details = await client.updateApp(name, change);
  }
  if (newRelease) output.note(`${name} v${details.release}: ${details.current?.description ?? 'new release'}`);

  if (flags.wait) {
    const timeoutMs = flags.timeout * 1000;
    details = newRelease ? await waitForRelease(client, output, name, details.release, { timeoutMs }) : await waitForInstances(client, output, name, { timeoutMs });
  }
  printOutcome(output, details, flags);
}

/** Packs `folder` and uploads it unless the registry has those exact bytes; returns the digest. */
async function shipAndReport(client: BerthClient, output: Output, folder: string): Promise<string> {
  const shipped = await shipFolder(client, folder);
  const short = shipped.digest.slice(0, 12);
  output.note(`packed ${shipped.files.length} file(s) from ${folder}: ${bytes(shipped.size)}, ${bytes(shipped.bytes.length)} compressed, sha256 ${short}`);
  output.note(shipped.uploaded ? `uploaded bundle ${short}` : 'bundle already uploaded');
  return shipped.digest;
}

/** What to send UpdateApp: only what was given; variables and requirements add to those set. */
async function updateRequest(client: BerthClient, name: string, bundle: string | undefined, flags: DeployFlags): Promise<UpdateRequest> {
  const app = await client.getApp(name);
  if (flags.path !== undefined && flags.path !== app.path) {
    throw new Error(`${name} is served on ${app.path}; a path cannot change. Leave out --path, or delete the app and publish it again on ${flags.path}.`);
  }
  const change: UpdateRequest = {};
  if (bundle !== undefined) change.bundle = bundle;
  if (flags.env !== undefined) change.env = { ...app.current?.env, ...flags.env };
  const attributes = limitAttributes(flags, flags.attr);
  if (attributes !== undefined) change.attributes = { ...app.current?.requirements, ...attributes };
  if (flags.command !== undefined) change.command = flags.command;
  const health = healthCheckFlags(flags);
  // What is not given stays as the current release has it.
  if (health !== undefined) change.healthCheck = { ...app.current?.healthCheck, ...health };
  if (flags.instances !== undefined) change.instances = flags.instances;
  if (flags.stripPrefix !== undefined) change.stripPrefix = flags.stripPrefix;
  return { ...change, ...processRequest(flags) };
}

/** The process flags as the API takes them (only those given). */
function processRequest(flags: Pick<DeployFlags, 'process' | 'releaseCommand' | 'releaseTimeout'>): Pick<UpdateRequest, 'processes' | 'releaseTimeoutMs'> & { releaseCommand?: string } {
  return {
    ...(flags.process === undefined ? {} : { processes: flags.process }),
    ...(flags.releaseCommand === undefined ? {} : { releaseCommand: flags.releaseCommand }),
    ...(flags.releaseTimeout === undefined ? {} : { releaseTimeoutMs: Math.round(flags.releaseTimeout * 1000) }),
  };
}

function changesSomething(flags: DeployFlags): boolean {
  return [flags.instances, flags.env, flags.attr, flags.memory, flags.cpuWeight, flags.command, healthCheckFlags(flags), flags.stripPrefix, flags.process, flags.releaseCommand, flags.releaseTimeout].some(
    (v) => v !== undefined,
  );
}

/** `--attr` values with `--memory` and `--cpu-weight` as the attributes the hoster enforces. */
function limitAttributes(flags: Pick<DeployFlags, 'memory' | 'cpuWeight'>, attr: Attributes | undefined): Attributes | undefined {
  const out: Attributes = { ...attr };
  if (flags.memory !== undefined) out.maxMemoryMb = flags.memory;
  if (flags.cpuWeight !== undefined) out.cpuWeight = flags.cpuWeight;
  return Object.keys(out).length === 0 ? undefined : out;
}

/** The health-check fields the flags give, or undefined for none. */
export function healthCheckFlags(flags: Pick<DeployFlags, 'healthPath' | 'healthAttempts' | 'healthInterval' | 'healthTimeout' | 'healthFailures'>): Partial<HealthCheck> | undefined {
  const given: Partial<HealthCheck> = {};
  if (flags.healthPath !== undefined) given.path = flags.healthPath;
  if (flags.healthAttempts !== undefined) given.attempts = flags.healthAttempts;
  if (flags.healthInterval !== undefined) given.intervalMs = Math.round(flags.healthInterval * 1000);
  if (flags.healthTimeout !== undefined) given.timeoutMs = Math.round(flags.healthTimeout * 1000);
  if (flags.healthFailures !== undefined) given.failures = flags.healthFailures;
  return Object.keys(given).length === 0 ? undefined : given;
}

function printOutcome(output: Output, app: AppDetails, flags: DeployFlags): void {
  if (flags.json) return output.json(app);
  const release = app.current;
  const summary = `${app.name} v${app.release} ${output.status(release?.status ?? app.status)}: ${app.running}/${app.instances} running`;
  output.line(flags.wait ? `${summary} (${release?.description ?? ''})` : `${summary}; follow it with: berth info ${app.name}`);
  output.line(app.url ?? app.path);
}
