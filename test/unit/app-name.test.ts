// App names made from package.json names and folder names always pass the API's name rule, or are refused.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultAppName, sanitiseAppName } from '../../cli/app-name.js';
import { NAME_PATTERN } from '../../common/names.js';

describe('sanitiseAppName', () => {
  it.each([
    ['hello', 'hello'],
    ['@acme/shop-front', 'shop-front'],
    ['My_App.js', 'my-app-js'],
    ['Café Crème', 'cafe-creme'],
    ['2fast', 'fast'],
    ['--weird--name--', 'weird-name'],
    ['a'.repeat(80), 'a'.repeat(63)],
    [`${'a'.repeat(62)}-b`, 'a'.repeat(62)],
  ])('%s → %s', (raw, name) => {
    expect(sanitiseAppName(raw)).toBe(name);
    expect(name).toMatch(NAME_PATTERN);
  });

  it.each(['', '123', '---', '@scope/', '日本語'])('gives up on %j', (raw) => {
    expect(sanitiseAppName(raw)).toBeUndefined();
  });
});

describe('defaultAppName', () => {
  const dirs: string[] = [];
  const folder = (name: string) => {
    const parent = mkdtempSync(join(tmpdir(), 'berth-name-'));
    dirs.push(parent);
    const dir = join(parent, name);
    mkdirSync(dir);
    return dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('takes package.json "name" first', () => {
    const dir = folder('whatever');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: '@me/Payments_API' }));
    expect(defaultAppName(dir)).toBe('payments-api');
  });

  it('falls back to the folder name when package.json has none usable', () => {
    const dir = folder('Shop Front');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: '1234' }));
    expect(defaultAppName(dir)).toBe('shop-front');
    const bare = folder('orders');
    expect(defaultAppName(bare)).toBe('orders');
  });

  it('asks for --name when nothing usable is left', () => {
    expect(() => defaultAppName(folder('1234'))).toThrow(/--name/);
  });
});
