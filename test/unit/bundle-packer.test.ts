// The bundle packer: the same files give the same bytes, ignore files and fixed skips leave files out, links are refused.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { list } from 'tar';
import { bundleEntries, packFolder } from '../../sdk/bundle-packer.js';

const dirs: string[] = [];
function app(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-pack-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

async function entriesOf(bytes: Buffer): Promise<Array<{ path: string; mode: number; mtime: unknown; uid: unknown }>> {
  const out: Array<{ path: string; mode: number; mtime: unknown; uid: unknown }> = [];
  const parser = list({ onReadEntry: (e) => out.push({ path: e.path, mode: e.mode ?? 0, mtime: e.mtime, uid: e.uid }) });
  const ended = new Promise((resolve) => parser.on('end', resolve));
  parser.end(bytes);
  await ended;
  return out;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('packFolder', () => {
  it('packs the same files into the same bytes, in name order, with portable headers', async () => {
    const dir = app({ 'server.js': 'x', 'lib/b.js': 'b', 'lib/a.js': 'a', '@odd.txt': 'not an archive' });
    const first = await packFolder(dir);
    writeFileSync(join(dir, 'server.js'), 'x'); // a new mtime, the same content
    const second = await packFolder(dir);
    expect(second.digest).toBe(first.digest);
    expect(first.digest).toMatch(/^[0-9a-f]{64}$/);
    const entries = await entriesOf(first.bytes);
    expect(entries.map((e) => e.path)).toEqual(['@odd.txt', 'lib/', 'lib/a.js', 'lib/b.js', 'server.js']);
    for (const e of entries) {
      expect(e.uid).toBeUndefined();
      expect(e.mtime).toBeUndefined();
    }
    expect(first.files).toEqual(['@odd.txt', 'lib/a.js', 'lib/b.js', 'server.js']);
    expect(first.size).toBe(17);
  });

  it('leaves out what .gitignore and .berthignore list, and always .git, node_modules and .berth', async () => {
    const dir = app({
      'server.js': '',
      '.gitignore': '*.log\n',
      '.berthignore': 'secret.txt\n!keep.log\n',
      'debug.log': '',
      'keep.log': '',
      'secret.txt': '',
      'node_modules/dep/index.js': '',
      'lib/node_modules/x.js': '',
      '.git/HEAD': '',
      '.berth/secrets.json': '',
      'sub/.gitignore': 'local.txt\n',
      'sub/local.txt': '',
      'local.txt': '',
    });
    const { files } = await bundleEntries(dir);
    expect(files).toEqual(['.berthignore', '.gitignore', 'keep.log', 'local.txt', 'server.js', 'sub/.gitignore']);
  });

  it('refuses a symbolic link, naming it, unless an ignore file leaves it out', async () => {
    const dir = app({ 'server.js': '' });
    symlinkSync('server.js', join(dir, 'link.js'));
    await expect(packFolder(dir)).rejects.toThrow(/link\.js is a symbolic link/);
    writeFileSync(join(dir, '.berthignore'), 'link.js\n');
    await expect(packFolder(dir)).resolves.toMatchObject({ files: ['.berthignore', 'server.js'] });
  });

  it('refuses a folder with nothing to publish, and a path that is no folder', async () => {
    const dir = app({ '.berthignore': '*\n' });
    await expect(packFolder(dir)).rejects.toThrow(/no files to publish/);
    await expect(packFolder(join(dir, 'missing'))).rejects.toThrow(/is not a folder/);
  });
});
