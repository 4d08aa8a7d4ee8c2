import { chmod, lstat, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Unpack, type ReadEntry } from 'tar';
import { BerthError } from '../common/errors.js';

export const DEFAULT_MAX_BYTES = 512 * 1024 * 1024;
export const DEFAULT_MAX_ENTRIES = 20_000;
export const DEFAULT_MAX_DEPTH = 32;
export const DEFAULT_MAX_RATIO = 200;
/**
 * Uncompressed bytes allowed on top of maxRatio × compressed bytes. While the size of the
 * whole bundle is unknown the ratio is taken over the compressed bytes read so far, and the
 * first blocks of any tarball (headers, mostly zeros) compress far better than the rest.
 */
export const RATIO_SLACK_BYTES = 1024 * 1024;
/** How long a failed unpack waits for tar's writes in flight before deleting what it wrote. */
const SETTLE_MS = 10_000;

export interface UnpackLimits {
  /** Most bytes the bundle's files may hold together, uncompressed. @default 536870912 (512 MiB) */
  maxBytes: number;
  /** Most entries (files and directories). @default 20000 */
  maxEntries: number;
  /** Most path segments in an entry's name (`a/b/c` is 3). @default 32 */
  maxDepth: number;
  /** Most uncompressed bytes per compressed byte, checked while streaming. @default 200 */
  maxRatio: number;
}

export const DEFAULT_UNPACK_LIMITS: Readonly<UnpackLimits> = Object.freeze({
  maxBytes: DEFAULT_MAX_BYTES,
  maxEntries: DEFAULT_MAX_ENTRIES,
  maxDepth: DEFAULT_MAX_DEPTH,
  maxRatio: DEFAULT_MAX_RATIO,
});

export interface UnpackOptions {
  /**
   * The bundle's whole compressed size, when known (a file on disk): the ratio limit is then
   * checked against it, exactly, instead of against the bytes read so far.
   */
  compressedBytes?: number;
}

export interface UnpackResult {
  /** Files and directories unpacked. */
  entries: number;
  /** Bytes of file content unpacked. */
  bytes: number;
}

/**
 * The bundle is not acceptable (unsafe entry, over a limit, damaged, not a .tar.gz, wrong
 * digest). Retrying the same bytes fails the same way: the publisher must fix the bundle.
 */
export class BundleRejectedError extends BerthError {
  /** Why, naming the entry when one is at fault, and what to do about it. */
  readonly reason: string;

  constructor(reason: string, options?: { cause?: unknown }) {
    super('bundle_rejected', `The bundle was rejected: ${reason}`, options);
    this.name = 'BundleRejectedError';
    this.reason = reason;
  }
}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
/** tar would undo a second gzip layer itself, out of sight of the counters here. */
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
/** File system failures that are this machine's, not the bundle's: passed on as they are. */
const HOST_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EMFILE', 'ENFILE', 'ENOMEM', 'EACCES', 'EPERM', 'EBUSY']);

/**
 * Unpacks a .tar.gz into `targetDir` (which must not exist), accepting only plain files and
 * directories inside it, within `limits`. The files land in a fresh temporary directory beside
 * `targetDir`, renamed into place only once complete: on any failure nothing is left behind.
 * Modes are normalised (directories 0755, files 0644, or 0755 when any execute bit was set:
 * never setuid, setgid or sticky), and everything is owned by the calling process's user.
 * Throws BundleRejectedError for a bad bundle; other errors (the source failing, a full disk)
 * pass through as they are.
 */
