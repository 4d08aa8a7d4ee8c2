import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const hasShellcheck = spawnSync('shellcheck', ['--version']).status === 0;

/** Every file of the checkout (committed or new, not ignored) that starts with a sh/bash shebang. */
function shellScripts(): string[] {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  return [...new Set(files)].filter((file) => {
    try {
      return /^#!\S*(\/|env )(ba|da)?sh\b/.test(readFileSync(join(ROOT, file), 'utf8').slice(0, 64));
    } catch {
      return false; // deleted in the work tree
    }
  });
}

if (!hasShellcheck) console.warn('skipped: shellcheck is not installed (scripts/setup installs it as root)');

describe.skipIf(!hasShellcheck)('shellcheck', () => {
  it('finds nothing in any shell script of the repository', () => {
    const scripts = shellScripts();
    // The list itself must be right, or the check below proves nothing.
    expect(scripts).toEqual(expect.arrayContaining(['ami/provision.sh', 'scripts/setup', 'scripts/test', 'bin/berth', 'test/ami/throwaway-root.sh']));
    const run = spawnSync('shellcheck', ['--format=gcc', ...scripts], { cwd: ROOT, encoding: 'utf8' });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('does report a finding (the check can fail)', () => {
    const run = spawnSync('shellcheck', ['--format=gcc', '-'], { input: '#!/bin/sh\nrm -rf $1/x\n', encoding: 'utf8' });
    expect(run.status).not.toBe(0);
    expect(run.stdout).toContain('SC2086');
  });
});
