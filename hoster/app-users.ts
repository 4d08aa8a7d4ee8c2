import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Who an app's processes run as on this machine: one uid (and a group of the same number) for
 * its instances, another for its builds. Two apps never share either, so neither can read the
 * other's /proc/<pid>/environ or memory, signal it, or enter its folders; and an app's running
 * code cannot change the code its builds made.
 */
export interface AppUser {
  uid: number;
  gid: number;
  /** npm and every install script run as this one, which owns nothing once the build is over. */
  buildUid: number;
  buildGid: number;
}

/**
 * Far above the ranges that useradd, systemd's DynamicUser (61184-65519) and subordinate ids
 * for rootless containers (100000 and up, a few times 65536) hand out, and inside what Node
 * accepts for a uid (a signed 32-bit integer). No passwd entry names them: berth needs none.
 */
export const APP_UID_BASE = 1_900_000_000;
/** Pairs of uids (instances, builds): apps this machine can ever have seen. */
export const APP_UID_SLOTS = 100_000;

const FILE = 'app-users.json';

/**
 * The machine's record of which app has which uids, kept in the hoster's directory (its only
 * writer). A uid is never given to another app, even after its app is deleted: files it left
 * behind stay its own. The first choice of slot is a hash of the directory and the name, so
 * that two platforms sharing one machine (tests) rarely give one uid to two apps.
 */
export class AppUsers {
  private readonly file: string;
  private readonly dir: string;
  private readonly slots = new Map<string, number>();
  private readonly taken = new Set<number>();

  constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, FILE);
    for (const [app, slot] of Object.entries(readRecord(this.file))) {
      this.slots.set(app, slot);
      this.taken.add(slot);
    }
  }

  /** The app's users, given one (and recorded) the first time it is asked for. */
  forApp(app: string): AppUser {
    let slot = this.slots.get(app);
    if (slot === undefined) {
      slot = this.freeSlot(app);
      this.slots.set(app, slot);
      this.taken.add(slot);
      this.save();
    }
    const uid = APP_UID_BASE + slot * 2;
    return { uid, gid: uid, buildUid: uid + 1, buildGid: uid + 1 };
  }

  private freeSlot(app: string): number {
    if (this.taken.size >= APP_UID_SLOTS) throw new Error(`All ${APP_UID_SLOTS} app users of this machine are taken: remove ${this.file} entries of deleted apps.`);
    let slot = createHash('sha256').update(`${this.dir}\0${app}`).digest().readUInt32BE(0) % APP_UID_SLOTS;
    while (this.taken.has(slot)) slot = (slot + 1) % APP_UID_SLOTS;
    return slot;
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(this.slots), null, 1)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

function readRecord(file: string): Record<string, number> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  const record = JSON.parse(text) as unknown;
  if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new Error(`${file} must hold an object of app names to slots: restore it or remove it (apps then get new uids).`);
  for (const [app, slot] of Object.entries(record)) {
    if (!Number.isSafeInteger(slot) || (slot as number) < 0 || (slot as number) >= APP_UID_SLOTS) throw new Error(`${file}: the slot of ${app} is not an integer in 0-${APP_UID_SLOTS - 1}: restore the file or remove it.`);
  }
  return record as Record<string, number>;
}