export async function unpackBundle(
  source: AsyncIterable<Uint8Array> | Readable,
  targetDir: string,
  limits: Partial<UnpackLimits> = {},
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  const max = resolveUnpackLimits(limits);
  if (await exists(targetDir)) throw new Error(`Cannot unpack into ${targetDir}: it already exists (remove it first).`);
  // Beside the target, so that the final rename stays on one file system and is atomic.
  await mkdir(dirname(targetDir), { recursive: true });
  const tempDir = await mkdtemp(join(dirname(targetDir), `.${basename(targetDir)}.unpacking-`));
  const run = new UnpackRun(tempDir, max, options.compressedBytes ?? 0);
  try {
    await run.extract(source);
    await normaliseTree(tempDir);
    await rename(tempDir, targetDir);
    return { entries: run.entries, bytes: run.bytes };
  } catch (err) {
    await run.settle();
    // Retries cover a write of tar's that lands while the directory is being removed.
    await rm(tempDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    throw err;
  }
}

/** One unpack: the byte counters, the entry checks and the tar stream they guard. */
class UnpackRun {
  entries = 0;
  bytes = 0;
  private compressed = 0;
  private uncompressed = 0;
  /** The first uncompressed bytes, kept until there are enough to recognise gzip. */
  private head = Buffer.alloc(0);
  private failure: Error | undefined;
  private readonly unpack: Unpack;
  private readonly settled: Promise<void>;
  private ended = false;
  /** The write callback of the chunk tar holds (waiting for 'drain'), if any. */
  private pendingWrite: ((err?: Error | null) => void) | undefined;
  private finishing = false;
  private sink: Writable | undefined;

  constructor(
    dir: string,
    private readonly max: UnpackLimits,
    private readonly compressedTotal: number,
  ) {
    this.unpack = new Unpack({
      cwd: dir,
      // Damage, and any refusal of tar's own, fails the unpack instead of skipping an entry.
      strict: true,
      // As root, tar would otherwise chown each file to the uid and gid the archive names.
      preserveOwner: false,
      // tar's own guards stay on (absolute names, "..", writing through a symlink); the filter
      // refuses all of these first, so that the reason names the entry.
      preservePaths: false,
      // Modes are masked in the filter and set exactly by normaliseTree(); tar's chmod would
      // only add a call to the deprecated process.umask().
      chmod: false,
      // The default, said aloud: the directory is fresh and no link is ever made, so there
      // is nothing that predates the bundle to unlink, follow or break.
      unlink: false,
      // Gzip is undone before tar, where it is counted; no other compression is accepted.
      zstd: false,
      brotli: false,
      // A backstop to the filter's depth check, which counts segments (tar counts "./" and "/" too).
      maxDepth: max.maxDepth + 2,
      filter: (path, entry) => this.admit(path, entry as ReadEntry),
    });
    this.settled = new Promise((resolve) => this.unpack.on('close', () => resolve()));
    // Kept for the unpack's lifetime: a late error from tar after a failure must not crash.
    this.unpack.on('error', (err: Error & { tarCode?: string }) => this.fail(fromTarError(err)));
    // tar ignores entries of a type it does not know without asking the filter.
    this.unpack.on('ignoredEntry', (entry: ReadEntry) => {
      const name = JSON.stringify(entry.path);
      this.fail(
        new BundleRejectedError(
          entry.meta
            ? `entry ${name} has an extended header over 1 MiB: rebuild the bundle with a standard tar.`
            : `entry ${name} has the unsupported type ${entry.type}: a bundle may hold only files and directories.`,
        ),
      );
    });
  }

  async extract(source: AsyncIterable<Uint8Array> | Readable): Promise<void> {
    const run = this;
    this.sink = new Writable({
      write: (chunk: Buffer, _encoding, callback) => this.write(chunk, callback),
      final: (callback) => {
        this.finishing = true;
        this.end();
        this.settled.then(() => callback(this.failure ?? null), callback);
      },
    });
    try {
      await pipeline(
        source,
        async function* countCompressed(input: AsyncIterable<Uint8Array>) {
          for await (const chunk of input) {
            run.compressed += chunk.length;
            yield chunk;
          }
        },
        createGunzip(),
        async function* guardExpansion(input: AsyncIterable<Buffer>) {
          for await (const chunk of input) {
            run.checkExpansion(chunk);
            yield chunk;
          }
        },
        this.sink,
      );
    } catch (err) {
      throw this.failure ?? fromStreamError(err);
    }
    if (this.failure) throw this.failure;
  }

  /** Waits (bounded) until tar has no write in flight, so that its directory can be removed. */
  async settle(): Promise<void> {
    this.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.settled, new Promise((resolve) => (timer = setTimeout(resolve, SETTLE_MS)))]);
    clearTimeout(timer);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    // Ends (as truncated) an entry cut short, so that its file is closed; nothing more is read.
    this.unpack.end();
  }

  private write(chunk: Buffer, callback: (err?: Error | null) => void): void {
    if (this.failure) return callback(this.failure);
    this.pendingWrite = callback;
    const flowing = this.unpack.write(chunk);
    if (this.pendingWrite !== callback) return; // fail() already answered it
    if (flowing) {
      this.pendingWrite = undefined;
      return callback();
    }
    this.unpack.once('drain', () => {
      if (this.pendingWrite !== callback) return;
      this.pendingWrite = undefined;
      callback();
    });
  }

  /** Records the first failure and stops the stream: later entries are all refused. */
  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    if (pending) pending(err);
    else if (!this.finishing) this.sink?.destroy(err);
  }

  private checkExpansion(chunk: Buffer): void {
    if (this.head.length < GZIP_MAGIC.length) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, GZIP_MAGIC.length)]);
      if (this.head.subarray(0, GZIP_MAGIC.length).equals(GZIP_MAGIC)) {
        throw new BundleRejectedError('it is compressed twice: gzip the tar archive once (tar -czf).');
      }
    }
    this.uncompressed += chunk.length;
    const compressed = Math.max(this.compressed, this.compressedTotal);
    if (this.uncompressed > this.max.maxRatio * compressed + RATIO_SLACK_BYTES) {
      throw new BundleRejectedError(
        `it expands more than ${this.max.maxRatio} times (${this.uncompressed} bytes from ${compressed} so far), like a decompression bomb: leave large zero-filled or generated files out of it.`,
      );
    }
    // Room for headers and padding: the files' own bytes are checked exactly in admit().
    if (this.uncompressed > this.max.maxBytes + this.max.maxEntries * 1024 + RATIO_SLACK_BYTES) {
      throw new BundleRejectedError(`it expands to more than ${this.max.maxBytes} bytes: leave dependencies and build output out of it.`);
    }
  }

  /** tar's filter: true to unpack the entry; false, with the failure recorded, to stop. */
  private admit(path: string, entry: ReadEntry): boolean {
    if (this.failure) return false;
    const problem = this.problemWith(path, entry);
    if (problem !== undefined) {
      this.fail(new BundleRejectedError(problem));
      return false;
    }
    // Never setuid, setgid, sticky or writable by others, whatever the archive says.
    entry.mode = entry.type === 'Directory' || (entry.mode ?? 0) & 0o111 ? 0o755 : 0o644;
    return true;
  }

  private problemWith(path: string, entry: ReadEntry): string | undefined {
    const name = JSON.stringify(path);
    this.entries++;
    if (this.entries > this.max.maxEntries) {
      return `it has more than ${this.max.maxEntries} entries (at entry ${name}): leave node_modules and build output out of it.`;
    }
    if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return `entry ${name} has an absolute path: make every path relative to the app's folder.`;
    if (path.includes('\\')) return `entry ${name} contains a backslash: use "/" between path segments.`;
    const segments = path.split('/').filter((s) => s !== '' && s !== '.');
    if (segments.includes('..')) return `entry ${name} leaves the bundle (it contains ".."): make every path relative to the app's folder, without "..".`;
    if (segments.length > this.max.maxDepth) {
      return `entry ${name} is nested ${segments.length} levels deep, more than ${this.max.maxDepth}: flatten the folder structure.`;
    }
    switch (entry.type) {
      case 'Directory':
        return undefined;
      case 'SymbolicLink':
        return `entry ${name} is a symbolic link (to ${JSON.stringify(entry.linkpath)}): rebuild the bundle without links (copy the file instead).`;
      case 'Link':
        return `entry ${name} is a hard link (to ${JSON.stringify(entry.linkpath)}): rebuild the bundle without links (copy the file instead).`;
      case 'CharacterDevice':
      case 'BlockDevice':
        return `entry ${name} is a device: a bundle may hold only files and directories.`;
      case 'FIFO':
        return `entry ${name} is a named pipe (FIFO): a bundle may hold only files and directories.`;
    }
    if (!FILE_TYPES.has(entry.type)) return `entry ${name} has the unsupported type ${entry.type}: a bundle may hold only files and directories.`;
    if (segments.length === 0) return `entry ${name} names the bundle's root but is not a directory: rebuild the bundle with a standard tar.`;
    this.bytes += entry.size;
    if (this.bytes > this.max.maxBytes) {
      return `its files hold more than ${this.max.maxBytes} bytes (at entry ${name}, ${entry.size} bytes): leave dependencies, data and build output out of it.`;
    }
    return undefined;
  }
}

