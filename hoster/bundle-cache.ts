import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, chown, lstat, mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { bundleTooLarge } from '../common/errors.js';
import { SHA256_PATTERN } from '../common/names.js';
import { handToBuilder, killUserProcesses, sealForApp } from './app-tree.js';
import type { AppUser } from './app-users.js';
import { BundleRejectedError, resolveUnpackLimits, unpackBundle, type UnpackLimits } from './bundle-unpacker.js';

/** Written last, once the app directory is complete (and built): its presence is the cache entry. */
export const READY_FILE = '.ready';
/** The app's files, inside the digest's directory. */
export const APP_DIR = 'app';
/** The compressed bundle while it downloads; deleted once unpacked. */
const DOWNLOAD_FILE = 'bundle.tar.gz.part';

export interface BundleCacheOptions {
  /** The cache's root: one directory per digest (per digest and app user as root), `<dir>/<digest>[-<uid>]/app`. */
  dir: string;
  /** The bundle's compressed bytes (e.g. the registry's BundleStore.read). */
  fetch: (digest: string) => AsyncIterable<Uint8Array>;
  /** Limits for each unpack; the largest compressed download allowed is limits.maxBytes too. @default DEFAULT_UNPACK_LIMITS */
  limits?: Partial<UnpackLimits>;
  /**
   * Runs after the unpack and before the digest is marked ready (e.g. `npm ci`): when it
   * throws, the digest is not ready and the next prepare starts over. By convention its log
   * goes to `<digestDir>/build.log`, which is kept across attempts. With a user, the tree is
   * the build user's while it runs, and the build must run as that user.
   */
  build?: (appDir: string, digestDir: string, user: AppUser | undefined, onLine: (line: string) => void) => Promise<void>;
}

/**
 * Bundles on this machine's disk, unpacked and built once per digest, or once per digest and
 * app user when apps run as their own users (root): each app then has its own copy, which only
 * it can read and nobody but root can change. The hoster is the only writer of `dir`:
 * concurrent prepares of one copy in this process share one attempt, and a copy marked ready
 * by an earlier run is used as it is.
 */
export class BundleCache {
  readonly dir: string;
  private readonly fetch: (digest: string) => AsyncIterable<Uint8Array>;
  private readonly limits: UnpackLimits;
  private readonly build: BundleCacheOptions['build'];
  private readonly preparing = new Map<string, Promise<string>>();

  constructor(options: BundleCacheOptions) {
    if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError('BundleCache option dir must be a directory path.');
    if (typeof options.fetch !== 'function') throw new TypeError('BundleCache option fetch must be a function.');
    this.dir = options.dir;
    this.fetch = options.fetch;
    this.limits = resolveUnpackLimits(options.limits);
    this.build = options.build;
  }

  /**
   * The directory of the digest's app (`<dir>/<digest>/app`, or `<dir>/<digest>-<uid>/app` for
   * an app user), fetched, verified, unpacked and built if need be.
   */
  prepare(digest: string, user?: AppUser, onBuildLine: (line: string) => void = () => undefined): Promise<string> {
    if (!SHA256_PATTERN.test(digest)) {
      return Promise.reject(new TypeError(`${JSON.stringify(digest)} is not a sha256 digest: give 64 lowercase hex characters.`));
    }
    const name = copyName(digest, user);
    let attempt = this.preparing.get(name);
    if (attempt === undefined) {
      // Whoever asks first hears the build; those who join it wait for its outcome.
      attempt = this.install(digest, user, onBuildLine).finally(() => this.preparing.delete(name));
      this.preparing.set(name, attempt);
    }
    return attempt;
  }

  /** True when the digest (the app user's copy of it) is ready on disk. */
  async isReady(digest: string, user?: AppUser): Promise<boolean> {
    const copy = join(this.dir, copyName(digest, user));
    return SHA256_PATTERN.test(digest) && (await exists(join(copy, READY_FILE))) && (await exists(join(copy, APP_DIR)));
  }

