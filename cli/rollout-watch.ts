import type { BerthClient } from '../sdk/berth-client.js';
import { BerthApiError } from '../sdk/api-error.js';
import type { AppDetails, Instance, Release } from '../sdk/types.js';
import type { Output } from './output.js';

/** How long `publish`, `update`, `scale` and the rest wait by default (as the registry's rollout timeout). */
export const DEFAULT_WAIT_SECONDS = 300;
/** Between two looks at the app: about what a person notices, and light on the API. */
const POLL_MS = 500;

export interface WaitOptions {
  /** Give up after this long. @default 300000 */
  timeoutMs: number;
}

/**
 * Waits until release `version` of `name` is active with every wanted instance running.
 * Throws when the release fails (with the registry's reason) or the time runs out; the
 * rollout itself goes on either way.
 */
export async function waitForRelease(client: BerthClient, output: Output, name: string, version: number, options: WaitOptions): Promise<AppDetails> {
  const started = Date.now();
  const build = await BuildLines.from(client, name, version);
  for (;;) {
    await build.print(output);
    const app = await client.getApp(name);
    if (app.release === version && app.current?.status === 'active' && app.running >= app.instances) {
      await build.drain(output);
      return app;
    }
    const release = app.current?.version === version ? app.current : (await client.listReleases(name)).find((r) => r.version === version);
    if (release?.status === 'failed') {
      await build.drain(output);
      throw new Error(failureMessage(app, release));
    }
    if (release?.status === 'superseded' || (release !== undefined && app.release > version && app.current?.status !== 'failed')) {
      output.note(`${name} v${version} was replaced by v${app.release} while waiting.`);
      return app;
    }
    const instances = await client.listAppInstances(name);
    const why = problems(instances, version);
    const what = `${name} v${version} ${release?.status ?? 'deploying'}: ${runningOf(instances, version)}/${app.instances} running${why}`;
    if (Date.now() - started > options.timeoutMs) {
      // Without a failure on record, the likeliest cause is that no hoster took the instances.
      const hint = why === '' ? 'Is a hoster running with room for it (berth machines)? ' : '';
      throw new Error(`${what} after ${Math.round(options.timeoutMs / 1000)} s; stopped waiting (the rollout goes on). ${hint}See its output with: berth logs ${name}`);
    }
    output.progress(what, Math.round((Date.now() - started) / 1000));
    await delay(POLL_MS);
  }
}

/** How long the last build lines may take to arrive once a release's outcome is known, and the looks for them. */
const DRAIN_MS = 1500;
/** Two of the hosters' batches. */
const DRAIN_QUIET_MS = 500;
const DRAIN_LOOK_MS = 250;
/** How many of the app's last log lines each look reads for build output. */
const BUILD_LOOKBACK_LINES = 500;

/**
 * The build's output (log lines of stream "build": npm's, and the hoster's "----->" lines),
 * printed on stderr as it arrives while a release rolls out: only lines since the
 * release was made, each once.
 */
class BuildLines {
  private constructor(
    private readonly client: BerthClient,
    private readonly name: string,
    private after: string,
  ) {}

  /**
   * From the release's making on (its createdAt and the log's stream ids are both Redis's
   * clock): a hoster may have written the build's first lines before this wait began. Without
   * the release, from the last line there is.
   */
  static async from(client: BerthClient, name: string, version: number): Promise<BuildLines> {
    const release = (await client.listReleases(name).catch(() => [] as Release[])).find((r) => r.version === version);
    if (release !== undefined) return new BuildLines(client, name, `${release.createdAt - 1}-${Number.MAX_SAFE_INTEGER}`);
    const [last] = await client.logs(name, 1).catch(() => []);
    return new BuildLines(client, name, last?.id ?? '0-0');
  }

  /** Prints the build lines that came since the last look; returns how many lines (of any stream) came. */
  async print(output: Output): Promise<number> {
    const lines = await this.client.logs(this.name, BUILD_LOOKBACK_LINES).catch(() => []);
    let fresh = 0;
    for (const line of lines) {
      if (!isAfter(line.id, this.after)) continue;
      this.after = line.id;
      fresh++;
      if (line.stream === 'build') output.note(line.line);
    }
    return fresh;
  }

  /**
   * The last lines, once the outcome is known: hosters send their lines in batches (every
   * 200 ms), so a build that failed in a second may have told the registry before its lines
   * arrived. Looks until a look brings nothing new after DRAIN_QUIET_MS, for at most DRAIN_MS.
   */
  async drain(output: Output): Promise<void> {
    const started = Date.now();
    for (;;) {
      await delay(DRAIN_LOOK_MS);
      const fresh = await this.print(output);
      const waited = Date.now() - started;
      if ((fresh === 0 && waited >= DRAIN_QUIET_MS) || waited >= DRAIN_MS) return;
    }
  }
}

/** Redis stream ids ("<ms>-<seq>") in order. */
function isAfter(id: string, than: string): boolean {
  const [ms = 0, seq = 0] = id.split('-').map(Number);
  const [thanMs = 0, thanSeq = 0] = than.split('-').map(Number);
  return ms > thanMs || (ms === thanMs && seq > thanSeq);
}

