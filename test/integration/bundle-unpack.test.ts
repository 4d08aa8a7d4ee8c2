// A bundle unpacks only as plain files and directories within its limits; every unsafe, oversized or damaged one is refused with a reason, leaving nothing behind and nothing outside touched; the cache fetches, verifies and builds each digest once.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import { create } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, BuildFailedError } from '../../hoster/app-build.js';
import { BundleCache, READY_FILE } from '../../hoster/bundle-cache.js';
import { BundleRejectedError, unpackBundle, type UnpackLimits } from '../../hoster/bundle-unpacker.js';
import { paxRecords, TAR_TYPE, tarArchive, tarHeader, type RawEntry } from '../helpers/tar-builder.js';

const MiB = 1024 * 1024;

let root: string;
/** Where targets go: holds only sentinel.txt besides them. */
let parent: string;
/** A directory the bad entries aim at, holding x. */
let outside: string;
let target: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'berth-unpack-'));
  parent = join(root, 'parent');
  outside = join(root, 'outside');
  mkdirSync(parent);
  mkdirSync(outside);
  writeFileSync(join(parent, 'sentinel.txt'), 'keep');
  writeFileSync(join(outside, 'x'), 'keep');
  target = join(parent, 'app');
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** The bytes in small pieces, as the registry's chunks or a socket would deliver them. */
async function* inPieces(bytes: Buffer, size = 1000): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

function gzipped(entries: RawEntry[]): Buffer {
  return gzipSync(tarArchive(entries));
}

/** A .tar.gz of `dir` made by tar's own create API, as berth publish makes them. */
async function packDir(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of create({ gzip: true, cwd: dir }, ['.'])) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Nothing was left behind and nothing outside the target changed. */
function expectUntouched(): void {
  expect(existsSync(target), 'target dir').toBe(false);
  expect(readdirSync(root).sort()).toEqual(['outside', 'parent']);
  expect(readdirSync(parent), 'no temp dir left beside the target').toEqual(['sentinel.txt']);
  expect(readdirSync(outside)).toEqual(['x']);
  expect(readFileSync(join(parent, 'sentinel.txt'), 'utf8')).toBe('keep');
  expect(readFileSync(join(outside, 'x'), 'utf8')).toBe('keep');
}

async function expectRejected(source: Buffer | AsyncIterable<Uint8Array>, reason: RegExp, limits?: Partial<UnpackLimits>): Promise<BundleRejectedError> {
  const err = await unpackBundle(Buffer.isBuffer(source) ? inPieces(source) : source, target, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BundleRejectedError);
  const rejected = err as BundleRejectedError;
  expect(rejected.reason).toMatch(reason);
  expect(rejected.message).toContain(rejected.reason);
  expectUntouched();
  return rejected;
}

const mode = (path: string) => statSync(path).mode & 0o7777;
const ok: RawEntry = { path: 'ok.txt', body: 'fine' };

