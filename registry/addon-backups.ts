import { spawn } from 'node:child_process';
import { chmodSync, createReadStream, createWriteStream, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { BerthError } from '../common/errors.js';
import type { AddonBackup } from '../sdk/types.js';
import { postgresIdentifier, type AddonKind, type StoredAddon } from './store/index.js';

/** Backups kept per add-on name: the oldest beyond this are removed at each new one. @default 7 */
export const DEFAULT_ADDON_BACKUPS_KEPT = 7;

const EXTENSION: Record<AddonKind, string> = { postgres: 'pgdump', redis: 'redisdump' };
const BACKUP_ID = /^[0-9]{8}T[0-9]{9}Z$/;

export interface AddonBackupsOptions {
  /** Where backups are kept: `<dir>/<add-on name>/<id>.<pgdump|redisdump>`. */
  dir: string;
  /** @default DEFAULT_ADDON_BACKUPS_KEPT */
  kept?: number;
  /** Folder of pg_dump and pg_restore. */
  postgresBinDir: string;
}

/**
 * Backups of add-ons, taken by the registry over the network with the add-on's own
 * credentials (so any registry may, and no hoster holds a second copy): PostgreSQL with
 * `pg_dump -Fc` (restored by `pg_restore --clean`), Redis as every key's DUMP with its TTL
 * (restored with RESTORE … REPLACE after a FLUSHALL), one JSON line per key. Kept by name, so
 * that the backups of a destroyed add-on restore into a new one of that name and kind.
 */
export class AddonBackups {
  private readonly kept: number;

  constructor(private readonly o: AddonBackupsOptions) {
    this.kept = o.kept ?? DEFAULT_ADDON_BACKUPS_KEPT;
  }

  list(name: string): AddonBackup[] {
    let files: string[];
    try {
      files = readdirSync(join(this.o.dir, name));
    } catch {
      return [];
    }
    const out: AddonBackup[] = [];
    for (const file of files) {
      const [id, ext] = file.split('.');
      const kind = (Object.keys(EXTENSION) as AddonKind[]).find((k) => EXTENSION[k] === ext);
      if (kind === undefined || id === undefined || !BACKUP_ID.test(id)) continue;
      const s = statSync(join(this.o.dir, name, file));
      out.push({ id, addon: name, kind, sizeBytes: s.size, createdAt: s.mtimeMs });
    }
    return out.sort((a, b) => b.id.localeCompare(a.id));
  }

  async take(addon: StoredAddon): Promise<AddonBackup> {
    const folder = join(this.o.dir, addon.name);
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const id = new Date().toISOString().replace(/[-:.]/g, '');
    const file = join(folder, `${id}.${EXTENSION[addon.kind]}`);
    const partial = `${file}.partial`;
    try {
      if (addon.kind === 'postgres') await this.pgDump(addon, partial);
      else await redisDump(addon, partial);
      renameSync(partial, file);
      chmodSync(file, 0o600);
    } catch (err) {
      rmSync(partial, { force: true });
      throw failed('backup', addon, err);
    }
    for (const old of this.list(addon.name).slice(this.kept)) rmSync(join(folder, `${old.id}.${EXTENSION[old.kind]}`), { force: true });
    return this.list(addon.name).find((b) => b.id === id)!;
  }

  /** Replaces the add-on's data with the backup's. */
  async restore(addon: StoredAddon, id: string): Promise<AddonBackup> {
    const backup = this.check(addon, id);
    const file = join(this.o.dir, addon.name, `${id}.${EXTENSION[backup.kind]}`);
    try {
      if (addon.kind === 'postgres') await this.pgRestore(addon, file);
      else await redisRestore(addon, file);
    } catch (err) {
      throw failed('restore', addon, err);
    }
    return backup;
  }

  /** The backup, when it is one of the add-on's name and of its kind (else the error that says so). */
  check(addon: Pick<StoredAddon, 'name' | 'kind'>, id: string): AddonBackup {
    const backup = this.list(addon.name).find((b) => b.id === id);
    if (backup === undefined) throw new BerthError('addon_backup_not_found', `${addon.name} has no backup ${id}: list them with berth addons:backups ${addon.name}.`);
    if (backup.kind !== addon.kind) {
      throw new BerthError('addon_backup_kind', `The backup ${id} is of a ${backup.kind} add-on and ${addon.name} is a ${addon.kind} one: restore it into a ${backup.kind} add-on of that name.`);
    }
    return backup;
  }

  private pgDump(addon: StoredAddon, file: string): Promise<void> {
    return run(join(this.o.postgresBinDir, 'pg_dump'), ['-Fc', '--no-owner', '--no-acl', '-f', file, ...pgTarget(addon)], addon.password);
  }

  private pgRestore(addon: StoredAddon, file: string): Promise<void> {
    return run(join(this.o.postgresBinDir, 'pg_restore'), ['--clean', '--if-exists', '--no-owner', '--no-acl', '--single-transaction', '-d', postgresIdentifier(addon.name), ...pgTarget(addon).slice(0, -1), file], addon.password);
  }
}

/** Where pg_dump and pg_restore connect, as the add-on's role: never its password (PGPASSWORD carries it, out of argv). */
function pgTarget(addon: StoredAddon): string[] {
  const id = postgresIdentifier(addon.name);
  return ['-h', addon.host, '-p', String(addon.port), '-U', id, id];
}

function run(file: string, args: string[], password: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-1000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file.split('/').pop()} exited ${code}: ${err.trim().split('\n').slice(-2).join(' / ')}`))));
  });
}

function connectTo(addon: StoredAddon): Redis {
  const r = new Redis({ host: addon.host, port: addon.port, password: addon.password, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 10_000 });
  r.on('error', () => undefined);
  return r;
}

async function redisDump(addon: StoredAddon, file: string): Promise<void> {
  const r = connectTo(addon);
  const out = createWriteStream(file, { mode: 0o600 });
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scanBuffer(cursor, 'COUNT', 500);
      cursor = next.toString();
      for (const key of keys) {
        const [value, ttl] = await Promise.all([r.dumpBuffer(key), r.pttl(key)]);
        if (value === null) continue;
        out.write(`${JSON.stringify({ k: key.toString('base64'), v: value.toString('base64'), ttl: ttl > 0 ? ttl : 0 })}\n`);
      }
    } while (cursor !== '0');
  } finally {
    await new Promise<void>((resolve) => out.end(resolve));
    r.disconnect();
  }
}

async function redisRestore(addon: StoredAddon, file: string): Promise<void> {
  const r = connectTo(addon);
  try {
    await r.connect();
    await r.flushall();
    for await (const line of createInterface({ input: createReadStream(file) })) {
      if (line === '') continue;
      const { k, v, ttl } = JSON.parse(line) as { k: string; v: string; ttl: number };
      await r.restore(Buffer.from(k, 'base64'), ttl, Buffer.from(v, 'base64'), 'REPLACE');
    }
  } finally {
    r.disconnect();
  }
}

function failed(what: 'backup' | 'restore', addon: StoredAddon, err: unknown): BerthError {
  if (err instanceof BerthError) return err;
  const words = (err instanceof Error ? err.message : String(err)).split(addon.password).join('***');
  return new BerthError('addon_backup_failed', `The ${what} of ${addon.name} failed: ${words}. Check that it runs (berth addons:info ${addon.name}).`);
}
