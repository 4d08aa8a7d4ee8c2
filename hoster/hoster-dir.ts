import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { BerthError } from '../common/errors.js';
import { untraversableAncestor } from './app-tree.js';

/** Where the hoster's tree goes when apps could not reach `<data-dir>/hoster`. */
export const FALLBACK_HOSTERS_DIR = '/var/lib/berth/hosters';

export interface HosterDirChoice {
  dir: string;
  /** Why the default was not used (said once in the log), when it was not. */
  moved?: string;
}

/** A hoster directory that apps, running as their own users, could not reach. */
export class HosterDirError extends BerthError {
  constructor(message: string) {
    super('invalid_config', message);
    this.name = 'HosterDirError';
  }
}

/**
 * The hoster's tree: bundles, builds and instance folders. Apps run as users of their own (when
 * the hoster is root) and need every directory above their files to be traversable; a data dir
 * under /root (0700) or a mkdtemp folder is not. Then the tree lives under
 * /var/lib/berth/hosters/<id of the data dir>, found again by every later run with that data
 * dir, while the data dir keeps the platform's secrets where only root reads them. A directory
 * given explicitly is used as it is, or refused with the fix.
 */
export function chooseHosterDir(dataDir: string, options: { explicit: string; appsRunAsOthers: boolean }): HosterDirChoice {
  if (options.explicit !== '') {
    const dir = resolve(options.explicit);
    const blocked = options.appsRunAsOthers ? untraversableAncestor(dir) : undefined;
    if (blocked) throw new HosterDirError(blockedMessage(dir, blocked, 'BERTH_HOSTER_DIR'));
    return { dir };
  }
  const dir = join(resolve(dataDir), 'hoster');
  const blocked = options.appsRunAsOthers ? untraversableAncestor(dir) : undefined;
  if (!blocked) return { dir };
  const id = createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 12);
  const fallback = join(FALLBACK_HOSTERS_DIR, id);
  const alsoBlocked = untraversableAncestor(fallback);
  if (alsoBlocked) throw new HosterDirError(blockedMessage(fallback, alsoBlocked, 'BERTH_HOSTER_DIR'));
  return {
    dir: fallback,
    moved: `apps run as their own users and cannot traverse ${blocked.dir} (mode ${octal(blocked.mode)}), which holds the data dir: their files live in ${fallback} instead (set BERTH_HOSTER_DIR to choose)`,
  };
}

function blockedMessage(dir: string, blocked: { dir: string; mode: number }, option: string): string {
  return (
    `apps run as their own users and cannot reach ${dir}: ${blocked.dir} has mode ${octal(blocked.mode)}, which others cannot traverse. ` +
    `Let them (chmod o+x ${blocked.dir}) or point ${option} at a directory they can reach (e.g. under /var/lib).`
  );
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
