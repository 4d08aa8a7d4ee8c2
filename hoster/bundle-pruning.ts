import { readdir, readlink, realpath, rm, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Logger } from 'pino';
import { copyUid, type BundleCache } from './bundle-cache.js';

export interface BundlePruningOptions {
  cache: BundleCache;
  /** The build users' HOMEs (`<dir>/<build uid>`), each removed once its app has no copy left here. */
  buildHomesDir: string;
  /** A copy not prepared for this long, and used by no process, is removed. */
  idleMs: number;
  /** A prune this often (the first one a tenth of it after start). */
  everyMs: number;
  logger: Logger;
}

/**
 * Keeps the disk from filling with old releases and deleted apps: every so often, removes the
 * bundle copies that no process here runs in and that were not prepared for a while, then the
 * build HOMEs (npm caches) of apps with no copy left. What is removed is made again from the
 * registry's bundle if it is ever needed.
 */
export class BundlePruning {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly o: BundlePruningOptions) {}

  start(): void {
    const next = (ms: number) => {
      this.timer = setTimeout(() => {
        this.running = this.pruneOnce()
          .catch((err: unknown) => this.o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'pruning the bundle copies failed: trying again later'))
          .finally(() => {
            this.running = undefined;
            next(this.o.everyMs);
          });
      }, ms);
      this.timer.unref();
    };
    next(Math.ceil(this.o.everyMs / 10));
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  async pruneOnce(): Promise<{ copies: string[]; homes: string[] }> {
    const { cache } = this.o;
    const inUse = await copiesInUse(cache.dir);
    const pruned = await cache.prune({ idleMs: this.o.idleMs, inUse });
    const homes = await this.pruneBuildHomes();
    if (pruned.removed.length > 0 || homes.length > 0) {
      this.o.logger.info(
        { removed: pruned.removed.length, kept: pruned.kept, buildHomes: homes.length },
        `removed ${pruned.removed.length} bundle copies no process here used and none prepared for ${Math.round(this.o.idleMs / 60_000)} min, and ${homes.length} build HOMEs of apps with no copy left (${pruned.kept} copies kept)`,
      );
    }
    return { copies: pruned.removed, homes };
  }

  /** Build HOMEs whose app (uid = build uid - 1) has no copy left, and idle too. */
  private async pruneBuildHomes(): Promise<string[]> {
    const withCopies = new Set<number>();
    for (const name of await readdir(this.o.cache.dir).catch(() => [] as string[])) {
      const uid = copyUid(name);
      if (uid !== undefined) withCopies.add(uid);
    }
    const removed: string[] = [];
    const now = Date.now();
    for (const name of await readdir(this.o.buildHomesDir).catch(() => [] as string[])) {
      const buildUid = Number(name);
      if (!Number.isSafeInteger(buildUid) || withCopies.has(buildUid - 1)) continue;
      const home = join(this.o.buildHomesDir, name);
      const at = await stat(home).then((s) => s.mtimeMs, () => undefined);
      if (at === undefined || now - at < this.o.idleMs) continue;
      await rm(home, { recursive: true, force: true, maxRetries: 3 });
      removed.push(name);
    }
    return removed;
  }
}

/**
 * The copies (directory names under `cacheDir`) that a process of this machine has as its
 * working directory: an instance, its shim, a run, a build. Processes this one may not look
 * into (another user's, when not root: then apps run as this user anyway) are skipped.
 */
export async function copiesInUse(cacheDir: string): Promise<Set<string>> {
  const used = new Set<string>();
  const root = await realpath(cacheDir).catch(() => cacheDir);
  const inside = root + sep;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
    if (cwd === undefined || !cwd.startsWith(inside)) continue;
    used.add(cwd.slice(inside.length).split(sep)[0]!);
  }
  return used;
}
