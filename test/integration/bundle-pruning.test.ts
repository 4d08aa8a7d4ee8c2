// Old releases' and deleted apps' copies do not fill a machine's disk: a prune removes the
// bundle copies that no process runs in and that were not prepared for a while, never one a
// process uses or one prepared lately, then the build HOMEs of apps with no copy left; what it
// removed is fetched and built again when needed. Real files, real processes, real /proc.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { BundleCache, READY_FILE } from '../../hoster/bundle-cache.js';
import { BundlePruning, copiesInUse } from '../../hoster/bundle-pruning.js';
import { tarArchive } from '../helpers/tar-builder.js';
import { waitFor } from '../helpers/wait-for.js';

const root = mkdtempSync(join(tmpdir(), 'berth-pruning-'));
const HOUR = 3_600_000;
const isRoot = process.getuid?.() === 0;

afterAll(() => rmSync(root, { recursive: true, force: true }));

function bundle(name: string): { digest: string; bytes: Buffer } {
  const bytes = gzipSync(tarArchive([{ path: 'server.js', body: `// ${name}\n` }]));
  return { digest: createHash('sha256').update(bytes).digest('hex'), bytes };
}

function fixture(name: string) {
  const dir = join(root, name);
  const bundles = new Map<string, Buffer>();
  const fetched: string[] = [];
  const cache = new BundleCache({
    dir: join(dir, 'bundles'),
    fetch: async function* (digest) {
      fetched.push(digest);
      yield bundles.get(digest)!;
    },
  });
  const buildHomesDir = join(dir, 'build-homes');
  const pruning = new BundlePruning({ cache, buildHomesDir, idleMs: HOUR, everyMs: HOUR, logger: silentLogger() });
  const add = (label: string) => {
    const b = bundle(`${name} ${label}`);
    bundles.set(b.digest, b.bytes);
    return b.digest;
  };
  return { dir, cache, pruning, buildHomesDir, fetched, add };
}

/** Makes a copy (or any path) look last used two hours ago. */
function age(path: string): void {
  const then = new Date(Date.now() - 2 * HOUR);
  utimesSync(path, then, then);
}

describe('pruning bundle copies', () => {
  it('removes an idle copy no process uses, keeps the one a process runs in and the one prepared lately, and fetches a removed one again', async () => {
    const f = fixture('copies');
    const [a, b, c] = [f.add('a'), f.add('b'), f.add('c')];
    const appA = await f.cache.prepare(a);
    await f.cache.prepare(b);
    await f.cache.prepare(c);
    for (const d of [a, b, c]) age(join(f.cache.dir, d, READY_FILE));
    // c is prepared again (an instance of it starts): that is a use.
    await f.cache.prepare(c);
    const running = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { cwd: appA, stdio: 'ignore' });
    try {
      await waitFor(async () => (await copiesInUse(f.cache.dir)).has(a), { what: 'the process seen running in copy a' });
      expect(await f.pruning.pruneOnce()).toEqual({ copies: [b], homes: [] });
      expect([a, b, c].map((d) => existsSync(join(f.cache.dir, d)))).toEqual([true, false, true]);
    } finally {
      running.kill('SIGKILL');
    }
    await waitFor(async () => !(await copiesInUse(f.cache.dir)).has(a), { what: 'the process in copy a gone' });
    expect((await f.pruning.pruneOnce()).copies).toEqual([a]);
    // Needed again (a rollback): fetched and unpacked anew.
    expect(await f.cache.prepare(b)).toBe(join(f.cache.dir, b, 'app'));
    expect(f.fetched.filter((d) => d === b)).toHaveLength(2);
  });

  it('removes a half-made copy a dead attempt left, once idle', async () => {
    const f = fixture('half');
    const dead = join(f.cache.dir, 'e'.repeat(64));
    mkdirSync(join(dead, 'app'), { recursive: true });
    const fresh = join(f.cache.dir, 'f'.repeat(64));
    mkdirSync(join(fresh, 'app'), { recursive: true });
    age(dead);
    expect((await f.pruning.pruneOnce()).copies).toEqual(['e'.repeat(64)]);
    expect(existsSync(fresh)).toBe(true);
    // What is not a copy's name is never touched.
    mkdirSync(join(f.cache.dir, 'not-a-copy'));
    age(join(f.cache.dir, 'not-a-copy'));
    await f.pruning.pruneOnce();
    expect(existsSync(join(f.cache.dir, 'not-a-copy'))).toBe(true);
  });

  it.skipIf(!isRoot)('removes the build HOME of an app with no copy left, never of one that has one (apps have users of their own only as root)', async () => {
    const f = fixture('homes');
    const user = { uid: 1_900_000_500, gid: 1_900_000_500, buildUid: 1_900_000_501, buildGid: 1_900_000_501 };
    const d = f.add('d');
    await f.cache.prepare(d, user);
    const copy = `${d}-${user.uid}`;
    const home = join(f.buildHomesDir, String(user.buildUid));
    const orphan = join(f.buildHomesDir, String(1_900_000_777));
    mkdirSync(home, { recursive: true });
    mkdirSync(orphan, { recursive: true });
    age(home);
    age(orphan);
    expect(await f.pruning.pruneOnce()).toEqual({ copies: [], homes: ['1900000777'] });
    expect(existsSync(home)).toBe(true);
    age(join(f.cache.dir, copy, READY_FILE));
    expect(await f.pruning.pruneOnce()).toEqual({ copies: [copy], homes: [String(user.buildUid)] });
    expect(existsSync(home)).toBe(false);
  });
});
