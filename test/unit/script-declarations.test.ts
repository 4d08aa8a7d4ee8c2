// Every Lua script has one declaration whose keys and args match the KEYS and ARGV its header lists, and every include it names exists.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALL_SCRIPTS } from '../../registry/store/script-declarations.js';

const dir = new URL('../../registry/store/scripts/', import.meta.url);

function header(name: string, keys: number): string {
  const source = readFileSync(new URL(`${name}-${keys}.lua`, dir), 'utf8');
  return source.slice(0, source.indexOf(']]'));
}

describe('script declarations', () => {
  it('declare every script file once, and only those', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.lua')).sort();
    const declared = ALL_SCRIPTS.map((s) => `${s.name}-${s.declaration.keys.length}.lua`).sort();
    expect(declared).toEqual(files);
    expect(new Set(ALL_SCRIPTS.map((s) => s.name)).size).toBe(ALL_SCRIPTS.length);
  });

  it.each(ALL_SCRIPTS.map((s) => [s.name, s] as const))('%s: as many keys and args as its header lists', (_name, script) => {
    const { keys, args } = script.declaration;
    const text = header(script.name, keys.length);
    const listed = (what: 'KEYS' | 'ARGV') => [...text.matchAll(new RegExp(`^\\s+${what}\\[(\\d+)\\]`, 'gm'))].map((m) => Number(m[1]));
    expect(listed('KEYS')).toEqual(keys.map((_, i) => i + 1));
    expect(listed('ARGV')).toEqual(args.map((_, i) => i + 1));
    expect(new Set([...keys]).size).toBe(keys.length);
    expect(new Set([...args]).size).toBe(args.length);
  });

  it('name only includes that exist', () => {
    for (const script of ALL_SCRIPTS) {
      const source = readFileSync(new URL(`${script.name}-${script.declaration.keys.length}.lua`, dir), 'utf8');
      for (const [, included] of source.matchAll(/^--- @include "([A-Za-z]+)"$/gm)) {
        expect(existsSync(new URL(`include/${included}.lua`, dir)), `${script.name} includes ${included}`).toBe(true);
      }
    }
  });
});