/** Waits until `name` runs exactly as many instances of its current release as it wants, of every process type (after a scale). */
export async function waitForInstances(client: BerthClient, output: Output, name: string, options: WaitOptions): Promise<AppDetails> {
  const started = Date.now();
  for (;;) {
    const app = await client.getApp(name);
    if (app.current?.status === 'failed') throw new Error(failureMessage(app, app.current));
    const typesShort = app.running === app.instances && app.current?.status !== 'deploying' ? otherTypesShort(app, await client.listAppInstances(name)) : [];
    if (app.running === app.instances && app.current?.status !== 'deploying' && typesShort.length === 0) return app;
    const instances = await client.listAppInstances(name);
    const what = `${name}: ${app.running}/${app.instances} running${typesShort.length > 0 ? ` (${typesShort.join(', ')})` : ''}${problems(instances, app.release)}`;
    if (Date.now() - started > options.timeoutMs) {
      throw new Error(`${what} after ${Math.round(options.timeoutMs / 1000)} s; stopped waiting (berth keeps trying). See berth info ${name} and berth machines.`);
    }
    output.progress(what, Math.round((Date.now() - started) / 1000));
    await delay(POLL_MS);
  }
}

/** Waits until instance `id` has been replaced: it is gone or stopping, and as many instances run as the app wants. */
export async function waitForReplacement(client: BerthClient, output: Output, name: string, id: string, options: WaitOptions): Promise<AppDetails> {
  const started = Date.now();
  for (;;) {
    const [app, instances] = await Promise.all([client.getApp(name), client.listAppInstances(name)]);
    const old = instances.find((i) => i.id === id);
    const retired = old === undefined || old.state === 'draining' || old.state === 'stopping';
    if (retired && app.running >= app.instances) return app;
    const what = `${name}: replacing ${id.slice(0, 8)} (${old?.state ?? 'gone'}), ${app.running}/${app.instances} running${problems(instances, app.release)}`;
    if (Date.now() - started > options.timeoutMs) {
      throw new Error(`${what} after ${Math.round(options.timeoutMs / 1000)} s; stopped waiting (the replacement goes on). See berth instances ${name}.`);
    }
    output.progress(what, Math.round((Date.now() - started) / 1000));
    await delay(POLL_MS);
  }
}

/** The process types other than web that do not run their count yet, as `worker 1/3`. */
function otherTypesShort(app: AppDetails, instances: readonly Instance[]): string[] {
  const short: string[] = [];
  for (const type of Object.keys(app.current?.processes ?? {})) {
    const wanted = app.formation?.[type] ?? 1;
    const running = instances.filter((i) => i.process === type && i.release === app.release && i.state === 'running' && !i.evacuating).length;
    if (running !== wanted) short.push(`${type} ${running}/${wanted}`);
  }
  return short;
}

/** Waits until the app is gone (its instances stopped and its records removed). */
export async function waitForDeletion(client: BerthClient, output: Output, name: string, options: WaitOptions): Promise<void> {
  const started = Date.now();
  for (;;) {
    let left: number;
    try {
      left = (await client.listAppInstances(name)).length;
    } catch (err) {
      if (err instanceof BerthApiError && err.code === 'app_not_found') return;
      throw err;
    }
    if (Date.now() - started > options.timeoutMs) {
      throw new Error(`${name} still has ${left} instance(s) after ${Math.round(options.timeoutMs / 1000)} s; stopped waiting (the deletion goes on).`);
    }
    output.progress(`deleting ${name}: ${left} instance(s) left`, Math.round((Date.now() - started) / 1000));
    await delay(POLL_MS);
  }
}

function failureMessage(app: AppDetails, release: Release): string {
  const serving = app.release !== release.version ? ` ${app.name} still runs v${app.release}.` : '';
  const [summary, ...lines] = (release.reason ?? 'no reason given').split('\n');
  const output = lines.length === 0 ? '' : `\nIts last lines of output:\n${lines.map((l) => `  ${l}`).join('\n')}`;
  const ended = /[.!?]$/.test(summary ?? '') ? summary : `${summary}.`;
  return `${app.name} v${release.version} failed: ${ended}${serving}${output}\nSee all of its output with: berth logs ${app.name}`;
}

function runningOf(instances: Instance[], version: number): number {
  return instances.filter((i) => i.release === version && i.state === 'running').length;
}

/** Why instances of `version` are not running yet, when the registry knows: " (crash_loop on m1)". */
function problems(instances: Instance[], version: number): string {
  const reasons = new Set<string>();
  for (const i of instances) {
    if (i.release !== version || i.state === 'running' || i.reason === null) continue;
    reasons.add(i.failedOn.length > 0 ? `${i.reason} on ${i.failedOn.join(', ')}` : i.reason);
  }
  return reasons.size > 0 ? ` (${[...reasons].join('; ')})` : '';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
