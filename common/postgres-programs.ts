import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The folder of the newest of Debian's PostgreSQL versions installed (scripts/setup and
 * ami/provision.sh install the `postgresql` package): the hoster runs add-on servers from it,
 * the registry their backups (pg_dump, pg_restore).
 */
export function debianPostgresBinDir(root = '/usr/lib/postgresql'): string {
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^[0-9]+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  return versions.length === 0 ? join(root, '15', 'bin') : join(root, versions[0]!, 'bin');
}
