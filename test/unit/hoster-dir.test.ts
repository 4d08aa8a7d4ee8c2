// Where the hoster's tree lives: under the data dir when apps can pass, else moved out (and
// found again), and an explicit place apps cannot reach is refused with the fix.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { untraversableAncestor } from '../../hoster/app-tree.js';
import { chooseHosterDir, FALLBACK_HOSTERS_DIR, HosterDirError } from '../../hoster/hoster-dir.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-hoster-dir-'));
  chmodSync(dir, 0o711);
  mkdirSync(join(dir, 'closed', 'data'), { recursive: true });
  chmodSync(join(dir, 'closed'), 0o750);
  mkdirSync(join(dir, 'open', 'data'), { recursive: true, mode: 0o755 });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('untraversableAncestor', () => {
  it('names the first directory others cannot pass, with its mode', () => {
    expect(untraversableAncestor(join(dir, 'closed', 'data', 'hoster'))).toEqual({ dir: join(dir, 'closed'), mode: 0o750 });
    expect(untraversableAncestor(join(dir, 'open', 'data', 'hoster'))).toBeUndefined();
    // Not made yet: the hoster makes it traversable.
    expect(untraversableAncestor(join(dir, 'open', 'not', 'yet'))).toBeUndefined();
  });
});

describe('chooseHosterDir', () => {
  it('keeps the tree under the data dir when apps can pass, or when they run as the hoster anyway', () => {
    expect(chooseHosterDir(join(dir, 'open', 'data'), { explicit: '', appsRunAsOthers: true })).toEqual({ dir: join(dir, 'open', 'data', 'hoster') });
    expect(chooseHosterDir(join(dir, 'closed', 'data'), { explicit: '', appsRunAsOthers: false })).toEqual({ dir: join(dir, 'closed', 'data', 'hoster') });
  });

  it('moves it out of a data dir apps cannot pass, to the same place on every run, and says why', () => {
    const first = chooseHosterDir(join(dir, 'closed', 'data'), { explicit: '', appsRunAsOthers: true });
    expect(first.dir.startsWith(`${FALLBACK_HOSTERS_DIR}/`)).toBe(true);
    expect(first.moved).toContain(`cannot traverse ${join(dir, 'closed')} (mode 0750)`);
    expect(chooseHosterDir(join(dir, 'closed', 'data'), { explicit: '', appsRunAsOthers: true }).dir).toBe(first.dir);
    expect(chooseHosterDir(join(dir, 'closed', 'other'), { explicit: '', appsRunAsOthers: true }).dir).not.toBe(first.dir);
  });

  it('refuses an explicit directory apps cannot reach, naming the folder and the fix', () => {
    const explicit = join(dir, 'closed', 'apps');
    expect(() => chooseHosterDir(join(dir, 'open', 'data'), { explicit, appsRunAsOthers: true })).toThrow(HosterDirError);
    expect(() => chooseHosterDir(join(dir, 'open', 'data'), { explicit, appsRunAsOthers: true })).toThrow(`${join(dir, 'closed')} has mode 0750, which others cannot traverse. Let them (chmod o+x ${join(dir, 'closed')})`);
    expect(chooseHosterDir(join(dir, 'open', 'data'), { explicit, appsRunAsOthers: false })).toEqual({ dir: explicit });
  });
});
