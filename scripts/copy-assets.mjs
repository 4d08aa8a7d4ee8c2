// Copies what tsc does not: the registry's Lua scripts, loaded at run time beside the compiled store.
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'registry', 'scripts');
const to = join(root, 'dist', 'registry', 'scripts');
mkdirSync(to, { recursive: true });
for (const name of readdirSync(from)) {
  if (name.endsWith('.lua')) cpSync(join(from, name), join(to, name));
}
