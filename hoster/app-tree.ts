import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lchownSync, lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * Ownership of an app's files on this machine. As root the hoster unpacks a bundle, hands the
 * tree to the app's build user for `npm ci`, then takes it back and seals it: owned by root,
 * readable (never writable) by the app's group only. No other app can enter it.
 */

/** Gives every entry of `dir` (itself included) to `uid:gid`, modes unchanged: the build may write. */
export function handToBuilder(dir: string, uid: number, gid: number): void {
  walk(dir, (path, stat) => {
    if (stat.isSymbolicLink()) lchownSync(path, uid, gid);
    else chownSync(path, uid, gid);
  });
}

/**
 * Takes the tree back from the build user and makes it read-only to the app: root:gid, 0750
 * for directories and executables, 0640 for other files. Call it only once no process of the
 * build user is left (killUserProcesses), so that nothing can swap an entry for a link while
 * it runs. Entries the build user did not own (none should exist) are left as they are.
 */
export function sealForApp(dir: string, buildUid: number, gid: number): void {
  walk(dir, (path, stat) => {
    if (stat.uid !== buildUid && stat.uid !== 0) return;
    if (stat.isSymbolicLink()) {
      // A link's own mode means nothing; chmod would follow it.
      lchownSync(path, 0, gid);
      return;
    }
    if (!stat.isDirectory() && !stat.isFile()) return;
    chownSync(path, 0, gid);
    chmodSync(path, stat.isDirectory() || (stat.mode & 0o111) !== 0 ? 0o750 : 0o640);
  });
}

/**
 * Kills every process of `uid` (what a build left behind, daemonised or not): a shell running
 * as that uid sends SIGKILL to -1, which the kernel delivers to all of them at once.
 */
export function killUserProcesses(uid: number, gid: number): void {
  for (let round = 0; round < 2; round++) spawnSync('/bin/sh', ['-c', 'kill -9 -1 2>/dev/null'], { uid, gid, stdio: 'ignore', env: {} });
}

/**
 * The first directory from `/` down to `path` that users other than its owner cannot traverse
 * (no o+x), with its mode; undefined when every existing one can be. Apps run as their own
 * users and must reach their files through each of these.
 */
export function untraversableAncestor(path: string): { dir: string; mode: number } | undefined {
  const chain: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    chain.unshift(dir);
    if (dir === dirname(dir)) break;
  }
  for (const dir of chain) {
    let mode: number;
    try {
      mode = statSync(dir).mode;
    } catch {
      // Not made yet: whoever makes it (the hoster) makes it traversable.
      return undefined;
    }
    if ((mode & 0o001) === 0) return { dir, mode: mode & 0o7777 };
  }
  return undefined;
}

/** Visits `dir` and everything under it without following links; children before parents. */
function walk(dir: string, visit: (path: string, stat: Stats) => void): void {
  const stat = lstatSync(dir);
  if (stat.isDirectory()) for (const name of readdirSync(dir)) walk(join(dir, name), visit);
  visit(dir, stat);
}
