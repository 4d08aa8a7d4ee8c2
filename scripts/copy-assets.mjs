// Copies what tsc does not: the registry's Lua scripts (and the pieces they include), loaded at run time beside the compiled store.
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'registry', 'store', 'scripts');
const to = join(root, 'dist', 'registry', 'store', 'scripts');
for (const dir of ['', 'include']) {
  mkdirSync(join(to, dir), { recursive: true });
  for (const name of readdirSync(join(from, dir))) {
    if (name.endsWith('.lua')) cpSync(join(from, dir, name), join(to, dir, name));
  }
}
