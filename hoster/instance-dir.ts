import { chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AppUser } from './app-users.js';

/** One run of an instance on this machine (one claim: id and epoch): its HOME, its log, its shim's socket. */
export function instanceDir(instancesDir: string, id: string, epoch: number): string {
  return join(instancesDir, `${id}-${epoch}`);
}

/** The instance's own writable directory (HOME, TMPDIR), inside its directory. */
export function instanceHome(dir: string): string {
  return join(dir, 'home');
}

/**
 * Makes the instance's directory and its HOME (instanceHome); returns the HOME. The directory is root's,
 * entered by the app's group only: its HOME, its log, and the shim's socket (which only root
 * may connect to) are nobody else's business. The HOME is the app user's own.
 */
export function makeInstanceDir(dir: string, user: AppUser | undefined): string {
  mkdirSync(dir, { recursive: true, mode: user ? 0o710 : 0o755 });
  if (user) chownSync(dir, 0, user.gid);
  const home = instanceHome(dir);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  if (user) chownSync(home, user.uid, user.gid);
  return home;
}
