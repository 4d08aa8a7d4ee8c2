import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SHA256_PATTERN } from '../common/names.js';
import { BundleRejectedError, resolveUnpackLimits, unpackBundle, type UnpackLimits } from './bundle-unpacker.js';

/** Written last, once the app directory is complete (and built): its presence is the cache entry. */
export const READY_FILE = '.ready';
/** The app's files, inside the digest's directory. */
export const APP_DIR = 'app';
/** The compressed bundle while it downloads; deleted once unpacked. */
const DOWNLOAD_FILE = 'bundle.tar.gz.part';

export interface BundleCacheOptions {
  /** The cache's root: one directory per digest, `<dir>/<digest>/app`. */
  dir: string;
  /** The bundle's compressed bytes (e.g. the registry's BundleStore.read). */
  fetch: (digest: string) => AsyncIterable<Uint8Array>;
  /** Limits for each unpack; the largest compressed download allowed is limits.maxBytes too. @default DEFAULT_UNPACK_LIMITS */
  limits?: Partial<UnpackLimits>;
  /**
   * Runs after the unpack and before the digest is marked ready (e.g. `npm ci`): when it
   * throws, the digest is not ready and the next prepare starts over. By convention its log
   * goes to `<digestDir>/build.log`, which is kept across attempts.
   */
  build?: (appDir: string, digestDir: string) => Promise<void>;
}

/**
 * Bundles on this machine's disk, unpacked and built once per digest. The hoster is the only
 * writer of `dir`: concurrent prepares of one digest in this process share one attempt, and a
 * digest marked ready by an earlier run is used as it is.
 */
export class BundleCache {
  readonly dir: string;
  private readonly fetch: (digest: string) => AsyncIterable<Uint8Array>;
  private readonly limits: UnpackLimits;
  private readonly build: ((appDir: string, digestDir: string) => Promise<void>) | undefined;
  private readonly preparing = new Map<string, Promise<string>>();

  constructor(options: BundleCacheOptions) {
    if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError('BundleCache option dir must be a directory path.');
    if (typeof options.fetch !== 'function') throw new TypeError('BundleCache option fetch must be a function.');
    this.dir = options.dir;
    this.fetch = options.fetch;
    this.limits = resolveUnpackLimits(options.limits);
    this.build = options.build;
  }

  /** The directory of the digest's app (`<dir>/<digest>/app`), fetched, verified, unpacked and built if need be. */
  prepare(digest: string): Promise<string> {
    if (!SHA256_PATTERN.test(digest)) {
      return Promise.reject(new TypeError(`${JSON.stringify(digest)} is not a sha256 digest: give 64 lowercase hex characters.`));
    }
    let attempt = this.preparing.get(digest);
    if (attempt === undefined) {
      attempt = this.install(digest).finally(() => this.preparing.delete(digest));
      this.preparing.set(digest, attempt);
    }
    return attempt;
  }

  /** True when the digest is ready on disk. */
  async isReady(digest: string): Promise<boolean> {
    return SHA256_PATTERN.test(digest) && (await exists(join(this.dir, digest, READY_FILE))) && (await exists(join(this.dir, digest, APP_DIR)));
  }

  private async install(digest: string): Promise<string> {
    const digestDir = join(this.dir, digest);
    const appDir = join(digestDir, APP_DIR);
    if (await this.isReady(digest)) return appDir;
    await mkdir(digestDir, { recursive: true, mode: 0o755 });
    await this.stopPackageLookup();
    // An earlier attempt that failed or died mid-way (unpacked, half built): start over.
    await this.clearAttempt(digestDir);
    const download = join(digestDir, DOWNLOAD_FILE);
    try {
      const size = await this.download(digest, download);
      const { entries, bytes } = await unpackBundle(createReadStream(download), appDir, this.limits, { compressedBytes: size });
      await rm(download, { force: true });
      await this.build?.(appDir, digestDir);
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
          if (size > limit) throw new BundleRejectedError(`it is larger than ${limit} bytes compressed: leave dependencies and build output out of it.`);
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

  /** Removes all of an attempt but the build log. */
  private async clearAttempt(digestDir: string): Promise<void> {
    for (const name of await readdir(digestDir)) {
      if (name === 'build.log') continue;
      await rm(join(digestDir, name), { recursive: true, force: true, maxRetries: 3 });
    }
  }
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
