import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Pack } from 'tar';
import type { BerthClient } from './berth-client.js';
import { IgnoreRules } from './ignore-rules.js';

/** Ignore files read in every folder of the bundle; `.berthignore` comes second, so it can take back what `.gitignore` leaves out. */
export const IGNORE_FILES = ['.gitignore', '.berthignore'] as const;

/**
 * Folders never packed, whatever the ignore files say: version control, installed packages
 * (the hoster installs them itself, for its platform) and the data directory of `berth up`
 * (which holds its secrets).
 */
export const ALWAYS_SKIPPED = new Set(['.git', 'node_modules', '.berth']);

export interface PackedBundle {
  /** The .tar.gz. */
  bytes: Buffer;
  /** Its sha256, hex: the name the registry stores it under. */
  digest: string;
  /** Files packed, '/'-separated, relative to the folder. */
  files: string[];
  /** Their bytes together, uncompressed. */
  size: number;
}

/**
 * Packs the files of `dir` that the ignore files keep as a .tar.gz, the same bytes for the same
 * files: entries in name order, portable headers (no owner, no times, modes from a 022 umask),
 * so that publishing an unchanged folder again needs no upload. Regular files and folders
 * only: a symbolic link, socket or device is an error naming it (the hoster refuses links).
 */
export async function packFolder(dir: string): Promise<PackedBundle> {
  const { entries, files, size } = await bundleEntries(dir);
  if (files.length === 0) throw new Error(`${dir} has no files to publish (after .gitignore and .berthignore).`);
  const pack = new Pack({ cwd: dir, gzip: true, portable: true, noMtime: true, noDirRecurse: true, strict: true });
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  // Pack.add, unlike tar.create, never reads a name starting with "@" as an archive to copy.
  for (const entry of entries) pack.add(entry);
  pack.end();
  await done;
  const bytes = Buffer.concat(chunks);
  return { bytes, digest: createHash('sha256').update(bytes).digest('hex'), files, size };
}

export interface ShippedBundle extends PackedBundle {
  /** False when the registry already held these exact bytes and nothing was sent. */
  uploaded: boolean;
}

/**
 * Packs `dir` and uploads it unless the registry already holds those exact bytes; the digest
 * it returns is what `publishApp` and `updateApp` take as `bundle`.
 */
export async function shipFolder(client: BerthClient, dir: string): Promise<ShippedBundle> {
  const packed = await packFolder(dir);
  if (await client.hasBundle(packed.digest)) return { ...packed, uploaded: false };
  await client.uploadBundle(packed.digest, packed.bytes);
  return { ...packed, uploaded: true };
}

/** What `packFolder` would pack: folders (before what they hold) and files, in name order. */
export async function bundleEntries(dir: string): Promise<{ entries: string[]; files: string[]; size: number }> {
  const info = await stat(dir).catch(() => undefined);
  if (info === undefined || !info.isDirectory()) throw new Error(`${dir} is not a folder: give the folder of the app to publish.`);
  const rules = new IgnoreRules();
  const entries: string[] = [];
  const files: string[] = [];
  let size = 0;

  const visit = async (relative: string): Promise<void> => {
    const absolute = relative === '' ? dir : join(dir, relative);
    for (const name of IGNORE_FILES) {
      const text = await readFile(join(absolute, name), 'utf8').catch(() => undefined);
      if (text !== undefined) rules.add(text, relative);
    }
    const children = (await readdir(absolute, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const child of children) {
      const path = relative === '' ? child.name : `${relative}/${child.name}`;
      if (child.isDirectory()) {
        if (ALWAYS_SKIPPED.has(child.name) || rules.ignores(path, true)) continue;
        entries.push(path);
        await visit(path);
      } else if (child.isFile()) {
        if (rules.ignores(path, false)) continue;
        entries.push(path);
        files.push(path);
        size += (await stat(join(dir, path))).size;
      } else if (rules.ignores(path, false) || rules.ignores(path, true)) {
        continue;
      } else if (child.isSymbolicLink()) {
        throw new Error(
          `${join(dir, path)} is a symbolic link: bundles hold plain files only (the hoster refuses links). Replace it with a copy of what it points to, or leave it out with a line in .berthignore.`,
        );
      } else {
        throw new Error(`${join(dir, path)} is not a plain file (a socket, FIFO or device): leave it out with a line in .berthignore.`);
      }
    }
  };
  await visit('');
  return { entries, files, size };
}