/**
 * Sets the final modes (tar creates files with the process umask applied, and the temp dir
 * itself is 0700) and checks, as a last guard, that only files and directories were made.
 */
async function normaliseTree(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const dirent of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, dirent.name);
    if (dirent.isDirectory()) {
      await normaliseTree(path);
    } else if (dirent.isFile()) {
      const { mode } = await lstat(path);
      await chmod(path, mode & 0o111 ? 0o755 : 0o644);
    } else {
      throw new BundleRejectedError(`entry ${JSON.stringify(dirent.name)} did not unpack as a file or directory: rebuild the bundle with a standard tar.`);
    }
  }
}

function fromTarError(err: Error & { tarCode?: string; code?: string; syscall?: string; entry?: ReadEntry }): Error {
  if (err instanceof BundleRejectedError) return err;
  // This machine failed (disk full, permissions): the bundle is not at fault.
  if (err.code !== undefined && HOST_ERRORS.has(err.code)) return err;
  if (err.syscall !== undefined) {
    // The bundle's entries clash on disk (a file where a directory must go, a name too long).
    const name = JSON.stringify(err.entry?.path ?? err.message);
    return new BundleRejectedError(`entry ${name} cannot be unpacked (${err.code ?? err.message}): give each path one kind of entry, with names the file system accepts.`, { cause: err });
  }
  const what = err.tarCode === 'TAR_BAD_ARCHIVE' ? 'it is not a complete tar archive' : 'it is a damaged tar archive';
  return new BundleRejectedError(`${what} (${err.message}): make it with "berth publish" or "tar -czf", and upload it again.`, { cause: err });
}

