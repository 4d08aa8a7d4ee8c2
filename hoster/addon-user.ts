import { spawnSync } from 'node:child_process';
import { APP_UID_BASE, type AppUsers } from './app-users.js';

/** Who an add-on's server runs as: a uid of its own, or the hoster's own user when the hoster is not root. */
export interface AddonUser {
  uid: number;
  gid: number;
  /** The passwd name (initdb needs one to exist), or null when the server runs as the hoster's user. */
  name: string | null;
}

/**
 * The add-on's own user: a uid from the machine's app users (hoster/app-users.ts), never an
 * app's, with a passwd and group entry of its own, because PostgreSQL's initdb looks its user
 * up by uid. Redis would need none; both get one, so that `ps` names whose server it is.
 */
export function addonUser(users: AppUsers | undefined, addonId: string): AddonUser {
  if (users === undefined) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, name: null };
  // ':' is in no app name: the slot is the add-on's alone.
  const { uid, gid } = users.forApp(`addon:${addonId}`);
  const name = `berth-a${uid - APP_UID_BASE}`;
  ensureSystemUser(name, uid, gid);
  return { uid, gid, name };
}

function ensureSystemUser(name: string, uid: number, gid: number): void {
  if (spawnSync('getent', ['passwd', String(uid)], { encoding: 'utf8' }).status === 0) return;
  if (spawnSync('getent', ['group', String(gid)], { encoding: 'utf8' }).status !== 0) {
    run('groupadd', ['--system', '--gid', String(gid), name]);
  }
  run('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--uid', String(uid), '--gid', String(gid), name]);
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${(result.stderr || result.error?.message || `exit ${result.status}`).trim()}`);
}

/** Removes a destroyed add-on's passwd and group entries (its uid stays recorded, never given again). */
export function removeAddonUser(users: AppUsers | undefined, addonId: string): void {
  if (users === undefined) return;
  const { uid } = users.forApp(`addon:${addonId}`);
  const name = `berth-a${uid - APP_UID_BASE}`;
  if (spawnSync('getent', ['passwd', name], { encoding: 'utf8' }).status === 0) run('userdel', [name]);
  if (spawnSync('getent', ['group', name], { encoding: 'utf8' }).status === 0) run('groupdel', [name]);
}
