import { mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { x as extract } from 'tar';
import { BerthError } from '../../common/errors.js';
import type { RedisClient } from '../../common/redis-connection.js';
import { packFolder } from '../../sdk/bundle-packer.js';
import { recentLogs } from '../store/index.js';
import type { AppDetails, Release } from '../store/index.js';
import type { AppOperations } from '../app-operations.js';
import type { BundleStore } from '../store/index.js';
import type { RegistryKeys } from '../store/index.js';
import type { GitRepos } from './git-repos.js';
import type { GitStore, PushLock } from './git-store.js';
import type { RefResult } from './proc-receive-session.js';
import { deployBranches, refVerdict, ZERO_OID, type RefUpdate } from './ref-update.js';

/** How long a push waits for another push of the same app to finish before it gives up. @default 600000 */
export const DEFAULT_PUSH_WAIT_MS = 10 * 60_000;
/** Between two looks at a rollout: what a person notices, and light on Redis. */
const POLL_MS = 500;
/** While waiting for the lock, a line this often tells the pusher it still waits. */
const WAITING_NOTE_MS = 10_000;
/** The longest a push stays silent while its release rolls out. */
const QUIET_MS = 20_000;
/** How many of the app's last log lines each look reads for build output. */
const BUILD_LOOKBACK_LINES = 500;
/** Once the outcome is known, the hosters' last batches of build lines (every 200 ms) may still come. */
const DRAIN_MS = 1500;
const DRAIN_QUIET_MS = 500;
const DRAIN_LOOK_MS = 250;

export interface PushDeployerOptions {
  repos: GitRepos;
  store: GitStore;
  apps: AppOperations;
  bundles: BundleStore;
  redis: RedisClient;
  keys: RegistryKeys;
  /** As the reconciler's: a release not running by then has failed. */
  rolloutTimeoutMs: number;
  /** @default DEFAULT_PUSH_WAIT_MS */
  pushWaitMs?: number;
  logger: Logger;
}

/** Who pushes, and to which app. */
export interface Pusher {
  app: string;
  /** The token's name: releases and the audit log say who made them. */
  user: string;
}

type Say = (line: string) => void;

/**
 * Push = deploy. For the pushed deploy branch: takes the app's push lock, packs the pushed
 * commit's tree as `berth publish` packs a folder (.gitignore/.berthignore honoured, the same
 * bytes for the same files), stores the bundle, makes the release (the commit id and subject
 * as its description), shows the build and rollout as they happen and, only once the release
 * runs, moves the branch. A release that fails leaves the branch where it was: git prints
 * `! [remote rejected] main -> main (release v7 failed: …)` and the release before keeps serving.
 */
export class PushDeployer {
  private readonly pushWaitMs: number;

  constructor(private readonly o: PushDeployerOptions) {
    this.pushWaitMs = o.pushWaitMs ?? DEFAULT_PUSH_WAIT_MS;
  }

  /** Decides every ref of one push, in their order. */
  async handle(pusher: Pusher, updates: RefUpdate[], say: Say): Promise<RefResult[]> {
    let branches: string[];
    try {
      branches = deployBranches(await this.o.store.branch(pusher.app));
    } catch (err) {
      const reason = err instanceof BerthError ? err.message : 'berth cannot read the deploy branch: retry shortly';
      return updates.map((u) => ({ ref: u.ref, ok: false, reason }));
    }
    let deploying: string | undefined;
    const results: RefResult[] = [];
    for (const update of updates) {
      const verdict = refVerdict(update, pusher.app, branches);
      if (!verdict.deploy) {
        // git prints the reason after "! [remote rejected]": nothing to add here.
        results.push({ ref: update.ref, ok: false, reason: verdict.reason });
      } else if (deploying !== undefined) {
        const reason = `this push deploys ${deploying} already: push one deploy branch at a time`;
        results.push({ ref: update.ref, ok: false, reason });
      } else {
        deploying = verdict.branch;
        results.push(await this.deployGuarded(pusher, update, say));
      }
    }
    return results;
  }

  private async deployGuarded(pusher: Pusher, update: RefUpdate, say: Say): Promise<RefResult> {
    try {
      return await this.deploy(pusher, update, say);
    } catch (err) {
      const log = this.o.logger.child({ app: pusher.app, commit: update.newOid });
      if (err instanceof BerthError) {
        log.warn({ code: err.code }, `push refused: ${err.message}`);
        say(`-----> push refused: ${err.message}`);
        return { ref: update.ref, ok: false, reason: err.message };
      }
      log.error({ err }, 'push failed unexpectedly');
      return { ref: update.ref, ok: false, reason: 'berth failed unexpectedly: the registry log has the details' };
    }
  }

  private async deploy(pusher: Pusher, update: RefUpdate, say: Say): Promise<RefResult> {
    const { app } = pusher;
    const short = update.newOid.slice(0, 7);
    const lock = await this.lock(app, say);
    if (lock === undefined) {
      return { ref: update.ref, ok: false, reason: `another push of ${app} is still in progress after ${Math.round(this.pushWaitMs / 1000)} s: push again once it is done` };
    }
    const work = join(this.o.repos.dir, 'work', `${app}-${randomBytes(6).toString('hex')}`);
    try {
      const repo = this.o.repos.path(app);
      // The ref moved while this push waited (another push deployed): as git itself, refuse rather than overwrite.
      const current = await this.refValue(repo, update.ref);
      if (current !== update.oldOid) {
        const branch = update.ref.replace(/^refs\/heads\//, '');
        return { ref: update.ref, ok: false, reason: `${branch} moved to ${current.slice(0, 7)} while this push waited (another push deployed it): fetch, merge and push again` };
      }
      const subject = (await this.git(repo, ['log', '-1', '--format=%s', update.newOid])).toString('utf8').trim();
      const description = `Deploy ${short}: ${subject}`.slice(0, 200);
      say(`-----> ${app}: deploying ${short} (${subject})`);

      mkdirSync(work, { recursive: true, mode: 0o700 });
      await this.archive(repo, update.newOid, work);
      const packed = await packFolder(work).catch((err: unknown) => {
        throw new BerthError('invalid_request', `${err instanceof Error ? err.message.replaceAll(`${work}/`, '') : String(err)}`);
      });
      if (packed.bytes.length > this.o.bundles.limitBytes) {
        throw new BerthError(
          'bundle_too_large',
          `the bundle of ${short} is ${packed.bytes.length} bytes, over the limit of ${this.o.bundles.limitBytes}: leave dependencies and build output out of the commit (.berthignore), or raise BERTH_BUNDLE_LIMIT_BYTES`,
        );
      }
      say(`-----> Packed ${packed.files.length} file(s): ${packed.size} bytes, ${packed.bytes.length} compressed, sha256 ${packed.digest.slice(0, 12)}`);
      if (!(await this.o.bundles.has(packed.digest))) await this.o.bundles.put(packed.digest, once(packed.bytes));

      const [lastLine] = await recentLogs(this.o.redis, this.o.keys, app, 1);
      const origin = { commit: update.newOid, description };
      let details = await this.o.apps.details(app).catch((err: unknown) => {
        if (err instanceof BerthError && err.code === 'app_not_found') return undefined;
        throw err;
      });
      if (details === undefined) {
        say(`-----> ${app} is new: publishing it on /${app} with 1 instance (berth scale ${app} N for more)`);
        details = await this.o.apps.publish({ name: app, path: `/${app}`, instances: 1, bundle: packed.digest }, pusher.user, origin);
      } else {
        details = await this.o.apps.update(app, { bundle: packed.digest }, pusher.user, origin);
      }
      const version = details.release;
      say(`-----> Release v${version}: ${description}`);
      const outcome = await this.watch(app, version, lastLine?.id ?? '0-0', say);
      if (!outcome.ok) return { ref: update.ref, ok: false, reason: outcome.reason };
      // Only a release that runs moves the branch: the next push is then based on it.
      await this.git(repo, ['update-ref', update.ref, update.newOid, update.oldOid]);
      this.o.logger.info({ app, commit: update.newOid, release: version, user: pusher.user }, `push deployed ${app} v${version}`);
      return { ref: update.ref, ok: true };
    } finally {
      rmSync(work, { recursive: true, force: true });
      await lock.release();
    }
  }

  /** Takes the app's push lock, waiting (and saying so) while another push holds it; undefined when the wait ran out. */
  private async lock(app: string, say: Say): Promise<PushLock | undefined> {
    const started = Date.now();
    let noted = 0;
    const lost = () => this.o.logger.warn({ app }, 'lost the push lock while deploying (Redis was away longer than its lease)');
    for (;;) {
      const lock = await this.o.store.tryLock(app, lost);
      if (lock !== undefined) return lock;
      const waited = Date.now() - started;
      if (waited > this.pushWaitMs) return undefined;
      if (noted === 0 || waited - noted >= WAITING_NOTE_MS) {
        say(`-----> another push of ${app} is in progress: waiting for it to finish (${Math.round(waited / 1000)} s so far)`);
        noted = Math.max(waited, 1);
      }
      await delay(POLL_MS);
    }
  }

  /** Follows release `version` until it runs or fails, showing the build's lines and each new status. */
  private async watch(app: string, version: number, after: string, sayNow: Say): Promise<{ ok: true } | { ok: false; reason: string }> {
    const started = Date.now();
    let saidAt = started;
    const say: Say = (line) => {
      saidAt = Date.now();
      sayNow(line);
    };
    // A little past the reconciler's own bound, which fails the release first.
    const deadline = started + this.o.rolloutTimeoutMs + 30_000;
    const build = { after };
    let shown = '';
    for (;;) {
      await this.printBuild(app, build, say);
      const details = await this.o.apps.details(app);
      const release = details.current?.version === version ? details.current : (await this.o.apps.releases(app)).find((r) => r.version === version);
      if (details.release === version && release?.status === 'active' && details.running >= details.instances) {
        await this.drainBuild(app, build, say);
        say(`-----> ${app} v${version} active: ${details.running}/${details.instances} running`);
        if (details.url !== null) say(`-----> ${details.url}`);
        return { ok: true };
      }
      if (release?.status === 'failed') {
        await this.drainBuild(app, build, say);
        return { ok: false, reason: this.failure(details, release, say) };
      }
      if (release !== undefined && (release.status === 'superseded' || details.release > version)) {
        say(`-----> ${app} v${version} was replaced by v${details.release} meanwhile`);
        return { ok: true };
      }
      const status = `-----> ${app} v${version} ${release?.status ?? 'deploying'}: ${details.running}/${details.instances} running`;
      // A line at least every QUIET_MS, so that no proxy between git and berth drops a quiet push.
      if (status !== shown || Date.now() - saidAt > QUIET_MS) say(status === shown ? `${status} (${Math.round((Date.now() - started) / 1000)} s)` : (shown = status));
      if (Date.now() > deadline) {
        return { ok: false, reason: `${app} v${version} is not running after ${Math.round((Date.now() - started) / 1000)} s (the rollout goes on): see berth info ${app} and berth logs ${app}` };
      }
      await delay(POLL_MS);
    }
  }

  /** Shows why the release failed, as `berth publish` does; returns the line git prints after `! [remote rejected]`. */
  private failure(details: AppDetails, release: Release, say: Say): string {
    const [summary = 'no reason given', ...lines] = (release.reason ?? '').split('\n');
    const reason = `release v${release.version} failed: ${summary.replace(/\.$/, '')}`;
    say(`-----> ${reason}`);
    if (lines.length > 0) say('       its last lines of output:');
    for (const line of lines) say(`       ${line}`);
    if (details.release !== release.version) say(`-----> ${details.name} still runs v${details.release}`);
    say(`-----> all of its output: berth logs ${details.name}`);
    return reason;
  }

  private async printBuild(app: string, build: { after: string }, say: Say): Promise<number> {
    const lines = await recentLogs(this.o.redis, this.o.keys, app, BUILD_LOOKBACK_LINES).catch(() => []);
    let fresh = 0;
    for (const line of lines) {
      if (!isAfter(line.id, build.after)) continue;
      build.after = line.id;
      fresh++;
      if (line.stream === 'build') say(line.line);
    }
    return fresh;
  }

  private async drainBuild(app: string, build: { after: string }, say: Say): Promise<void> {
    const started = Date.now();
    for (;;) {
      await delay(DRAIN_LOOK_MS);
      const fresh = await this.printBuild(app, build, say);
      const waited = Date.now() - started;
      if ((fresh === 0 && waited >= DRAIN_QUIET_MS) || waited >= DRAIN_MS) return;
    }
  }

  /** The commit a ref points at in the cache, ZERO_OID when it does not exist. */
  private async refValue(repo: string, ref: string): Promise<string> {
    const run = await this.o.repos.run(['--git-dir', repo, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
    return run.code === 0 ? run.stdout.toString().trim() : ZERO_OID;
  }

  private async git(repo: string, args: string[]): Promise<Buffer> {
    const run = await this.o.repos.run(['--git-dir', repo, ...args]);
    if (run.code !== 0) throw new Error(`git ${args[0]} failed (${run.code}): ${run.stderr.trim()}`);
    return run.stdout;
  }

  /** Writes the files of `commit` into `dir`, as a checkout would (what git tracks, no .git). */
  private async archive(repo: string, commit: string, dir: string): Promise<void> {
    const child = this.o.repos.spawn(['--git-dir', repo, 'archive', '--format=tar', commit], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    // The tar package refuses absolute paths and "..", and never follows links out of `dir`.
    await pipeline(child.stdout!, extract({ cwd: dir, strict: true, preservePaths: false }));
    const code = await exited;
    if (code !== 0) throw new Error(`git archive failed (${code}): ${stderr.trim()}`);
  }
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/** Redis stream ids ("<ms>-<seq>") in order. */
function isAfter(id: string, than: string): boolean {
  const [ms = 0, seq = 0] = id.split('-').map(Number);
  const [thanMs = 0, thanSeq = 0] = than.split('-').map(Number);
  return ms > thanMs || (ms === thanMs && seq > thanSeq);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