function fromStreamError(err: unknown): unknown {
  if (err instanceof BundleRejectedError) return err;
  // zlib's errors: not gzip at all, damaged, or cut short.
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    const message = (err as Error).message;
    const what = message === 'unexpected end of file' ? 'it is cut short (the gzip stream ends early)' : `it is not valid gzip (${message})`;
    return new BundleRejectedError(`${what}: publish a .tar.gz, made with "berth publish" or "tar -czf", and upload it whole.`, { cause: err });
  }
  return err;
}

/** The limits with defaults filled in; throws RangeError for a value that is not a positive number. */
export function resolveUnpackLimits(limits: Partial<UnpackLimits> = {}): UnpackLimits {
  const out = { ...DEFAULT_UNPACK_LIMITS };
  for (const key of Object.keys(DEFAULT_UNPACK_LIMITS) as Array<keyof UnpackLimits>) {
    const value = limits[key];
    if (value === undefined) continue;
    if (!(typeof value === 'number' && value > 0 && (Number.isSafeInteger(value) || (key === 'maxRatio' && Number.isFinite(value))))) {
      throw new RangeError(`Unpack limit ${key} must be a positive ${key === 'maxRatio' ? 'number' : 'integer'}, got ${String(value)}.`);
    }
    out[key] = value;
  }
  return out;
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
