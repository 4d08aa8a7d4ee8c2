import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { NAME_PATTERN } from '../common/names.js';

/**
 * Turns a package or folder name into a valid app name (`^[a-z][a-z0-9-]{0,62}$`): no npm
 * scope, lower case, accents dropped, every run of other characters one "-", starting with a
 * letter, at most 63 characters. Undefined when nothing usable is left.
 */
export function sanitiseAppName(raw: string): string | undefined {
  const name = raw
    .replace(/^@[^/]*\//, '')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return NAME_PATTERN.test(name) ? name : undefined;
}

/** The app name for a folder: its package.json "name", else the folder's own name, sanitised. */
export function defaultAppName(dir: string): string {
  const candidates: string[] = [];
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
    if (typeof pkg.name === 'string') candidates.push(pkg.name);
  } catch {
    // No package.json, or not JSON: the folder's name will do.
  }
  candidates.push(basename(resolve(dir)));
  for (const candidate of candidates) {
    const name = sanitiseAppName(candidate);
    if (name !== undefined) return name;
  }
  throw new Error(`Cannot make an app name from ${resolve(dir)}: give one with --name (lowercase letters, digits and "-", starting with a letter).`);
}