  private async install(digest: string, user: AppUser | undefined, onBuildLine: (line: string) => void): Promise<string> {
    const digestDir = join(this.dir, copyName(digest, user));
    const appDir = join(digestDir, APP_DIR);
    if (await this.isReady(digest, user)) {
      // Its last use, which pruning goes by.
      const now = new Date();
      await utimes(join(digestDir, READY_FILE), now, now).catch(() => undefined);
      return appDir;
    }
    // Root's alone until the build: an app user's copy is opened to its group only once sealed.
    await mkdir(this.dir, { recursive: true, mode: 0o711 });
    await mkdir(digestDir, { recursive: true, mode: user ? 0o700 : 0o755 });
    if (user) {
      // An earlier attempt may have opened it to the build user.
      await chown(digestDir, 0, 0);
      await chmod(digestDir, 0o700);
    }
    await this.stopPackageLookup();
    // An earlier attempt that failed or died mid-way (unpacked, half built): start over.
    await this.clearAttempt(digestDir);
    const download = join(digestDir, DOWNLOAD_FILE);
    try {
      const size = await this.download(digest, download);
      const { entries, bytes } = await unpackBundle(createReadStream(download), appDir, this.limits, { compressedBytes: size });
      await rm(download, { force: true });
      if (user) {
        handToBuilder(appDir, user.buildUid, user.buildGid);
        await chown(digestDir, 0, user.buildGid);
        await chmod(digestDir, 0o710);
      }
      try {
        await this.build?.(appDir, digestDir, user, onBuildLine);
      } finally {
        // Whatever the build started (daemonised or not) dies before the tree is taken back.
        if (user) killUserProcesses(user.buildUid, user.buildGid);
      }
      if (user) {
        sealForApp(appDir, user.buildUid, user.gid);
        await chown(digestDir, 0, user.gid);
      }
      // Written aside and renamed: a half-written marker must never count as ready.
      const marker = join(digestDir, `${READY_FILE}.tmp`);
      await writeFile(marker, `${JSON.stringify({ digest, entries, bytes, readyAt: new Date().toISOString() })}\n`, { mode: 0o644 });
      await rename(marker, join(digestDir, READY_FILE));
      return appDir;
    } catch (err) {
      await this.clearAttempt(digestDir).catch(() => undefined);
      throw err;
    }
  }

  /** Fetches the bundle into `file`, hashing it on the way; returns its size. */
  private async download(digest: string, file: string): Promise<number> {
    const hash = createHash('sha256');
    let size = 0;
    const limit = this.limits.maxBytes;
    await pipeline(
      this.fetch(digest),
      async function* verify(input: AsyncIterable<Uint8Array>) {
        for await (const chunk of input) {
          size += chunk.length;
          if (size > limit) throw new BundleRejectedError(`it is ${bundleTooLarge(limit, null)}`);
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(file, { mode: 0o600 }),
    );
    const actual = hash.digest('hex');
    if (actual !== digest) {
      throw new BundleRejectedError(`digest mismatch: the bytes fetched for ${digest} hash to ${actual}; the stored bundle is damaged: publish the app again.`);
    }
    return size;
  }

  /**
   * Node looks for the nearest package.json above a file to tell CommonJS from ES modules: an
   * app without one would inherit whatever lies above the cache (berth's own `"type": "module"`
   * when the data dir is in the checkout). This one, above every bundle, stops the lookup.
   */
  private async stopPackageLookup(): Promise<void> {
    const file = join(this.dir, 'package.json');
    if (await exists(file)) return;
    await writeFile(file, `${JSON.stringify({ type: 'commonjs' })}\n`, { mode: 0o644 });
  }

  /**
   * Removes the copies not used for `idleMs` (not prepared since, ready or left half-made by a
   * dead attempt) that no process uses (`inUse`: copy names, see copiesInUse) and that are not
   * being prepared: old releases' and deleted apps' files do not fill the disk. The registry
   * keeps every bundle: a copy removed here is fetched and built again if it is ever needed.
   */
  async prune(o: { idleMs: number; inUse: ReadonlySet<string> }): Promise<PrunedCopies> {
    const removed: string[] = [];
    let kept = 0;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { removed, kept };
      throw err;
    }
    const now = Date.now();
    for (const name of names) {
      if (!COPY_NAME.test(name)) continue;
      if (this.preparing.has(name) || o.inUse.has(name)) {
        kept++;
        continue;
      }
      const dir = join(this.dir, name);
      const usedAt = await stat(join(dir, READY_FILE))
        .catch(() => stat(dir))
        .then((s) => s.mtimeMs, () => undefined);
      // Checked again after the stat: a prepare may have begun meanwhile.
      if (usedAt === undefined || now - usedAt < o.idleMs || this.preparing.has(name)) {
        kept++;
        continue;
      }
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      removed.push(name);
    }
    return { removed, kept };
  }

  /** Removes all of an attempt but the build log. */
  private async clearAttempt(digestDir: string): Promise<void> {
    for (const name of await readdir(digestDir)) {
      if (name === 'build.log') continue;
      await rm(join(digestDir, name), { recursive: true, force: true, maxRetries: 3 });
    }
  }
}

/** What a prune did: the copies it removed (their directory names) and how many it kept. */
export interface PrunedCopies {
  removed: string[];
  kept: number;
}

/** A copy's directory name: the digest, and the app's uid when apps run as their own users. */
const COPY_NAME = /^[0-9a-f]{64}(-\d+)?$/;

/** The app uid of a copy's name (undefined for a copy shared by every app, when not root). */
export function copyUid(name: string): number | undefined {
  const dash = name.indexOf('-');
  return dash === -1 ? undefined : Number(name.slice(dash + 1));
}

function copyName(digest: string, user: AppUser | undefined): string {
  return user ? `${digest}-${user.uid}` : digest;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