describe('unpackBundle', () => {
  it('unpacks a good bundle with its files, and modes made safe', async () => {
    const src = join(root, 'src');
    mkdirSync(join(src, 'bin'), { recursive: true });
    mkdirSync(join(src, 'lib', 'deep', 'er'), { recursive: true });
    mkdirSync(join(src, 'empty'));
    writeFileSync(join(src, 'server.js'), 'console.log("hi")\n');
    writeFileSync(join(src, 'bin', 'run'), '#!/bin/sh\necho run\n');
    writeFileSync(join(src, 'bin', 'suid'), '#!/bin/sh\n');
    writeFileSync(join(src, 'lib', 'deep', 'er', 'data.json'), '{"a":1}');
    writeFileSync(join(src, 'world-writable'), 'w');
    chmodSync(join(src, 'bin', 'run'), 0o755);
    chmodSync(join(src, 'bin', 'suid'), 0o6755);
    chmodSync(join(src, 'world-writable'), 0o666);
    chmodSync(join(src, 'empty'), 0o777);

    const contentBytes = ['server.js', 'bin/run', 'bin/suid', 'lib/deep/er/data.json', 'world-writable'].reduce((sum, f) => sum + statSync(join(src, f)).size, 0);
    const result = await unpackBundle(Readable.from(await packDir(src)), target);

    expect(readFileSync(join(target, 'server.js'), 'utf8')).toBe('console.log("hi")\n');
    expect(readFileSync(join(target, 'lib', 'deep', 'er', 'data.json'), 'utf8')).toBe('{"a":1}');
    expect(mode(target)).toBe(0o755);
    expect(mode(join(target, 'server.js'))).toBe(0o644);
    expect(mode(join(target, 'bin', 'run'))).toBe(0o755);
    expect(mode(join(target, 'bin', 'suid')), 'setuid and setgid stripped').toBe(0o755);
    expect(mode(join(target, 'world-writable'))).toBe(0o644);
    expect(mode(join(target, 'empty'))).toBe(0o755);
    expect(mode(join(target, 'lib', 'deep'))).toBe(0o755);
    // ., bin, bin/run, bin/suid, empty, lib, lib/deep, lib/deep/er, data.json, server.js, world-writable
    expect(result).toEqual({ entries: 11, bytes: contentBytes });
    expect(readdirSync(parent).sort()).toEqual(['app', 'sentinel.txt']);
  });

  it("unpacks hand-made entries as the hoster's user, whatever uid and mode bits the archive names, up to the depth limit", async () => {
    const deepest = `${Array.from({ length: 31 }, (_, i) => `d${i}`).join('/')}/f`; // 32 segments
    const bundle = gzipped([
      { path: 'pax_global_header', type: TAR_TYPE.paxGlobalHeader, body: paxRecords({ comment: 'made by hand' }) },
      { path: 'tool', body: 'x', mode: 0o6777 },
      { path: './dir/', type: TAR_TYPE.directory, mode: 0o1777 },
      { path: 'dir/note', body: 'n', mode: 0o600 },
      { path: deepest, body: 'deep' },
    ]);
    const result = await unpackBundle(inPieces(bundle, 7), target);
    expect(result).toEqual({ entries: 4, bytes: 6 });
    const tool = statSync(join(target, 'tool'));
    expect(tool.uid).toBe(process.getuid!());
    expect(tool.gid).toBe(process.getgid!());
    expect(tool.mode & 0o7777).toBe(0o755);
    expect(mode(join(target, 'dir'))).toBe(0o755);
    expect(mode(join(target, 'dir', 'note'))).toBe(0o644);
    expect(readFileSync(join(target, deepest), 'utf8')).toBe('deep');
  });

  it('refuses an entry that climbs out with ../', async () => {
    const err = await expectRejected(gzipped([ok, { path: '../x', body: 'evil' }]), /"\.\.\/x" leaves the bundle/);
    expect(err.message).toMatch(/without "\.\."/);
  });

  it('refuses an entry that climbs out from inside a directory (a/../../x)', async () => {
    await expectRejected(gzipped([ok, { path: 'a/', type: TAR_TYPE.directory }, { path: 'a/../../x', body: 'evil' }]), /"a\/\.\.\/\.\.\/x" leaves the bundle/);
  });

  it('refuses an absolute path, leaving the file it names unchanged', async () => {
    const victim = join(outside, 'x');
    await expectRejected(gzipped([ok, { path: victim, body: 'evil' }]), new RegExp(`"${victim}" has an absolute path`));
  });

  it('refuses a symbolic link that points out of the bundle, and the write through it', async () => {
    await expectRejected(
      gzipped([ok, { path: 'link', type: TAR_TYPE.symlink, linkpath: '../../outside' }, { path: 'link/x', body: 'evil' }]),
      /"link" is a symbolic link \(to "\.\.\/\.\.\/outside"\): rebuild the bundle without links/,
    );
  });

  it('refuses a symbolic link that points inside the bundle too', async () => {
    await expectRejected(gzipped([ok, { path: 'alias', type: TAR_TYPE.symlink, linkpath: 'ok.txt' }]), /"alias" is a symbolic link/);
  });

  it('refuses a hard link', async () => {
    const victim = join(outside, 'x');
    await expectRejected(
      gzipped([ok, { path: 'hard', type: TAR_TYPE.hardLink, linkpath: victim }, { path: 'hard', body: 'evil' }]),
      /"hard" is a hard link .*rebuild the bundle without links/,
    );
  });

  it('refuses a character device, a block device and a FIFO', async () => {
    await expectRejected(gzipped([ok, { path: 'null', type: TAR_TYPE.charDevice, devmajor: 1, devminor: 3 }]), /"null" is a device/);
    await expectRejected(gzipped([ok, { path: 'disk', type: TAR_TYPE.blockDevice, devmajor: 8, devminor: 0 }]), /"disk" is a device/);
    await expectRejected(gzipped([ok, { path: 'pipe', type: TAR_TYPE.fifo }]), /"pipe" is a named pipe/);
  });

  it('refuses an entry of a type tar would skip (sparse file)', async () => {
    await expectRejected(gzipped([ok, { path: 'sparse', type: TAR_TYPE.sparse, body: 'abc' }, { path: 'after.txt', body: 'a' }]), /"sparse" has the unsupported type/);
  });

  it('stops a gzip bomb while streaming, long before reading it all', async () => {
    const declared = 500 * MiB; // under the 512 MiB limit: only the ratio can stop it
    let zerosProduced = 0;
    async function* bomb(): AsyncGenerator<Buffer> {
      function* tarStream() {
        yield tarHeader({ path: 'bomb.bin', size: declared });
        const zeros = Buffer.alloc(MiB);
        for (let sent = 0; sent < declared; sent += MiB) {
          zerosProduced += MiB;
          yield zeros;
        }
      }
      const gz = Readable.from(tarStream()).pipe(createGzip());
      try {
        for await (const chunk of gz) yield chunk as Buffer;
      } finally {
        gz.destroy();
      }
    }
    const started = Date.now();
    await expectRejected(bomb(), /expands more than 200 times .*decompression bomb/);
    expect(zerosProduced, 'MiB of the bomb produced before the unpack stopped reading').toBeLessThan(declared / 4);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('refuses files larger than maxBytes by their declared size, before writing them', async () => {
    await expectRejected(gzipped([ok, { path: 'big.bin', body: Buffer.alloc(3000) }]), /files hold more than 2000 bytes \(at entry "big\.bin", 3000 bytes\)/, { maxBytes: 2000 });
  });

  it('refuses too many entries', async () => {
    const files = Array.from({ length: 51 }, (_, i) => ({ path: `f${i}`, body: String(i) }));
    await expectRejected(gzipped(files), /more than 50 entries \(at entry "f50"\)/, { maxEntries: 50 });
  });

  it('refuses an entry nested deeper than 32 levels', async () => {
    const tooDeep = `${Array.from({ length: 32 }, (_, i) => `d${i}`).join('/')}/f`;
    await expectRejected(gzipped([ok, { path: tooDeep, body: 'deep' }]), /nested 33 levels deep, more than 32/);
  });

  it('refuses a truncated gzip stream', async () => {
    const src = join(root, 'src');
    mkdirSync(src);
    for (let i = 0; i < 20; i++) writeFileSync(join(src, `f${i}.txt`), randomBytes(2000).toString('hex'));
    const whole = await packDir(src);
    rmSync(src, { recursive: true });
    await expectRejected(whole.subarray(0, Math.floor(whole.length * 0.6)), /cut short/);
  });

  it('refuses bytes that are not gzip', async () => {
    const noise = randomBytes(4096);
    noise[0] = 0; // never the gzip magic by chance
    await expectRejected(noise, /not valid gzip/);
  });

  it('refuses a gzip of bytes that are not a tar archive', async () => {
    await expectRejected(gzipSync(Buffer.from('this is not a tar archive\n'.repeat(100))), /damaged tar archive/);
    await expectRejected(gzipSync(Buffer.from('short')), /not a complete tar archive/);
    await expectRejected(gzipSync(Buffer.alloc(0)), /not a complete tar archive/);
  });

  it('refuses a tar archive compressed twice', async () => {
    await expectRejected(gzipSync(gzipped([ok])), /compressed twice/);
  });

  it('refuses entries that clash on disk (a file where a directory must go)', async () => {
    await expectRejected(gzipped([{ path: 'a', body: 'file' }, { path: 'a/b', body: 'under a file' }]), /"a\/b" cannot be unpacked \((EEXIST|ENOTDIR)\)/);
  });

  it('passes on a failing source as it is, leaving nothing behind', async () => {
    const bundle = gzipped([ok, { path: 'more.bin', body: randomBytes(64 * 1024) }]);
    async function* failing(): AsyncGenerator<Buffer> {
      yield bundle.subarray(0, 2000);
      throw new Error('redis went away');
    }
    await expect(unpackBundle(failing(), target)).rejects.toThrow('redis went away');
    expectUntouched();
  });

  it('unpacks from a file stream', async () => {
    const file = join(root, 'bundle.tar.gz');
    writeFileSync(file, gzipped([ok]));
    expect(await unpackBundle(createReadStream(file), join(root, 'elsewhere', 'app'))).toEqual({ entries: 1, bytes: 4 });
  });

  it('refuses to unpack over an existing directory', async () => {
    mkdirSync(target);
    await expect(unpackBundle(inPieces(gzipped([ok])), target)).rejects.toThrow(/already exists/);
    expect(readdirSync(target)).toEqual([]);
  });
});

describe('BundleCache', () => {
  let cacheDir: string;
  const good = () => gzipped([{ path: 'package.json', body: '{"name":"app","version":"1.0.0"}' }, { path: 'server.js', body: 'x' }]);
  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

  beforeEach(() => {
    cacheDir = join(root, 'cache');
  });

  /** A fetch that serves `bundles` in pieces, a turn of the event loop apart, and counts calls. */
  function registry(bundles: Record<string, Buffer>) {
    const calls: string[] = [];
    const fetch = async function* (digest: string): AsyncGenerator<Buffer> {
      calls.push(digest);
      const bytes = bundles[digest];
      if (bytes === undefined) throw new Error(`no bundle ${digest}`);
      for (let i = 0; i < bytes.length; i += 512) {
        await new Promise((resolve) => setImmediate(resolve));
        yield bytes.subarray(i, i + 512);
      }
    };
    return { calls, fetch };
  }

  it('prepares a digest once for concurrent callers, and reuses it after a restart', async () => {
    const bundle = good();
    const digest = sha256(bundle);
    const reg = registry({ [digest]: bundle });
    const cache = new BundleCache({ dir: cacheDir, fetch: reg.fetch });

    const [a, b] = await Promise.all([cache.prepare(digest), cache.prepare(digest)]);
    expect(a).toBe(join(cacheDir, digest, 'app'));
    expect(b).toBe(a);
    expect(reg.calls).toEqual([digest]);
    expect(readFileSync(join(a, 'server.js'), 'utf8')).toBe('x');
    expect(readdirSync(join(cacheDir, digest)).sort()).toEqual([READY_FILE, 'app']);
    expect(JSON.parse(readFileSync(join(cacheDir, digest, READY_FILE), 'utf8'))).toMatchObject({ digest, entries: 2 });

    expect(await cache.prepare(digest)).toBe(a);
    const restarted = new BundleCache({ dir: cacheDir, fetch: reg.fetch });
    expect(await restarted.prepare(digest)).toBe(a);
    expect(reg.calls).toEqual([digest]);
  });

  it('runs a CommonJS bundle without package.json as CommonJS though the cache lies under a "type": "module" package.json', async () => {
    const checkout = join(cacheDir, 'checkout');
    mkdirSync(checkout, { recursive: true });
    writeFileSync(join(checkout, 'package.json'), JSON.stringify({ type: 'module' }));
    const bundle = gzipped([{ path: 'server.js', body: "console.log(typeof require('node:path').join)" }]);
    const digest = sha256(bundle);
    const cache = new BundleCache({ dir: join(checkout, '.berth', 'hoster', 'bundles'), fetch: registry({ [digest]: bundle }).fetch });
    const app = await cache.prepare(digest);
    const run = spawnSync(process.execPath, [join(app, 'server.js')], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('function');
  });

  it('rejects bytes that do not match the digest, keeping nothing', async () => {
    const digest = sha256(good());
    const reg = registry({ [digest]: gzipped([{ path: 'server.js', body: 'tampered' }]) });
    const cache = new BundleCache({ dir: cacheDir, fetch: reg.fetch });
    const err = await cache.prepare(digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleRejectedError);
    expect((err as BundleRejectedError).reason).toMatch(/^digest mismatch/);
    expect(readdirSync(join(cacheDir, digest))).toEqual([]);
    expect(await cache.isReady(digest)).toBe(false);
  });

  it('rejects an unsafe bundle, keeping nothing, and refuses a name that is not a digest', async () => {
    const bundle = gzipped([ok, { path: 'link', type: TAR_TYPE.symlink, linkpath: '/etc/passwd' }]);
    const digest = sha256(bundle);
    const cache = new BundleCache({ dir: cacheDir, fetch: registry({ [digest]: bundle }).fetch });
    await expect(cache.prepare(digest)).rejects.toThrow(/"link" is a symbolic link/);
    expect(readdirSync(join(cacheDir, digest))).toEqual([]);
    await expect(cache.prepare('../../etc')).rejects.toThrow(/not a sha256 digest/);
    expect(() => new BundleCache({ dir: cacheDir, fetch: registry({}).fetch, limits: { maxEntries: 0 } })).toThrow(/maxEntries must be a positive integer/);
  });

  it('leaves a digest whose build failed unready, keeps its log, and builds again on the next prepare', async () => {
    const bundle = gzipped([{ path: 'package.json', body: JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { dep: 'file:./vendor/missing-1.0.0.tgz' } }) }]);
    const digest = sha256(bundle);
    const reg = registry({ [digest]: bundle });
    let builds = 0;
    const cache = new BundleCache({
      dir: cacheDir,
      fetch: reg.fetch,
      build: async (appDir, digestDir) => {
        builds++;
        await buildApp(appDir, { logFile: join(digestDir, 'build.log'), env: { ...process.env, npm_config_offline: 'true', npm_config_cache: join(root, 'npm-cache') } });
      },
    });

    await expect(cache.prepare(digest)).rejects.toBeInstanceOf(BuildFailedError);
    expect(await cache.isReady(digest)).toBe(false);
    expect(readdirSync(join(cacheDir, digest))).toEqual(['build.log']);

    await expect(cache.prepare(digest)).rejects.toBeInstanceOf(BuildFailedError);
    expect(builds).toBe(2);
    expect(reg.calls).toEqual([digest, digest]);
    const log = readFileSync(join(cacheDir, digest, 'build.log'), 'utf8');
    expect(log.match(/^=== .* npm install --omit=dev/gm)).toHaveLength(2);
    expect(existsSync(join(cacheDir, digest, READY_FILE))).toBe(false);
  });

  it('marks a digest ready only after its build succeeded', async () => {
    const bundle = good();
    const digest = sha256(bundle);
    const seen: boolean[] = [];
    const cache = new BundleCache({
      dir: cacheDir,
      fetch: registry({ [digest]: bundle }).fetch,
      build: async (appDir, digestDir) => {
        seen.push(existsSync(join(digestDir, READY_FILE)));
        expect(await buildApp(appDir, { logFile: join(digestDir, 'build.log') })).toMatchObject({ ran: 'none' });
      },
    });
    await cache.prepare(digest);
    expect(seen).toEqual([false]);
    expect(await cache.isReady(digest)).toBe(true);
  });

  it('checks the ratio against the whole download, so that a bundle opening with zeros is not mistaken for a bomb', async () => {
    // 3 MiB of zeros, then 1 MiB of noise: about 4 times overall, but over 500 times over the first kilobytes.
    const bundle = gzipped([{ path: 'zeros.bin', body: Buffer.alloc(3 * MiB) }, { path: 'noise.bin', body: randomBytes(MiB) }]);
    const digest = sha256(bundle);
    await expect(unpackBundle(inPieces(bundle), target, { maxRatio: 50 }), 'streamed, with the size unknown').rejects.toThrow(/expands more than 50 times/);
    const cache = new BundleCache({ dir: cacheDir, fetch: registry({ [digest]: bundle }).fetch, limits: { maxRatio: 50 } });
    const appDir = await cache.prepare(digest);
    expect(statSync(join(appDir, 'zeros.bin')).size).toBe(3 * MiB);
    expect(statSync(join(appDir, 'noise.bin')).size).toBe(MiB);
    // A real bomb still fails against the whole size.
    const bomb = gzipped([{ path: 'zeros.bin', body: Buffer.alloc(8 * MiB) }]);
    const bombDigest = sha256(bomb);
    const bombCache = new BundleCache({ dir: cacheDir, fetch: registry({ [bombDigest]: bomb }).fetch, limits: { maxRatio: 50 } });
    await expect(bombCache.prepare(bombDigest)).rejects.toThrow(/expands more than 50 times/);
    expect(readdirSync(join(cacheDir, bombDigest))).toEqual([]);
  });
});

