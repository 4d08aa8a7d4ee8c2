// Bundles the dashboard (dashboard/src, preact + htm) into dist/dashboard/assets with hashed
// names, and writes dist/dashboard/manifest.json naming them for the registry's page.
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'dashboard');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
const result = await build({
  entryPoints: [join(root, 'dashboard', 'src', 'main.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  entryNames: '[name]-[hash]',
  outdir: join(out, 'assets'),
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((n) => n.endsWith('.js'));
const style = outputs.find((n) => n.endsWith('.css'));
if (!script || !style) throw new Error(`the dashboard build made ${outputs.join(', ')}: expected one .js and one .css`);
writeFileSync(join(out, 'manifest.json'), `${JSON.stringify({ script, style }, null, 2)}\n`);
